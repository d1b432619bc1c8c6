"""A content-addressed cache of what reading and checking the manifests found: an unchanged
folder is neither parsed nor validated again.

Three layers, each keyed by digests, so a changed input is a different key, never a stale hit:
  * documents (disk and memory): one file's YAML read into values plus the positions a
    clean read keeps, keyed by the file's bytes. A changed file is read again; the others
    come from here. Positions deeper than a resource are not stored: yamlread reads them
    again from the text only when a message needs one.
  * verdicts (disk and memory): "these inputs check clean". The key is the manifest's
    `inputs_key` (every file's path and digest, the command-line variables and var files,
    the environment values and the ${file(...)} contents the load read, the tool's version
    and code) plus the schemas and the kinds. A hit skips the schema, reference and cycle checks; the checks that look
    at the disk (local files) run every time.
  * manifests (memory only, for `watch`): the whole built manifest, by `inputs_key`.
  * no-ops: the planner's verified no-ops of the last plan over a state (engine/fastpath.py).

On disk under <manifest folder>/.reconciler/cache/: safe to delete. Each file starts with
a header line carrying the digest of the rest (`reconciler-cache FORMAT sha256:HEX`), so a
truncated or bit-flipped file is ignored with a --debug line, never read as another
manifest (JSON that still parses after a flipped bit would be). Nothing secret is written: documents are the files'
own text, and environment and variable values enter only digests.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import stat
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import msgspec

from reconciler.config import parallel
from reconciler.config.model import Manifest, Position
from reconciler.config.walk import copy_plain
from reconciler.config.yamlread import Document, read_documents, with_lazy_positions
from reconciler.errors import Problem

log = logging.getLogger("reconciler.config.cache")
_decode_json = msgspec.json.Decoder().decode
_decode_noops = msgspec.json.Decoder(dict[str, str]).decode
FORMAT = 3  # of the files below; part of every key (2: the digest header, 3: what a file says)
FOLDER = Path(".reconciler") / "cache"
_ENTRY = re.compile(r"(docs|clean|noops)-[0-9a-f]{64}")
KEEP_FILES = 256  # the oldest go beyond this many (each edit of a file writes one)
MAX_INPUT_BYTES = 10 * 1024 * 1024  # a var file or file() larger than this is the loader's to refuse


@lru_cache(maxsize=1)
def code_stamp() -> str:
    """The tool's version and its code (path, size, mtime of every module): a cache is
    never trusted by another version, nor by an edited checkout."""
    from reconciler import __version__

    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256(f"{FORMAT}\0{__version__}\0".encode())
    for f in sorted(root.rglob("*.py")):
        st = f.stat()
        h.update(f"{f.relative_to(root)}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    return h.hexdigest()


class RecordingEnv(Mapping[str, str]):
    """The environment, remembering every name the load asked for (and the answer).

    Listing it is not recorded: the one reader that lists it (credentials in provider
    addresses, config/sensitivity.py) only finds problems, which the builder finds afresh
    on every load; the manifest a verdict is about depends on the names read one by one."""

    def __init__(self, env: Mapping[str, str]):
        self._env = env
        self.read: dict[str, str | None] = {}

    def __getitem__(self, name: str) -> str:
        value = self._env.get(name)
        self.read[name] = value
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        self.read[name] = self._env.get(name)
        return self.read[name] is not None

    def get(self, name: str, default: Any = None) -> Any:
        value = self._env.get(name)
        self.read[name] = value
        return default if value is None else value

    def __iter__(self) -> Iterator[str]:
        return iter(self._env)

    def __len__(self) -> int:
        return len(self._env)

    def items(self) -> Any:  # a listing: not recorded (see above)
        return self._env.items()

    def values_read(self) -> dict[str, str | None]:
        return dict(self.read)


@dataclass
class Stats:
    """What the last loads found here (shown with --debug; tests read it)."""

    documents_read: int = 0  # files parsed
    documents_cached: int = 0  # files taken from the cache
    verdicts_cached: int = 0  # validations skipped
    verdicts_checked: int = 0  # validations run
    manifests_cached: int = 0  # whole loads skipped (memory)


@dataclass
class ManifestCache:
    """`folder`: where the disk layer lives (None: memory only). `memory`: keep what was
    loaded between loads of one process (`watch`)."""

    folder: Path | None = None
    memory: bool = False
    stats: Stats = field(default_factory=Stats)
    _docs: dict[str, str] = field(default_factory=dict)  # key -> encoded documents
    _verdicts: set[str] = field(default_factory=set)
    _manifests: dict[str, list[tuple[dict[str, str | None], Manifest]]] = field(default_factory=dict)
    _noops: dict[str, dict[str, str]] = field(default_factory=dict)
    _read_ahead: dict[str, str | None] = field(default_factory=dict)  # key -> encoded (None: read here)
    _said: dict[str, str] = field(default_factory=dict)  # file -> what it says, of the last documents()

    @classmethod
    def beside(cls, paths: Sequence[str | Path], memory: bool = False) -> "ManifestCache":
        """The cache of the manifest folder the state lives beside (the first path's)."""
        first = Path(paths[0]) if paths else Path(".")
        root = first if first.is_dir() else first.parent
        return cls(folder=root / FOLDER, memory=memory)

    # -- the inputs of one load ----------------------------------------------------------------
    def start(self, texts: list[tuple[str, str]], env: Mapping[str, str], inputs: Any,
              require_values: bool) -> "Load":
        """`texts`: (path as given, text) of every file, in order."""
        h = hashlib.sha256(code_stamp().encode())
        for name, text in texts:
            h.update(f"{name}\0{_digest(text)}\0".encode())
        h.update(repr(require_values).encode())
        if inputs is not None:
            h.update(json.dumps([list(inputs.var_files), list(inputs.var_args), inputs.recorded],
                                default=repr, sort_keys=True).encode())
            for path in inputs.var_files:  # their contents, not only their names
                h.update(_small_file(path))
        return Load(self, h.hexdigest(), RecordingEnv(env), env)

    # -- documents ------------------------------------------------------------------------
    @staticmethod
    def _docs_key(text: str) -> str:
        return "docs-" + hashlib.sha256(f"{code_stamp()}\0{_digest(text)}".encode()).hexdigest()

    def read_ahead(self, texts: list[tuple[str, str]]) -> None:
        """Parse the files the cache lacks on the machine's other cores, for documents() to
        take (a fresh clone's 100,000 resources: seconds of parsing, one file per core)."""
        if self.folder is None or not self._usable():
            return
        missing = [(self._docs_key(text), file, text) for file, text in texts]
        missing = [m for m in missing if not (self.memory and m[0] in self._docs) and not (self.folder / m[0]).exists()]
        self._read_ahead.update(parallel.read_encoded(missing, _read_encoded))

    def said(self, file: str) -> str | None:
        """said_digest() of the documents documents() last gave for `file`, when known."""
        return self._said.get(file)

    def documents(self, text: str, file: str, problems: list[Problem]) -> list[Document]:
        key = self._docs_key(text)
        self._said.pop(file, None)
        encoded = self._docs.get(key) if self.memory else None
        if encoded is None:
            encoded = self._read_ahead.pop(key, None)
            if encoded is not None:  # parsed by a worker: a read, which the disk is yet to keep
                docs = self._decoded(encoded, file, text)
                if docs is not None:
                    self.stats.documents_read += 1
                    if self.memory:
                        self._docs[key] = encoded
                    self._write(key, encoded)
                    return docs
                encoded = None
        if encoded is None:
            encoded = self._read(key)
        if encoded is not None:
            docs = self._decoded(encoded, file, text)
            if docs is not None:
                self.stats.documents_cached += 1
                if self.memory:
                    self._docs[key] = encoded
                return docs
        self.stats.documents_read += 1
        found: list[Problem] = []
        docs = read_documents(text, file, found)
        problems.extend(found)
        for doc in docs:  # as a cached read would give them: a cold run's peak is a warm one's
            _shared_strings(doc.value)
        if not found:  # a file with problems is read again next time, for its messages
            encoded = _encode_documents(docs, plain=True)
            if encoded is not None:
                self._said[file] = _said_of(encoded)
                if self.memory:
                    self._docs[key] = encoded
                self._write(key, encoded)
        return docs

    def _decoded(self, encoded: str, file: str, text: str) -> list[Document] | None:
        found = _decode_documents(encoded, file, text)
        if found is None:
            return None
        self._said[file] = found[1]
        return found[0]

    # -- verdicts ---------------------------------------------------------------------------
    def checked_clean(self, manifest: Manifest, kinds: Mapping[str, Any]) -> bool:
        key = self._verdict_key(manifest, kinds)
        clean = key is not None and (key in self._verdicts or self._read(key) is not None)
        if clean:
            self.stats.verdicts_cached += 1
            if self.memory and key is not None:
                self._verdicts.add(key)
        else:
            self.stats.verdicts_checked += 1
        log.debug("manifest cache %s: %s; files parsed %d, from the cache %d", self.folder or "(memory)",
                  "checked clean before" if clean else "checking", self.stats.documents_read,
                  self.stats.documents_cached)
        return clean

    def remember_clean(self, manifest: Manifest, kinds: Mapping[str, Any]) -> None:
        key = self._verdict_key(manifest, kinds)
        if key is None:
            return
        if self.memory:
            self._verdicts.add(key)
        self._write(key, "clean")

    def _verdict_key(self, manifest: Manifest, kinds: Mapping[str, Any]) -> str | None:
        if not manifest.inputs_key:
            return None
        from reconciler.config.validation import load_schema

        h = hashlib.sha256(manifest.inputs_key.encode())
        try:
            h.update(json.dumps(load_schema("manifest.schema.json"), sort_keys=True).encode())
            for name in sorted(kinds):
                schema = kinds[name].schema
                if isinstance(schema, str):
                    schema = load_schema(schema)
                h.update(f"\0{name}\0".encode() + json.dumps(schema, sort_keys=True, default=repr).encode())
        except (OSError, ValueError) as e:  # a schema we cannot read: no verdict is trusted
            log.debug("manifest cache: schemas unreadable (%s): not used", e)
            return None
        return "clean-" + h.hexdigest()

    # -- the planner's verified no-ops (engine/fastpath.py) ------------------------------------
    def noops(self, lineage: str) -> dict[str, str]:
        """address -> digest of the resources the last plan over this state found unchanged."""
        key = self._noops_key(lineage)
        if self.memory and key in self._noops:
            return dict(self._noops[key])
        text = self._read(key)
        if text is None:
            return {}
        try:
            return _decode_noops(text)  # a mapping of strings, checked in C
        except (msgspec.MsgspecError, ValueError):
            pass
        log.debug("manifest cache: %s is damaged: ignored", key)
        return {}

    def remember_noops(self, lineage: str, noops: dict[str, str], before: dict[str, str]) -> None:
        key = self._noops_key(lineage)
        if self.memory:
            self._noops[key] = dict(noops)
        if noops != before:
            self._write(key, json.dumps(noops, sort_keys=True))

    @staticmethod
    def _noops_key(lineage: str) -> str:
        return "noops-" + hashlib.sha256(f"{code_stamp()}\0{lineage}".encode()).hexdigest()

    # -- the disk ---------------------------------------------------------------------------
    def _usable(self) -> bool:
        """No cache through a symbolic link (a checkout could point .reconciler/cache
        anywhere: entries would be written, and pruned, there)."""
        if self.folder is None:
            return False
        return not any(os.path.islink(p) for p in (self.folder, self.folder.parent))

    def _read(self, key: str) -> str | None:
        if self.folder is None or not self._usable():
            return None
        try:
            stored = (self.folder / key).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as e:
            log.debug("manifest cache: %s unreadable (%s): ignored", self.folder / key, e)
            return None
        payload = _checked(stored)
        if payload is None:
            log.debug("manifest cache: %s is damaged (its digest header does not match): ignored", self.folder / key)
        return payload

    def _write(self, key: str, text: str) -> None:
        if self.folder is None or not self._usable():
            log.debug("manifest cache: %s is a symbolic link: not used", self.folder)
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = self.folder / f".{key}.{os.getpid()}.tmp"
            tmp.write_bytes(_with_header(text))
            os.replace(tmp, self.folder / key)  # readers see the old file or the whole new one
            self._prune()
        except OSError as e:  # a read-only folder: the cache is an optimisation only
            log.debug("manifest cache: cannot write %s (%s)", self.folder, e)

    def _prune(self) -> None:
        assert self.folder is not None
        entries = [p for p in self.folder.iterdir() if _ENTRY.fullmatch(p.name)]  # only what we wrote
        if len(entries) <= KEEP_FILES:
            return
        entries.sort(key=lambda p: p.stat().st_mtime_ns)
        for p in entries[:len(entries) - KEEP_FILES]:
            p.unlink(missing_ok=True)


@dataclass
class Load:
    """One load's view of the cache: its inputs so far, and the environment it reads."""

    cache: ManifestCache
    base_key: str  # everything but the environment
    env: RecordingEnv
    real_env: Mapping[str, str]

    def remembered(self) -> Manifest | None:
        """The manifest an identical earlier load built (memory layer only)."""
        for values, manifest in self.cache._manifests.get(self.base_key, ()):
            if all(self.real_env.get(n) == v for n, v in values.items() if n != _FILES_READ) \
                    and _files_digest(manifest.files_read) == values.get(_FILES_READ):
                self.cache.stats.manifests_cached += 1
                return _fresh(manifest)
        return None

    def documents(self, text: str, file: str, problems: list[Problem]) -> list[Document]:
        return self.cache.documents(text, file, problems)

    def said(self, file: str) -> str | None:
        return self.cache.said(file)

    def finish(self, manifest: Manifest) -> None:
        """Stamp a manifest built without problems with its inputs' key, and keep it."""
        values = self.env.values_read()
        values[_FILES_READ] = _files_digest(manifest.files_read)  # what ${file(...)} read
        h = hashlib.sha256(self.base_key.encode())
        h.update(json.dumps(sorted(values.items())).encode())
        manifest.inputs_key = h.hexdigest()
        if self.cache.memory:
            kept = self.cache._manifests.setdefault(self.base_key, [])
            kept.insert(0, (values, manifest))
            del kept[4:]  # a few environments (e.g. two credentials) at most


_FILES_READ = "\0files read"  # no environment variable has this name


def _files_digest(paths: list[str]) -> str:
    h = hashlib.sha256()
    for path in paths:
        h.update(f"{path}\0".encode() + _small_file(path) + b"\0")
    return h.hexdigest()


def _small_file(path: str) -> bytes:
    """A regular file's bytes; a marker for anything else (/dev/zero, a FIFO, a huge file:
    reading those is the loader's to refuse, with its own message)."""
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_INPUT_BYTES:
            return f"\0not read: mode {st.st_mode:o}, {st.st_size} bytes, mtime {st.st_mtime_ns}".encode()
        with open(path, "rb") as f:
            return f.read(MAX_INPUT_BYTES + 1)
    except OSError as e:
        return f"\0unreadable: {e.errno}".encode()


def _fresh(manifest: Manifest) -> Manifest:
    """A copy a run may use as its own: specs and lists are never shared between runs."""
    resources = [replace(r, spec=copy_plain(r.spec), depends_on=list(r.depends_on),
                         sensitive_paths=set(r.sensitive_paths) or frozenset())
                 for r in manifest.resources]
    return replace(manifest, resources=resources, providers=copy_plain(manifest.providers),
                   variables=copy_plain(manifest.variables))


# -- the digest header of every file -------------------------------------------------------------
_HEADER = f"reconciler-cache {FORMAT} sha256:"


def _with_header(text: str) -> bytes:
    payload = text.encode("utf-8", "surrogatepass")
    return f"{_HEADER}{hashlib.sha256(payload).hexdigest()}\n".encode() + payload


def _checked(stored: bytes) -> str | None:
    """The payload of a stored file, or None when its header is missing or does not match."""
    header, newline, payload = stored.partition(b"\n")
    if not newline or not header.startswith(_HEADER.encode()):
        return None
    if header[len(_HEADER):].decode("ascii", "replace") != hashlib.sha256(payload).hexdigest():
        return None
    try:
        return payload.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return None


# -- documents as JSON ---------------------------------------------------------------------------
def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


# what JSON of plain YAML values might not give back: a lone surrogate (checked by a decode
# then). Integers of any length come back exact (msgspec 0.23, test_manifest_cache).
_RISKY = re.compile("[\ud800-\udfff]")


def said_digest(values: list[Any]) -> str:
    """What a file says (its documents' values), not its bytes: a comment or a reflow leaves
    a saved plan, which records this of every file, valid."""
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=repr).encode()).hexdigest()


def _said_of(encoded: str) -> str:
    return encoded[len('{"said": "'):][:64]  # the first field, written by _encode_documents


def _encode_documents(docs: list[Document], plain: bool = False) -> str | None:
    """JSON of the documents (and of what they say: a cached file's said_digest costs
    nothing), or None when JSON would not give back the same values
    (a float that is not finite, a type JSON lacks). `plain`: the values are as yamlread
    made them (dict, list, str, int, float, bool, None, nothing else): decoding the text
    again to compare (a second of CPU at 100,000 resources) is needed only for risky text."""
    out = []
    for doc in docs:
        shallow = getattr(doc.positions, "shallow", doc.positions)
        out.append({"value": doc.value, "at": [doc.position.line, doc.position.column],
                    "positions": [[k, p.line, p.column] for k, p in shallow.items()]})
    try:
        said = said_digest([doc.value for doc in docs])
        payload = {"said": said, "docs": out}
        text = json.dumps(payload, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError):
        return None
    if plain and not _RISKY.search(text):
        return text
    if _decode_json(text) != payload:  # tuples, subclasses: not worth a second thought
        return None
    return text


_SHORT = 24  # longer strings (URLs, names) are mostly each resource's own


def _shared_strings(value: Any) -> Any:
    """A document whose resources repeat short strings (each one's kind, a store's name, a
    tag) keeps each once: at 100,000 resources every repeated value is megabytes. The
    resources' kinds and the short strings at the top of their specs (and in lists there)."""
    resources = value.get("resources") if isinstance(value, dict) else None
    if not isinstance(resources, list):
        return value
    seen: dict[str, str] = {}
    for entry in resources:
        if not isinstance(entry, dict):
            continue
        kind = entry.get("kind")
        if type(kind) is str:
            entry["kind"] = seen.setdefault(kind, kind)
        spec = entry.get("spec")
        if not isinstance(spec, dict):
            continue
        for key, v in spec.items():
            if type(v) is str and len(v) <= _SHORT:
                spec[key] = seen.setdefault(v, v)
            elif type(v) is list:
                for i, item in enumerate(v):
                    if type(item) is str and len(item) <= _SHORT:
                        v[i] = seen.setdefault(item, item)
        if len(seen) > 10_000:  # mostly unique values after all: start again
            seen.clear()
    return value


def _read_encoded(text: str, file: str) -> str | None:
    """In a worker: the file's documents as the cache keeps them, or None (problems, or
    values JSON cannot carry: the loader reads the file itself, for its messages)."""
    found: list[Problem] = []
    docs = read_documents(text, file, found)
    return None if found else _encode_documents(docs, plain=True)


def _decode_documents(encoded: str, file: str, text: str) -> tuple[list[Document], str] | None:
    """The documents and their said_digest()."""
    try:
        payload = _decode_json(encoded)  # what json.loads gives, in C: at 100,000 resources, a third of the time
        said, raw = payload["said"], payload["docs"]
        if type(said) is not str or len(said) != 64:
            raise ValueError("no digest")
        docs = [Document(_shared_strings(d["value"]), Position(file, d["at"][0], d["at"][1]),
                         {k: Position(file, line, column) for k, line, column in d["positions"]})
                for d in raw]
    except (ValueError, TypeError, KeyError, IndexError, msgspec.MsgspecError) as e:
        log.debug("manifest cache: a documents entry for %s is damaged (%s): read the file instead", file, e)
        return None
    return with_lazy_positions(docs, text, file), said
