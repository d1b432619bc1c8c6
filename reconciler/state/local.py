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
from typing import Any, Iterator, Mapping

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
        self._entries: dict[tuple[str, str], tuple[object, str]] = {}  # encoded entries, see _encode
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
        written = self._atomic_write(self._encode(doc, doc.serial + 1))
        doc.serial += 1
        self._seen = (_signature(written), doc.serial, doc.lineage)

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

    def _encode(self, doc: StateDoc, serial: int) -> list[str]:
        """The document, one resource a line. Each entry is encoded once and reused while
        the same ResourceState (or pending dict) object stays in the document: the applier
        replaces entries, it never edits them, so a step re-encodes only what it changed.
        Every other top-level field is as StateDoc.to_dict gives it."""
        cache, fresh = self._entries, {}
        head = crypto.seal_doc(dataclasses.replace(doc, resources={}, pending={}, serial=serial).to_dict(), self.env)
        out = ["{"]
        sep_top = "\n"
        for key, value in head.items():
            out.append(f'{sep_top}  {json.dumps(key)}: ')
            sep_top = ",\n"
            if key not in ("resources", "pending"):
                out.append(json.dumps(value))
                continue
            items = doc.resources if key == "resources" else doc.pending
            out.append("{")
            sep = "\n"
            for address in sorted(items):
                entry = items[address]
                hit = cache.get((key, address))
                if hit is None or hit[0] is not entry:
                    body = entry if isinstance(entry, dict) else asdict(entry)  # pending entries are dicts
                    sealed = crypto.seal_doc({key: {address: body}}, self.env)[key][address]
                    hit = (entry, f"    {json.dumps(address)}: {json.dumps(sealed)}")
                fresh[(key, address)] = hit
                out += (sep, hit[1])
                sep = ",\n"
            out.append("\n  }" if items else "}")
        out.append("\n}\n")
        self._entries = fresh
        return out

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

    def _atomic_write(self, text: str | list[str]) -> os.stat_result:
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


def _signature(st: os.stat_result) -> tuple:
    """What changes when the file is replaced (a new inode) or edited in place."""
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)
