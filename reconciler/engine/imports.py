"""`imports:` at plan time: which entries still have work to do, and whether the live
object each names exists (read by its kind's observe with the id, so no extra request:
it is the listing the plan reads anyway)."""
from __future__ import annotations

from typing import Mapping, Sequence

from reconciler.config.model import Import, Resource
from reconciler.errors import PlanError
from reconciler.providers.contract import Live
from reconciler.state.base import StateDoc


def pending(imports: Sequence[Import], state: StateDoc) -> dict[str, str]:
    """address -> id for the entries the state does not hold yet. An address managed with
    that id already is a no-op; with another id, or an id managed elsewhere, an error."""
    out: dict[str, str] = {}
    owners = {rs.id: a for a, rs in state.resources.items()}
    errors = []
    for imp in imports:
        rs = state.resources.get(imp.to)
        if rs is not None:
            if rs.id != imp.id:
                errors.append(f"{imp.position}: imports: {imp.to} is already managed, with id {rs.id}, not "
                              f"{imp.id}; remove the entry, or `reconciler state rm {imp.to}` first")
            continue
        if imp.id in owners:
            errors.append(f"{imp.position}: imports: {imp.id} is already managed as {owners[imp.id]}; "
                          f"an object has one address (use `moved:` to give it another)")
            continue
        out[imp.to] = imp.id
    if errors:
        raise PlanError("\n".join(errors))
    return out


def check_found(imports: Sequence[Import], wanted: Mapping[str, str], live: Mapping[str, Live | None],
                resources: Sequence[Resource]) -> None:
    """Every pending import found live with the id it names, or a plan-time error naming
    the entry. A kind may find an object by its natural key too (a datum by its URL): an
    object with another id is not the one the entry names, and is never taken over for it."""
    kinds = {r.address: r.kind for r in resources}

    def missing(imp: Import) -> bool:
        found = live.get(imp.to)
        return found is None or found.id != imp.id

    errors = [f"{imp.position}: imports: no {kinds.get(imp.to, 'object')} with id {imp.id} is visible with "
              f"these credentials (it does not exist, or it is not a {kinds.get(imp.to, 'object')})"
              for imp in imports if imp.to in wanted and missing(imp)]
    if errors:
        raise PlanError("\n".join(errors))
