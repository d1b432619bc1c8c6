"""YAML text -> plain Python values, with the position of every field.

Built from libyaml's event stream rather than from composed nodes: the events come
out of C without recursion (libyaml's composer recurses in C and crashes on a
100,000-deep `[[[...`), building values straight from events costs about what
composing alone does (composing and then walking the nodes took twice as long; see
tests/benchmarks/bench_manifest.py), and an explicit stack lets us stop at the nesting limit.

Rules on top of YAML (each breach is a Problem, never an exception):
  * duplicate keys in a mapping are rejected (YAML keeps the last one silently);
  * keys are the text as written (`on:` stays "on", not True);
  * timestamps stay strings (specs are JSON-shaped); custom tags are rejected;
  * strings over 1 MB, nesting deeper than 50, and alias expansion beyond a budget
    ("billion laughs") are rejected.
"""
from __future__ import annotations

import copy
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Iterator

import yaml
from yaml.events import (
    AliasEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)

from reconciler.config.model import Position
from reconciler.errors import Problem

try:
    Loader: type = yaml.CSafeLoader  # libyaml
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    Loader = yaml.SafeLoader

MAX_STRING = 1_000_000
MAX_DEPTH = 50
MAX_ALIAS_NODES = 100_000  # values copied in through *aliases, per file

_TAG = "tag:yaml.org,2002:"
_STR, _NULL, _BOOL, _INT, _FLOAT = (_TAG + t for t in ("str", "null", "bool", "int", "float"))
_KEEP_AS_TEXT = {_TAG + "timestamp", _TAG + "value", _TAG + "merge"}
_MAP_TAGS = {None, "!", _TAG + "map"}
_SEQ_TAGS = {None, "!", _TAG + "seq"}

_resolver = yaml.resolver.Resolver()
_IMPLICIT = frozenset(c for c in yaml.resolver.Resolver.yaml_implicit_resolvers if c)  # first chars of non-strings
_constructor = yaml.constructor.SafeConstructor()
# first characters after which the resolver knows only words (yes/no/on/off/true/false/null):
# a longer plain text starting so ("f020000", "name-x") is a string without asking it
_WORD_STARTS = frozenset(c for c, found in yaml.resolver.Resolver.yaml_implicit_resolvers.items()
                         if c and all(tag in (_BOOL, _NULL) for tag, _regex in found))
_LONGEST_WORD = 5  # "false"


@dataclass
class Document:
    value: Any
    position: Position  # where the document's content starts
    # "resources[3].spec.details" -> the field's key (mapping entry) or the item (list entry)
    # a dict while reading; a Positions view (the deeper ones read on demand) after read_documents
    positions: Mapping[str, Position] = field(default_factory=dict)


def _plain(text: str, implicit: bool) -> Any:
    """The value of an untagged scalar that is plainly a string (quoted, or not starting
    like a number, bool or null) or a plain decimal; None for the rest (the resolver's)."""
    if not implicit or (text and (text[0] not in _IMPLICIT
                                  or (len(text) > _LONGEST_WORD and text[0] in _WORD_STARTS))):
        return text if len(text) <= MAX_STRING else None
    if text.isdigit() and text.isascii() and (text[0] != "0" or len(text) == 1) and len(text) < 19:
        return int(text)  # what the resolver's regexes would say, faster
    return None


def _tag(tag: str) -> str:
    return "!!" + tag[len(_TAG):] if tag.startswith(_TAG) else tag


class _Stop(Exception):
    """The rest of the file cannot be trusted (too deep, bad structure): stop reading it."""


@dataclass(slots=True)  # one per mapping and list read: 400,000 at 100,000 resources
class _Frame:
    value: Any  # dict or list being built
    path: str
    mark: Any  # libyaml's start mark (0-based)
    anchor: str | None
    is_map: bool
    size: int = 1  # nodes inside, for the alias budget
    key: str | None = None  # mapping: the key waiting for its value
    key_path: str = ""
    expecting_key: bool = True
    merges: list | None = None  # (value, position) of each `<<:`, made on the first
    skip: bool = False  # a bad key: its value is read and dropped


class _Reader:
    def __init__(self, file: str, problems: list[Problem], record_all: bool = True):
        self.file = file
        # False: only the positions of the top two levels ("resources[3]", "providers.x");
        # the rest are found again, by a second read, if an error ever needs them
        self.record_all = record_all
        self.problems = problems
        self.docs: list[Document] = []
        self.anchors: dict[str, tuple[Any, int]] = {}
        self.alias_nodes = 0
        self.stack: list[_Frame] = []
        self.positions: dict[str, Position] = {}
        self.doc_pos: Position | None = None

    def pos(self, mark: yaml.Mark) -> Position:
        return Position(self.file, mark.line + 1, mark.column + 1)

    def problem(self, pos: Position, path: str, message: str) -> None:
        self.problems.append(Problem(pos.file, pos.line, pos.column, path, message))

    # -- where the next value goes (hot path: ~300,000 events for 10,000 resources) -----
    def _slot(self, mark: yaml.Mark) -> str | None:
        """The path of the value about to start, or None when it is a mapping key."""
        if not self.stack:
            return ""
        top = self.stack[-1]
        if not top.is_map:
            path = f"{top.path}[{len(top.value)}]"
            if self.record_all or len(self.stack) <= SHALLOW:
                self.positions[path] = Position(self.file, mark.line + 1, mark.column + 1)
            return path
        return None if top.expecting_key else top.key_path

    def _put(self, value: Any, size: int, mark: yaml.Mark, anchor: str | None) -> None:
        if anchor:
            self.anchors[anchor] = (value, size)
        if not self.stack:
            self.docs.append(Document(value, self.doc_pos or self.pos(mark), self.positions))
            return
        top = self.stack[-1]
        top.size += size
        if not top.is_map:
            top.value.append(value)
            return
        if top.skip:
            top.skip = False
        elif top.key == "<<":  # merge key: applied when the mapping closes (explicit keys win)
            if top.merges is None:
                top.merges = []
            top.merges.append((value, self.pos(mark)))
        else:
            top.value[top.key] = value
        top.expecting_key = True

    def _key(self, event: ScalarEvent) -> None:
        top = self.stack[-1]
        key = event.value  # the text as written: `on:` stays "on", `1:` stays "1"
        path = f"{top.path}.{key}" if top.path else key
        top.key, top.key_path, top.expecting_key, top.skip = key, path, False, False
        if key == "<<" and event.implicit[0]:
            return
        pos = Position(self.file, event.start_mark.line + 1, event.start_mark.column + 1)
        if key in top.value:
            first = self.positions.get(path)
            where = f" (first at line {first.line})" if first else ""
            self.problem(pos, path, f"duplicate key '{key}'{where}")
            top.skip = True
            return
        if self.record_all or len(self.stack) <= SHALLOW:
            self.positions[path] = pos

    # -- events -------------------------------------------------------------------------
    def scalar(self, event: ScalarEvent) -> None:
        path = self._slot(event.start_mark)
        if path is None:
            return self._key(event)
        text = event.value
        tag = event.tag
        if tag is None or tag == "!":
            if not event.implicit[0] or (text and text[0] not in _IMPLICIT):  # quoted, or plainly a string
                value: Any = text if len(text) <= MAX_STRING else self._construct(event, path)
            elif text.isdigit() and text.isascii() and (text[0] != "0" or len(text) == 1) and len(text) < 19:
                value = int(text)  # a plain decimal: the resolver's regexes would say the same, slower
            else:
                value = self._construct(event, path)
        else:
            value = self._construct(event, path)
        self._put(value, 1, event.start_mark, event.anchor)

    def _construct(self, event: ScalarEvent, path: str) -> Any:
        text = event.value
        if len(text) > MAX_STRING:
            self.problem(self.pos(event.start_mark), path,
                         f"value is {len(text):,} characters long; the limit is {MAX_STRING:,}")
            return ""
        tag = event.tag if event.tag not in (None, "!") else _resolver.resolve(yaml.ScalarNode, text, event.implicit)
        if tag == _STR or tag in _KEEP_AS_TEXT:
            return text
        if tag == _NULL:
            return None
        if tag == _BOOL:
            return _constructor.bool_values.get(text.lower(), text)
        if tag in (_INT, _FLOAT):
            try:
                node = yaml.ScalarNode(tag, text)
                return (_constructor.construct_yaml_int if tag == _INT else _constructor.construct_yaml_float)(node)
            except ValueError:
                self.problem(self.pos(event.start_mark), path, f"number {text[:20]}... is too large"
                             if len(text) > 20 else f"'{text}' is not a valid number")
                return None
        self.problem(self.pos(event.start_mark), path, f"unsupported YAML tag {_tag(event.tag)}")
        return None

    def start(self, event: yaml.Event, container: Any, allowed: set) -> None:
        path = self._slot(event.start_mark)
        if path is None:
            self.problem(self.pos(event.start_mark), self.stack[-1].path,
                         "a mapping key must be a plain string, not a list or mapping")
            raise _Stop
        if event.tag not in allowed:
            self.problem(self.pos(event.start_mark), path, f"unsupported YAML tag {_tag(event.tag)}")
        if len(self.stack) >= MAX_DEPTH:
            self.problem(self.pos(event.start_mark), path[:60] + "..." if len(path) > 60 else path,
                         f"nested deeper than {MAX_DEPTH} levels")
            raise _Stop
        self.stack.append(_Frame(container, path, event.start_mark, event.anchor, type(container) is dict))

    def end(self) -> None:
        frame = self.stack.pop()
        if frame.merges:
            self._merge(frame)
        self._put(frame.value, frame.size, frame.mark, frame.anchor)

    def _merge(self, frame: _Frame) -> None:
        explicit = dict(frame.value)
        merged: dict = {}
        for value, pos in frame.merges or ():
            sources = value if isinstance(value, list) else [value]
            for source in sources:
                if not isinstance(source, dict):
                    self.problem(pos, frame.path, "a merge key (<<) takes a mapping or a list of mappings")
                    continue
                for k, v in source.items():
                    merged.setdefault(k, v)
        frame.value.clear()
        frame.value.update({**merged, **explicit})

    def alias(self, event: AliasEvent) -> None:
        pos = self.pos(event.start_mark)
        path = self._slot(event.start_mark)
        if path is None:
            self.problem(pos, self.stack[-1].path, "a mapping key must be a plain string, not an alias")
            raise _Stop
        if event.anchor not in self.anchors:
            self.problem(pos, path, f"unknown alias *{event.anchor}")
            raise _Stop
        value, size = self.anchors[event.anchor]
        self.alias_nodes += size
        if self.alias_nodes > MAX_ALIAS_NODES:
            self.problem(pos, path, f"aliases expand to more than {MAX_ALIAS_NODES:,} values")
            raise _Stop
        # a copy: two resources sharing one dict would see each other's edits
        self._put(copy.deepcopy(value) if size > 1 else value, size, event.start_mark, None)

    def run(self, text: str) -> list[Document]:
        loader = Loader(text)
        get_event, stack, file, positions_of = loader.get_event, self.stack, self.file, self
        record_all = self.record_all
        try:
            while True:
                event = get_event()
                if event is None:
                    break
                kind = type(event)
                if kind is ScalarEvent and stack and stack[-1].is_map:
                    # the hot path, inlined: a key, or a plain string or decimal value in a mapping
                    top = stack[-1]
                    value_text = event.value
                    if top.expecting_key:
                        if value_text in top.value or value_text == "<<":
                            self._key(event)
                            continue
                        path = f"{top.path}.{value_text}" if top.path else value_text
                        top.key, top.key_path, top.expecting_key, top.skip = value_text, path, False, False
                        if record_all or len(stack) <= SHALLOW:
                            mark = event.start_mark
                            positions_of.positions[path] = Position(file, mark.line + 1, mark.column + 1)
                        continue
                    if event.tag is None and not top.skip and top.key != "<<" and not event.anchor:
                        plain = _plain(value_text, event.implicit[0])
                        if plain is not None:
                            top.value[top.key] = plain
                            top.size += 1
                            top.expecting_key = True
                            continue
                elif kind is ScalarEvent and stack and event.tag is None and not event.anchor:
                    # a plain string or decimal item of a list (`tags: [a, b]`)
                    plain = _plain(event.value, event.implicit[0])
                    if plain is not None:
                        top = stack[-1]
                        if record_all or len(stack) <= SHALLOW:
                            mark = event.start_mark
                            positions_of.positions[f"{top.path}[{len(top.value)}]"] = Position(
                                file, mark.line + 1, mark.column + 1)
                        top.value.append(plain)
                        top.size += 1
                        continue
                if kind is MappingEndEvent or kind is SequenceEndEvent:
                    self.end()
                elif kind is ScalarEvent:
                    self.scalar(event)
                elif kind is MappingStartEvent:
                    self.start(event, {}, _MAP_TAGS)
                elif kind is SequenceStartEvent:
                    self.start(event, [], _SEQ_TAGS)
                elif kind is AliasEvent:
                    self.alias(event)
                elif kind is DocumentStartEvent:
                    self.positions, self.anchors, self.doc_pos = {}, {}, self.pos(event.start_mark)
        except _Stop:
            pass
        except yaml.MarkedYAMLError as e:
            self.syntax_error(e, text)
        except yaml.YAMLError as e:  # ReaderError: bad characters
            self.reader_error(e, text)
        finally:
            loader.dispose()
        return self.docs

    # -- errors from the parser, as one line each -------------------------------------
    def syntax_error(self, e: yaml.MarkedYAMLError, text: str) -> None:
        mark = e.problem_mark or e.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        message = e.problem or e.context or "YAML syntax error"
        lines = text.splitlines()
        here = lines[line - 1] if 0 < line <= len(lines) else ""
        if "\t" in message or "\t" in here[: len(here) - len(here.lstrip(" \t"))]:
            message = "tab character in indentation: YAML indents with spaces only"
        elif "nesting depth" in message:
            # newer libyaml (PyYAML >= 6.0.3) stops deep flow nesting while scanning ahead,
            # before our own MAX_DEPTH check sees the events: same problem, same words
            self.problems.append(Problem(self.file, line, col, "", f"nested deeper than {MAX_DEPTH} levels"))
            return
        elif e.context and e.problem and e.context not in message:
            message = f"{message} ({e.context}"
            if e.context_mark and e.context_mark is not mark:
                message += f" at line {e.context_mark.line + 1}"
            message += ")"
        self.problems.append(Problem(self.file, line, col, "", f"YAML syntax: {message}"))

    def reader_error(self, e: yaml.YAMLError, text: str) -> None:
        index = getattr(e, "position", 0) or 0
        line = text.count("\n", 0, index) + 1
        col = index - (text.rfind("\n", 0, index) + 1) + 1
        char = getattr(e, "character", None)
        what = f"character {char!r}" if isinstance(char, str) else "a character"
        self.problems.append(Problem(self.file, line, col, "",
                                     f"{what} is not allowed in YAML ({getattr(e, 'reason', e)})"))


def read_documents(text: str, file: str, problems: list[Problem]) -> list[Document]:
    """Every document of a YAML stream, as plain values with positions. Problems are
    appended; a document cut short by a problem is dropped.

    Positions are compact: a clean file is read keeping only the top two levels' (one
    Position per resource instead of one per field: ~28 MiB for 10,000 resources); a
    deeper one is looked up by reading the file again, once, when a message needs it.
    A file with problems is read again at once with every position, for the messages."""
    found: list[Problem] = []
    docs = _Reader(file, found, record_all=False).run(text)
    if found:
        return _Reader(file, problems, record_all=True).run(text)
    return with_lazy_positions(docs, text, file)


def with_lazy_positions(docs: list[Document], text: str, file: str) -> list[Document]:
    """Documents of a clean read (their shallow positions), the rest read from `text` on demand."""
    again = _ReadAgain(text, file)
    for i, doc in enumerate(docs):
        doc.positions = Positions(doc.positions, again, i)
    return docs


SHALLOW = 2  # stack depth whose positions a clean read keeps: "resources[3]", "providers.valohai"


class _ReadAgain:
    """The full positions of a file's documents, read on first need (shared by its documents)."""

    def __init__(self, text: str, file: str):
        # kept compressed: rarely read again, and a 100,000-resource folder's text is ~16 MiB
        # held to the end of the run (level 1: ~10x smaller for tens of ms)
        self.packed: bytes | None = zlib.compress(text.encode(), 1)
        self.file = file
        self.docs: list[Mapping[str, Position]] | None = None

    def positions(self, index: int) -> Mapping[str, Position]:
        if self.docs is None:
            text = zlib.decompress(self.packed).decode() if self.packed is not None else ""
            self.docs = [d.positions for d in _Reader(self.file, [], record_all=True).run(text)]
            self.packed = None
        return self.docs[index] if index < len(self.docs) else {}


class Positions(Mapping[str, Position]):
    """A document's positions: the shallow ones at hand, the rest read again on demand."""

    __slots__ = ("_shallow", "_again", "_index", "_full")

    def __init__(self, shallow: Mapping[str, Position], again: _ReadAgain, index: int):
        self._shallow, self._again, self._index = shallow, again, index
        self._full: dict[str, Position] | None = None

    @property
    def shallow(self) -> Mapping[str, Position]:
        """The positions a clean read kept (what the manifest cache stores)."""
        return self._shallow

    def _all(self) -> dict[str, Position]:
        if self._full is None:
            self._full = {**self._again.positions(self._index), **self._shallow}
        return self._full

    def __getitem__(self, key: str) -> Position:
        found = self._shallow.get(key)
        return found if found is not None else self._all()[key]

    def __contains__(self, key: object) -> bool:
        return key in self._shallow or key in self._all()

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


class PositionView(Mapping[str, Position]):
    """The positions under one path, keyed relative to it ("" is the path itself), without
    copying them: `resources[3]` of a document gives a resource its "spec.x" positions."""

    __slots__ = ("_positions", "_prefix")  # one per resource

    def __init__(self, positions: Mapping[str, Position], prefix: str):
        self._positions, self._prefix = positions, prefix

    def _key(self, key: str) -> str:
        return f"{self._prefix}.{key}" if key and not key.startswith("[") else self._prefix + key

    def __getitem__(self, key: str) -> Position:
        return self._positions[self._key(key)]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._key(key) in self._positions

    def __iter__(self) -> Iterator[str]:
        cut = len(self._prefix)
        for key in self._positions:
            if key == self._prefix:
                yield ""
            elif key.startswith(self._prefix) and key[cut:cut + 1] in (".", "["):
                yield key[cut + 1:] if key[cut] == "." else key[cut:]

    def __len__(self) -> int:
        return sum(1 for _ in self)


def locate(positions: Mapping[str, Position], key: str) -> Position:
    """The position of a field key ("spec.details.vcpus"), or of its nearest parent that
    has one (a value built by an expression has no position of its own)."""
    while key:
        if key in positions:
            return positions[key]
        cut = max(key.rfind("."), key.rfind("["))
        key = key[:cut] if cut > 0 else ""
    return positions.get("") or next(iter(positions.values()), Position("?", 1, 1))
