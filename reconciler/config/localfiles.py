"""Every local file a manifest reads or writes, confined and accounted for.

A kind declares its path fields (`local_files = {"public_key_file": "read",
"private_key_file": "write", "files[].source": "read"}`); `check` holds every such path
to the same rules, at `validate`, before any call:

* it resolves, symlinks followed, inside the declaring manifest's folder;
* it never names the state, a lock or anything else under `.reconciler/`, nor a
  manifest file: a private key written over `main.yaml` loses the manifest, a volume
  file uploaded from the state publishes its secrets;
* a path one resource writes is neither written nor read by another;
* an existing file is overwritten only if we wrote it (the ledger below says so); this
  one is checked at plan time for the resources the plan creates or replaces.

The ledger, `.reconciler/written.json` beside the declaring manifest, records for every
file we wrote an HMAC-SHA256 of its place and content under a key never in the ledger
(reconciler.config.keys, the plan-signing key's own derivation). A file whose entry
verifies is ours to replace; an entry that is not keyed (older versions, or a hand that
copied the plain SHA-256 of a user's file) or does not verify is not trusted.
"""
from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping

from reconciler.config import keys
from reconciler.config.boundedread import Refused, read_bytes
from reconciler.config.model import Manifest, Ref, Resource, Template
from reconciler.config.privatefile import write_private
from reconciler.errors import PlanError, Problem

if TYPE_CHECKING:  # typing only: the engine never imports a provider
    from reconciler.config.declared import DeclaredKind

READ, WRITE = "read", "write"
RESERVED = ".reconciler"  # the state, its lock, the sandbox, the ledger
LEDGER = "written.json"
LEDGER_LIMIT = 16 * 1024 * 1024  # thousands of entries; a bigger "ledger" is not read
KEY_SOURCES = (keys.PLAN_ENV, keys.STATE_ENV, keys.MACHINE)
_ledger_lock = threading.Lock()


def declared(resource: Resource, kind: DeclaredKind) -> Iterator[tuple[str, Any, str]]:
    """(field key, value, READ|WRITE) for every path field the spec sets."""
    for pattern, mode in kind.local_files.items():
        for key, value in _walk(resource.spec, pattern.split("."), "spec"):
            yield key, value, mode


def _walk(node: Any, parts: list[str], key: str) -> Iterator[tuple[str, Any]]:
    if not parts:
        yield key, node
        return
    head, rest = parts[0], parts[1:]
    name, listed = (head[:-2], True) if head.endswith("[]") else (head, False)
    if not isinstance(node, dict) or name not in node:
        return
    if listed:
        if isinstance(node[name], list):
            for i, item in enumerate(node[name]):
                yield from _walk(item, rest, f"{key}.{name}[{i}]")
        return
    yield from _walk(node[name], rest, f"{key}.{name}")


def resolved(resource: Resource, value: str) -> Path:
    raw = Path(value).expanduser()
    return (raw if raw.is_absolute() else Path(resource.base_dir) / raw).resolve()


def digest(path: Path, algorithm: str = "sha256") -> str | None:
    """A local file's digest, or None when it cannot be read."""
    return _fed(hashlib.new(algorithm, usedforsecurity=False), path)


def _fed(h: Any, path: Path) -> str | None:
    """`h` (a hashlib or hmac object) fed the file in 1 MiB pieces: its hex digest, or None
    when the file cannot be read."""
    try:
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except OSError:
        return None
    return str(h.hexdigest())


def _ledger_path(folder: Path) -> Path:
    return folder / RESERVED / LEDGER


def _read_ledger(folder: Path) -> tuple[dict[str, Any], str | None]:
    """(entries by relative path, why the ledger cannot be trusted at all, or None)."""
    try:
        body = json.loads(read_bytes(_ledger_path(folder), LEDGER_LIMIT))
    except FileNotFoundError:
        return {}, None
    except Refused as e:
        return {}, str(e)
    except OSError as e:
        return {}, f"cannot be read ({e.strerror or e.__class__.__name__})"
    except (ValueError, RecursionError):  # not UTF-8, not JSON, or nested past the parser
        return {}, "is not JSON"
    if not isinstance(body, dict):
        return {}, "is not a JSON object"
    return body, None


def _mac(secret: bytes, relative: str) -> Any:
    """The keyed hash an entry holds, bound to the file's place: fed the content next."""
    return hmac.new(keys.derived(secret, LEDGER), relative.encode("utf-8", "surrogateescape") + b"\0",
                    hashlib.sha256)


def _keyed(entry: Any) -> bool:
    return (isinstance(entry, dict) and entry.get("key") in KEY_SOURCES
            and isinstance(entry.get("hmac-sha256"), str) and re.fullmatch(r"[0-9a-f]{64}", entry["hmac-sha256"]) is not None)


def _inside(folder: Path, relative: str) -> bool:
    if os.path.isabs(relative) or ".." in Path(relative).parts or "\0" in relative:
        return False
    try:
        return (folder / relative).resolve().is_relative_to(folder.resolve())
    except (OSError, ValueError):
        return False


def write_output(base_dir: Path, value: str, text: str) -> Path:
    """Write a file the manifest asked for (mode 0600, atomic) and note it in the ledger,
    so the next run may replace it and nothing else. Entries that are not keyed (older
    versions) are dropped. The file is written even when the ledger cannot be: it is then
    never replaced, which is safe, and a generated private key is not lost."""
    folder = Path(base_dir).resolve()
    target = (folder / Path(value).expanduser()).resolve()
    relative = os.path.relpath(target, folder)
    with _ledger_lock:  # the ledger first: a crash between the two never strands a file of ours
        entries, _ = _read_ledger(folder)
        kept = {k: v for k, v in entries.items() if k != relative and _keyed(v) and _inside(folder, k)}
        try:
            secret, source = keys.find()  # found at plan time already (overwrites)
            mac = _mac(secret, relative)
            mac.update(text.encode("utf-8"))
            kept[relative] = {"hmac-sha256": mac.hexdigest(), "key": source}
        except PlanError:
            pass
        with contextlib.suppress(OSError):
            write_private(_ledger_path(folder), json.dumps(kept, indent=1, sort_keys=True) + "\n")
    write_private(target, text)
    return target


def remove_output(base_dir: Path, value: str) -> bool:
    """Remove a file we wrote (its ledger entry verifies under this run's key: the content is
    still ours) and its entry: what a deleted object's keys were written to. Anything else
    stays, and so does everything when no key can be found."""
    folder = Path(base_dir).resolve()
    target = (folder / Path(value).expanduser()).resolve()
    relative = os.path.relpath(target, folder)
    with _ledger_lock:
        try:
            if not target.is_file() or _not_ours(target, folder) is not None:
                return False
        except PlanError:  # no key to check the entry with: keep the file
            return False
        entries, _ = _read_ledger(folder)
        target.unlink()
        entries.pop(relative, None)
        with contextlib.suppress(OSError):
            write_private(_ledger_path(folder), json.dumps(entries, indent=1, sort_keys=True) + "\n")
    return True


def _reserved(manifest: Manifest, env: Mapping[str, str]) -> tuple[list[Path], set[Path]]:
    """(folders nothing may name, files nothing may name)."""
    folders = {Path(manifest.root).resolve() / RESERVED}
    files = {Path(f).resolve() for f in manifest.files}
    state = env.get("RECONCILER_STATE")
    if state and not re.match(r"^[a-z]+://", state):
        files.add(Path(state).resolve())
        files.add(Path(state + ".lock").resolve())
    return sorted(folders), files


def check(manifest: Manifest, kinds: Mapping[str, DeclaredKind], env: Mapping[str, str] | None = None) -> list[Problem]:
    env = os.environ if env is None else env
    folders, files = _reserved(manifest, env)
    problems: list[Problem] = []
    entries: list[tuple[Resource, str, str, str, Path]] = []  # resource, key, value, mode, target
    for r in manifest.resources:
        kind = kinds.get(r.kind)
        if kind is None:
            continue
        for key, value, mode in declared(r, kind):
            if isinstance(value, (Ref, Template)):
                problems.append(_problem(r, key, f"a {'written' if mode == WRITE else 'read'} file path cannot "
                                         "use a resource reference: it must be checked before any call"))
                continue
            if not isinstance(value, str) or not value.strip():
                continue  # the schema reports it
            target = resolved(r, value)
            base = Path(r.base_dir).resolve()
            # a read path outside the folder is the kind's check_local_path's to report (with existence)
            problem = _confinement(value, target, base, folders + [base / RESERVED], files, mode == WRITE)
            if problem:
                problems.append(_problem(r, key, problem))
                continue
            entries.append((r, key, value, mode, target))
    writers: dict[Path, tuple[Resource, str]] = {}
    for r, key, value, mode, target in entries:
        if mode != WRITE:
            continue
        if target in writers:
            other, other_key = writers[target]
            problems.append(_problem(r, key, f"'{value}' is also written by {other.address} ({other_key}): "
                                     "give each resource its own file"))
            continue
        writers[target] = (r, key)
        try:
            if target.is_dir():
                problems.append(_problem(r, key, f"'{value}' is a directory; name a file"))
        except OSError as e:  # a name too long for the file system: bad input, not a crash
            shown = value if len(value) <= 60 else value[:57] + "..."
            problems.append(_problem(r, key, f"'{shown}' cannot be looked up: {e.strerror or e}"))
    for r, key, value, mode, target in entries:
        if mode == READ and target in writers and writers[target][0] is not r:
            other, other_key = writers[target]
            problems.append(_problem(r, key, f"'{value}' is written by {other.address} ({other_key}): "
                                     "a resource cannot read another's output file"))
    return problems


MAX_READ = 1024 * 1024  # file(path) in an expression: its content goes into a spec


def read_text(base_dir: str, value: str) -> str:
    """file(path) in an expression: a UTF-8 text file inside the manifest folder, held to
    the same rules as the paths kinds declare. ValueError says why not."""
    base = Path(base_dir).resolve()
    target = (Path(base_dir) / value).resolve()
    problem = _confinement(value, target, base, [base / RESERVED], set(), outside=False)
    if problem is None and base not in target.parents:
        problem = f"'{value}' is outside the manifest folder {base}; keep files beside the manifests"
    if problem:
        raise ValueError(problem)
    try:  # a FIFO or a device is refused unread, as manifests are
        return read_bytes(target, MAX_READ).decode("utf-8")
    except Refused as e:
        raise ValueError(f"'{value}' {e}") from None
    except FileNotFoundError:
        raise ValueError(f"'{value}' does not exist (beside {base})") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"'{value}' is not UTF-8 text (byte {e.start + 1:,} is not); file() reads text files") from None
    except OSError as e:
        raise ValueError(f"cannot read '{value}': {getattr(e, 'strerror', None) or e.__class__.__name__}") from None


def _confinement(value: str, target: Path, base: Path, folders: list[Path], files: set[Path],
                 outside: bool) -> str | None:
    if outside and target != base and base not in target.parents:
        return (f"'{value}' is outside the manifest folder {base}"
                + (" (through a symbolic link)" if not Path(value).is_absolute() and ".." not in Path(value).parts
                   else "") + "; keep files beside the manifests")
    for folder in folders:
        if target == folder or folder in target.parents:
            return f"'{value}' is inside {RESERVED}/, where the state and its lock live: pick another path"
    if target in files:
        return f"'{value}' is a manifest file or the state: pick another path"
    if outside and target.suffix.lower() in (".yaml", ".yml"):
        return f"'{value}' would be a YAML file in a manifest folder, read as a manifest: pick another name"
    return None


def overwrites(resources: list[Resource], kinds: Mapping[str, DeclaredKind]) -> list[Problem]:
    """For the resources a plan creates or replaces (their files are written then): an
    existing file there that reconciler did not write is never overwritten. Checked at
    plan time, before any call: a file written by an older version beside a resource
    that is already made is no obstacle, since nothing will write it. The key the ledger
    needs is found here too (PlanError in one line), so writing never lacks it."""
    problems = []
    writes = False
    for r in resources:
        kind = kinds.get(r.kind)
        for key, value, mode in declared(r, kind) if kind is not None else ():
            if mode == WRITE and isinstance(value, str) and value.strip():
                writes = True
                why = _not_ours(resolved(r, value), Path(r.base_dir).resolve())
                if why:
                    problems.append(_problem(r, key, f"'{value}' already exists and {why}: it is never "
                                             "overwritten; move the file away or delete it, or name another file"))
    if writes and not problems:
        keys.find()
    return problems


def _not_ours(target: Path, base: Path) -> str | None:
    """Why an existing file at `target` is not ours to replace; None when it is (or there is none)."""
    if not target.is_file():
        return None
    entries, broken = _read_ledger(base)
    where = f"{RESERVED}/{LEDGER}"
    if broken:
        return f"{where} {broken}, so nothing in it is trusted"
    relative = os.path.relpath(target, base)
    entry = entries.get(relative)
    if entry is None:
        return "reconciler did not write it"
    if not _keyed(entry):
        return f"its entry in {where} is not keyed (written by an older reconciler, or by hand), so it is not trusted"
    secret, source = keys.find()
    made = _fed(_mac(secret, relative), target)
    if made is not None and hmac.compare_digest(made, entry["hmac-sha256"]):
        return None  # we wrote it, and nobody changed it since
    other = f"; it was recorded under the {entry['key']} key and this run has {source}" if entry["key"] != source else ""
    return (f"its entry in {where} does not verify (the file was changed since, or the entry was not written by "
            f"reconciler under this run's key{other})")


def _problem(resource: Resource, key: str, message: str) -> Problem:
    pos = resource.where(key)
    return Problem(pos.file, pos.line, pos.column, f"{resource.address}.{key}", message)
