"""A state document checked field by field before anything reads it.

A hand-edited or damaged state (no lineage, a list where a mapping belongs, version 99)
must stop the run with one line naming the file and the field, before any API call:
read as it is, it would make changes that cannot be recorded, or crash halfway.
"""
from __future__ import annotations

from typing import Any

from reconciler.errors import StateError

ENTRY_TYPES: dict[str, tuple[type, ...]] = {
    "kind": (str,), "id": (str,), "last_applied": (dict,), "outputs": (dict,), "secrets": (dict,),
    "protected": (bool,), "deletion_policy": (str, type(None)), "adopted": (bool,), "depends_on": (list,),
    "file": (str, type(None)), "sensitive_paths": (list,), "expires_at": (str, type(None)),
}
REQUIRED = ("kind", "id")
NAMES = {dict: "a mapping", list: "a list", str: "a string", bool: "true or false", int: "an integer",
         type(None): "null"}


def _wanted(types: tuple[type, ...]) -> str:
    return " or ".join(NAMES.get(t, t.__name__) for t in types)


def _type_name(value: Any) -> str:
    return NAMES.get(type(value), type(value).__name__)


def check(doc: Any, where: str, version: int) -> None:
    """Raise StateError "<where>: <field>: <what is wrong>" for the first problem found."""
    def fail(field: str, message: str) -> None:
        raise StateError(f"{where}: {field}: {message}; the state file was edited or damaged: restore it "
                         "(e.g. `reconciler state history`, a backup) or fix that field")

    if not isinstance(doc, dict):
        fail("(document)", f"expected a mapping, got {_type_name(doc)}")
    if doc.get("version") != version or isinstance(doc.get("version"), bool):
        fail("version", f"{doc.get('version')!r} is not a state version this reconciler reads (it reads {version})")
    lineage = doc.get("lineage")
    if not isinstance(lineage, str) or not lineage.strip():
        fail("lineage", "missing" if lineage is None else f"expected a non-empty string, got {_type_name(lineage)}")
    serial = doc.get("serial")
    if not isinstance(serial, int) or isinstance(serial, bool) or serial < 0:
        fail("serial", f"expected a whole number >= 0, got {serial!r}")
    for section, wanted in (("expired", dict), ("events", list)):
        if not isinstance(doc.get(section, wanted()), wanted):
            fail(section, f"expected {NAMES[wanted]}, got {_type_name(doc.get(section))}")
    for section in ("resources", "pending"):
        entries = doc.get(section, {})
        if not isinstance(entries, dict):
            fail(section, f"expected a mapping, got {_type_name(entries)}")
        for address, entry in entries.items():
            field = f"{section}.{address}"
            if not isinstance(entry, dict):
                fail(field, f"expected a mapping, got {_type_name(entry)}")
            if section == "pending":
                if not isinstance(entry.get("kind"), str):
                    fail(f"{field}.kind", "expected a string")
                if not isinstance(entry.get("spec", {}), dict):
                    fail(f"{field}.spec", f"expected a mapping, got {_type_name(entry.get('spec'))}")
                continue
            for name in REQUIRED:
                if name not in entry:
                    fail(f"{field}.{name}", "missing")
            for name, types in ENTRY_TYPES.items():
                if name in entry and not isinstance(entry[name], types):
                    fail(f"{field}.{name}", f"expected {_wanted(types)}, got {_type_name(entry[name])}")
            if any(not isinstance(d, str) for d in entry.get("depends_on", [])):
                fail(f"{field}.depends_on", "expected a list of addresses")
    forgotten = doc.get("forgotten", {})
    if not isinstance(forgotten, dict):
        fail("forgotten", f"expected a mapping, got {_type_name(forgotten)}")
    for address, entry in forgotten.items():
        if not isinstance(entry, dict):
            fail(f"forgotten.{address}", f"expected a mapping, got {_type_name(entry)}")
        for name in ("kind", "id", "fingerprint"):
            if not isinstance(entry.get(name), str):
                fail(f"forgotten.{address}.{name}", "expected a string")
