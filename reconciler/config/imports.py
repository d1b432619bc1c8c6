"""`imports:` entries: declarative import, reviewed in a pull request like any change.

    imports:
      - {to: valdi.vm.trainer, id: 9f2c...}
      - {to: 'valohai.datum.part[p0]', id: 0190...}

Checked at load (file:line:col): `to` is a declared resource or instance (a for_each
block names one of its instances); `id` looks like an id (ID_RULE: an empty one, one
padded with spaces or holding a slash would read no object, or another endpoint); one
entry per address and per id. At plan time the
engine reads the object by its id: absent (or of another kind) is an error; an address
the state already manages with that id is a no-op.
"""
from __future__ import annotations

import re
from typing import Any, Callable, Collection

from reconciler.config.model import Import, Position
from reconciler.config.moved import ADDRESS
from reconciler.errors import Problem

ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}")
ID_RULE = "an id is 1 to 200 letters, digits, '-', '_', '.' or ':', starting with a letter or digit"


def id_problem(value: str | int) -> str | None:
    """Why `value` (an imports: id, `reconciler import`'s REMOTE_ID) is no id, or None."""
    if isinstance(value, int):
        return None if value >= 0 else f"an id is 0 or more when it is a number (got {value})"
    return None if ID.fullmatch(value) else f"{ID_RULE} (got {value!r})"


def entries(value: Any, locate: Callable[[str], Position], problems: list[Problem]) -> list[Import]:
    out: list[Import] = []
    if not isinstance(value, list):
        return out
    for i, item in enumerate(value):
        if not isinstance(item, dict) or not isinstance(item.get("to"), str) \
                or not isinstance(item.get("id"), (str, int)) or isinstance(item.get("id"), bool):
            continue  # the schema reported it
        if not ADDRESS.fullmatch(item["to"]):
            continue  # the schema's address pattern reported it
        why = id_problem(item["id"])
        if why:
            pos = locate(f"imports[{i}].id")
            problems.append(Problem(pos.file, pos.line, pos.column, f"imports[{i}].id", why))
            continue
        out.append(Import(item["to"], str(item["id"]), locate(f"imports[{i}].to")))
    return out


def check(imports: list[Import], declared: Collection[str], blocks: Collection[str],
          problems: list[Problem]) -> list[Import]:
    """The imports whose `to` is declared, each address and id once."""
    by_to: dict[str, Import] = {}
    by_id: dict[str, Import] = {}
    out = []
    for imp in imports:
        pos = imp.position
        if imp.to not in declared:
            why = (f"{imp.to} has for_each or count: import into one of its instances ({imp.to}[KEY])"
                   if imp.to in blocks else f"{imp.to} is not declared in the manifests: add its block first")
            problems.append(Problem(pos.file, pos.line, pos.column, "imports.to", why))
            continue
        for seen, key, what in ((by_to, imp.to, "address"), (by_id, imp.id, "id")):
            if key in seen:
                problems.append(Problem(pos.file, pos.line, pos.column, "imports", f"the {what} {key} is imported "
                                        f"twice (also at {seen[key].position}); keep one entry"))
                break
        else:
            by_to[imp.to], by_id[imp.id] = imp, imp
            out.append(imp)
    return out
