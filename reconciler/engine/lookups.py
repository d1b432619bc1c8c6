"""`lookups:` at plan time: each picks exactly one row of its catalogue, and every
`${lookup.NAME.FIELD}` in the specs becomes that row's value, before the plan-time
checks and the live reads (which then see an ordinary spec).

The rows come through the provider clients' cached listings, the ones the plan reads
anyway (VALDI's device catalogue, Valohai's stores, Code Ocean's assets), so a lookup
adds no request where its listing is read already. Errors are Problems at the lookup's
(or the reference's) file:line:col: a `where` field the catalogue lacks names the fields
it has; zero or several matches list the candidates by name and key fields.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable, Mapping

from reconciler.config.lookups import name_of
from reconciler.config.model import Lookup, Manifest, Position, Ref, Resource, Template
from reconciler.errors import ManifestError, Problem
from reconciler.providers.contract import Catalogue

SHOWN = 20  # candidates named in an error


def substituted(manifest: Manifest, catalogue: Callable[[str], Catalogue], api: Callable[[str], Any]) -> Manifest:
    """The manifest with every lookup reference replaced by its value (a new Manifest:
    the loaded one, which a cache may keep, is not changed). catalogue(kind) and
    api(kind) give a lookup kind's catalogue and its provider's client."""
    problems: list[Problem] = []
    rows = {name: row for name, row in ((lk.name, pick(lk, catalogue(lk.kind), api(lk.kind), problems))
                                        for lk in manifest.lookups.values()) if row is not None}
    if problems:
        raise ManifestError(problems)
    resources = [_resource(r, rows, manifest.lookups, problems) for r in manifest.resources]
    if problems:
        raise ManifestError(problems)
    return replace(manifest, resources=resources)


def pick(lookup: Lookup, catalogue: Catalogue, api: Any, problems: list[Problem]) -> dict | None:
    rows = catalogue.rows(api)
    matches = _matching(lookup, rows, catalogue, problems)
    if matches is None:
        return None
    if not matches:  # e.g. assets shared with us, not made by us: read only now
        more = catalogue.more_rows(api)
        if more:
            rows = more
            matches = _matching(lookup, rows, catalogue, problems) or []
    if len(matches) == 1:
        return matches[0]
    wanted = ", ".join(f"{k} = {v!r}" for k, v in lookup.where.items())
    if matches:
        message = (f"{len(matches)} {lookup.kind} rows match {wanted}: {_listed(matches, catalogue)}; "
                   "add a where field that tells them apart")
    else:
        message = f"no {lookup.kind} matches {wanted}; there are: {_listed(rows, catalogue) or 'none'}"
    problems.append(_problem(lookup.position, f"lookups.{lookup.name}", message))
    return None


def _matching(lookup: Lookup, rows: list[dict], catalogue: Catalogue, problems: list[Problem]) -> list[dict] | None:
    fields = sorted({k for row in rows for k in row})
    for key in lookup.where:
        if rows and key not in fields:
            problems.append(_problem(lookup.positions.get(f"where.{key}", lookup.position),
                                     f"lookups.{lookup.name}.where.{key}",
                                     f"{lookup.kind} has no field '{key}' (it has: {', '.join(fields)})"))
            return None
    return [row for row in rows if all(row.get(k) == v for k, v in lookup.where.items())]


def _listed(rows: list[dict], catalogue: Catalogue) -> str:
    shown = "; ".join(catalogue.label(r) for r in rows[:SHOWN])
    return shown + (f" and {len(rows) - SHOWN} more" if len(rows) > SHOWN else "")


def _resource(r: Resource, rows: Mapping[str, dict], lookups: Mapping[str, Lookup],
              problems: list[Problem]) -> Resource:
    said = len(problems)

    def value(ref: Ref, path: str) -> Any:
        name = name_of(ref.address)
        if name is None:
            return ref
        row = rows.get(name)
        if row is None or ref.attribute not in row:
            if row is not None and len(problems) == said:
                pos = r.where(f"spec.{path}")
                problems.append(_problem(pos, f"{r.address}.spec.{path}", f"{ref}: a {lookups[name].kind} has no "
                                         f"field '{ref.attribute}' (it has: {', '.join(sorted(row))})"))
            return ref
        return row[ref.attribute]

    spec = _walk(r.spec, value, "")
    return r if spec is r.spec else replace(r, spec=spec)


def _walk(node: Any, value: Callable[[Ref, str], Any], path: str) -> Any:
    """`node` with lookup references replaced; untouched parts shared, not copied."""
    if isinstance(node, Ref):
        return value(node, path)
    if isinstance(node, Template):
        parts = [value(p, path) if isinstance(p, Ref) else p for p in node.parts]
        if all(not isinstance(p, Ref) for p in parts):
            return "".join(str(p) for p in parts)
        return node if parts == list(node.parts) else Template(tuple(parts))
    if isinstance(node, dict):
        out = {k: _walk(v, value, f"{path}.{k}" if path else k) for k, v in node.items()}
        return node if all(out[k] is node[k] for k in node) else out
    if isinstance(node, list):
        items = [_walk(v, value, f"{path}[{i}]") for i, v in enumerate(node)]
        return node if all(a is b for a, b in zip(items, node)) else items
    return node


def _problem(pos: Position, path: str, message: str) -> Problem:
    return Problem(pos.file, pos.line, pos.column, path, message)
