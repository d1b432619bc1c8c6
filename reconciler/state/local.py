"""The default state store: a JSON file beside the manifests (.reconciler/state.json).

Mode 0600 (it may hold secrets), replaced atomically (write temp, fsync, rename), and
locked with flock on a sidecar file: the kernel frees the lock when the holding process
dies, so a killed apply never leaves the state locked. The holder's details are written
into the lock file for the error message.
"""
from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from reconciler.config.privatefile import write_private
from reconciler.errors import LockError, StaleStateError, StateError
from reconciler.state import crypto
from reconciler.state.base import STATE_VERSION, LockInfo, StateDoc
from reconciler.state.check import check
from reconciler.state.decode import fast_read


class LocalStateStore:
    def __init__(self, path: str | Path, env: Mapping[str, str] | None = None):
        self.env = env  # RECONCILER_STATE_KEY, for secrets at rest
        self.path = Path(path)
        self.location = str(self.path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self._seen: tuple[tuple, int, str] | None = None  # (file signature, serial, lineage) last read or written
        self._last: _LastFile | None = None  # the file this store last wrote, for _encode to copy from
        # address -> the manifests' spec: a recorded spec equal to it is read as that object
        self.specs: Mapping[str, Any] | None = None

    def read(self) -> StateDoc:
        moved = self.migrated_copies()
        if moved:  # the state lives elsewhere now: reading this one would plan from the past
            raise StateError(
                f"{self.path}: this state was moved by `reconciler state migrate` (the old copy is {moved[-1]}); "
                "open where it went with --state, RECONCILER_STATE or the manifests' backend:, or remove "
                f"{moved[-1].name} to use {self.path.name} here again")
        try:
            with open(self.path, encoding="utf-8") as f:
                seen = os.fstat(f.fileno())
                raw = f.read()
        except FileNotFoundError:
            return StateDoc()
        except OSError as e:
            raise StateError(f"{self.path}: cannot read the state: {e.strerror}") from None
        doc = fast_read(raw, str(self.path), STATE_VERSION, self.specs)
        if doc is not None:
            self._seen = (_signature(seen), doc.serial, doc.lineage)
            return doc
        try:
            body = json.loads(raw)
            check(body, str(self.path), STATE_VERSION)  # before decrypting walks it
            doc = StateDoc.from_dict(crypto.open_doc(body, self.env), str(self.path))
        except (ValueError, TypeError, AttributeError) as e:
            raise StateError(f"{self.path}: the state file is not valid state JSON ({e})") from None
        self._seen = (_signature(seen), doc.serial, doc.lineage)
        return doc

    def write(self, doc: StateDoc) -> None:
        current = self._current()
        if current is not None and current[0] != doc.serial:
            raise StaleStateError(
                f"{self.path}: the state moved to serial {current[0]} while this run held "
                f"serial {doc.serial}; nothing was overwritten. Run plan again.")
        if current is not None and current[1] != doc.lineage:
            raise StaleStateError(f"{self.path}: the state has lineage {current[1]}, "
                                  f"not {doc.lineage}; nothing was overwritten.")
        spans: dict[str, dict] = {}
        try:
            written = self._atomic_write(self._encode(doc, doc.serial + 1, spans))
        except BaseException:
            self._forget_last()  # what was half copied says nothing of the file there now
            raise
        doc.serial += 1
        self._seen = (_signature(written), doc.serial, doc.lineage)
        self._forget_last()
        self._last = _LastFile.open(self.path, written, spans)

    def _current(self) -> tuple[int, str] | None:
        """(serial, lineage) stored now, or None if there is no state file. Read again
        only when the file is not the one this store last read or wrote (an apply writes
        after every step: re-reading 100,000 entries each time was most of its cost)."""
        try:
            now = _signature(os.stat(self.path))
        except FileNotFoundError:
            return None
        if self._seen is not None and self._seen[0] == now:
            return self._seen[1], self._seen[2]
        current = self.read()
        return current.serial, current.lineage

    def _encode(self, doc: StateDoc, serial: int, spans: dict[str, dict]) -> Iterator[bytes]:
        """The document, one resource a line, in pieces as write_private writes them: no
        copy of the whole state is built. An entry still the same ResourceState (or pending
        dict) object as at the last write is copied from the file that write made (its bytes
        at the offset noted in `spans`), not encoded again: the applier replaces entries, it
        never edits them, so a step encodes only what it changed. Every other top-level
        field is as StateDoc.to_dict gives it. Fills `spans` for the file written now."""
        last = self._last if self._last is not None and self._last.unchanged() else None
        head = crypto.seal_doc(dataclasses.replace(doc, resources={}, pending={}, serial=serial).to_dict(), self.env)
        pos = 0
        sep_top = b"{\n"
        for key, value in head.items():
            piece = sep_top + f"  {json.dumps(key)}: ".encode()
            sep_top = b",\n"
            if key not in ("resources", "pending"):
                piece += json.dumps(value).encode()
                pos += len(piece)
                yield piece
                continue
            items = doc.resources if key == "resources" else doc.pending
            known = last.spans.get(key, {}) if last is not None else {}
            mine: dict[str, tuple[object, int, int]] = {}
            spans[key] = mine
            piece += b"{"
            pos += len(piece)
            yield piece
            sep = b"\n"
            run: list[int] = []  # [start, end] in the last file of entries copied as one span
            for address in sorted(items):
                entry = items[address]
                hit = known.get(address)
                if hit is not None and hit[0] is entry:
                    offset, length = hit[1], hit[2]
                    if run and offset == run[1] + len(_SEP):  # the next line there too: the span grows
                        mine[address] = (entry, pos + offset - run[1], length)
                        pos += offset + length - run[1]
                        run[1] = offset + length
                        continue
                    if run:
                        yield from last.copy(*run)  # type: ignore[union-attr]
                    yield sep
                    pos += len(sep)
                    sep = _SEP
                    mine[address] = (entry, pos, length)
                    pos += length
                    run = [offset, offset + length]
                    continue
                if run:
                    yield from last.copy(*run)  # type: ignore[union-attr]
                    run = []
                body = entry if isinstance(entry, dict) else asdict(entry)  # pending entries are dicts
                sealed = crypto.seal_doc({key: {address: body}}, self.env)[key][address]
                line = f"    {json.dumps(address)}: {json.dumps(sealed)}".encode()
                yield sep
                pos += len(sep)
                sep = _SEP
                mine[address] = (entry, pos, len(line))
                pos += len(line)
                yield line
            if run:
                yield from last.copy(*run)  # type: ignore[union-attr]
            piece = b"\n  }" if items else b"}"
            pos += len(piece)
            yield piece
        yield b"\n}\n"

    def _forget_last(self) -> None:
        if self._last is not None:
            self._last.close()
            self._last = None

    def migrated_copies(self) -> list[Path]:
        return sorted(self.path.parent.glob(self.path.name + ".migrated-*"))

    def retire(self) -> Path:
        """After `state migrate` moved it: state.json -> state.json.migrated-<date>, so no
        later run without --state reads the old copy (read() refuses while one exists)."""
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        target = self.path.with_name(f"{self.path.name}.migrated-{stamp}")
        os.replace(self.path, target)
        return target

    def replace_all(self, doc: StateDoc) -> None:
        """Write a document as it is (state migrate): lineage and serial kept."""
        self._atomic_write(json.dumps(crypto.seal_doc(doc.to_dict(), self.env), indent=2) + "\n")

    def _atomic_write(self, text: str | Iterable[bytes]) -> os.stat_result:
        return write_private(self.path, text)

    @contextlib.contextmanager
    def lock(self, operation: str, timeout: float = 0.0) -> Iterator[LockInfo]:
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise LockError(f"{self.path} is locked: {self._holder(fd)}. "
                                        "Wait for it to finish (a killed process frees its lock).") from None
                    time.sleep(0.1)
            info = LockInfo.new(operation)
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(asdict(info)).encode(), 0)
            try:
                yield info
            finally:
                os.ftruncate(fd, 0)
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def _holder(self, fd: int) -> str:
        try:
            raw = os.pread(fd, 4096, 0)
            return LockInfo(**json.loads(raw)).describe()
        except (ValueError, TypeError, OSError):
            return "another process"

    def unlock(self, lock_id: str) -> None:
        """flock locks die with their process, so only the recorded details can be stale."""
        try:
            raw = self.lock_path.read_text()
        except FileNotFoundError:
            raise StateError(f"{self.path} is not locked") from None
        info = json.loads(raw) if raw.strip() else {}
        if info.get("id") != lock_id:
            raise StateError(f"{self.path}: no lock with id {lock_id}"
                             + (f" (the lock is {info.get('id')})" if info.get("id") else " (not locked)"))
        fd = os.open(self.lock_path, os.O_RDWR)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise StateError(f"lock {lock_id} is held by a live process ({info.get('who')}, "
                                 f"pid {info.get('pid')}); stop that process first") from None
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


_SEP = b",\n"  # between two entries of `resources` or `pending`
_COPY_CHUNK = 1 << 20  # bytes copied from the last file at a time


class _LastFile:
    """The state file this store wrote last, kept open (a later replacement of the path
    does not change what it reads), with where each entry's bytes are in it: (the entry
    object encoded, offset, length) by section and address. About 150 bytes an entry, where
    the encoded text itself (kept before) was a whole second copy of the state."""

    def __init__(self, fd: int, signature: tuple, spans: dict[str, dict]):
        self.fd, self.signature, self.spans = fd, signature, spans

    @classmethod
    def open(cls, path: Path, written: os.stat_result, spans: dict[str, dict]) -> "_LastFile | None":
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return None
        last = cls(fd, _signature(written), spans)
        if not last.unchanged():  # replaced since the rename: nothing to copy from
            last.close()
            return None
        return last

    def unchanged(self) -> bool:
        """Still the bytes this store wrote (nobody edited the file in place)."""
        try:
            return _signature(os.fstat(self.fd)) == self.signature
        except OSError:
            return False

    def copy(self, start: int, end: int) -> Iterator[bytes]:
        while start < end:
            chunk = os.pread(self.fd, min(_COPY_CHUNK, end - start), start)
            if not chunk:
                raise StateError(f"the state file written last ended at byte {start}, before {end}")
            start += len(chunk)
            yield chunk

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # at interpreter exit os may be gone already
            self.close()


def _signature(st: os.stat_result) -> tuple:
    """What changes when the file is replaced (a new inode) or edited in place."""
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)
