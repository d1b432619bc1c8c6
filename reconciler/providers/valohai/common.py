"""What both Valohai kinds share: the project read into an index, Live objects, and the
property writes (update, update_many, release) through the batch metadata endpoints."""
from __future__ import annotations

import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Mapping

from reconciler.config.model import Resource
from reconciler.errors import ApiError, NotFound, Problem
from reconciler.plan.model import FieldChange
from reconciler.providers.contract import Diff, Kind, KindContext, Live, only
from reconciler.providers.shared import problem
from reconciler.providers.valohai import properties
from reconciler.providers.valohai.client import ValohaiClient

OUTPUTS = {"id", "uri", "name", "sha256", "size"}
DATUM_SCHEME = "datum://"


class Index:
    """The project's datums and aliases, from one listing of each."""

    def __init__(self, datums: list[dict], aliases: list[dict]):
        self.by_id = {d["id"]: d for d in datums if not d.get("purged")}
        self.by_uri = {d["uri"]: d for d in self.by_id.values() if d.get("uri")}
        self.alias_target: dict[str, str] = {}
        self.aliases_of: dict[str, list[str]] = defaultdict(list)
        for a in aliases:
            target = (a.get("datum") or {}).get("id") if isinstance(a.get("datum"), dict) else a.get("datum")
            if target:
                self.alias_target[a["name"]] = target
                self.aliases_of[target].append(a["name"])

    @classmethod
    def read(cls, api) -> "Index":
        return cls(*cls.listings(api))

    @staticmethod
    def listings(api) -> tuple[list[dict], list[dict]]:
        """(datums, aliases): the client reads each once per run and keeps it."""
        with ThreadPoolExecutor(max_workers=1) as pool:  # the two listings side by side
            aliases = pool.submit(api.aliases)
            datums = api.datums()
            return datums, aliases.result()

    def resolve(self, ref: Any, api=None) -> dict | None:
        """A datum id, `datum://<id>` or `datum://<alias>` -> the datum, or None. An id
        outside the project listing is fetched (only then: one GET)."""
        if not isinstance(ref, str) or not ref:
            return None
        key = ref[len(DATUM_SCHEME):] if ref.startswith(DATUM_SCHEME) else ref
        if not is_uuid(key):
            target = self.alias_target.get(key)
            return self.by_id.get(target) if target else None
        if key in self.by_id:
            return self.by_id[key]
        return fetch(api, key) if api is not None else None


def is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
        return True
    except ValueError:
        return False


def fetch(api, datum_id: str) -> dict | None:
    try:
        datum = api.get_datum(datum_id)
    except NotFound:
        return None
    if not isinstance(datum, dict):  # an empty body, an HTML page: unreadable, never "gone"
        raise ApiError(f"unreadable answer: expected a datum object, got {type(datum).__name__}", api="valohai",
                       endpoint="GET /api/v0/data/{id}/")
    return None if datum.get("purged") else datum


def make_live(datum: dict, aliases: list[str], spec: dict | None, identity: dict,
              adopted: bool = False, assumed: dict | None = None, recorded: Mapping[str, Any] | None = None) -> Live:
    """`assumed`: what we last applied, taken for what the datum does not show. `recorded`:
    the outputs the state holds; an equal string is kept as that object, so the listing's
    copies go when the listing does (at 100,000 datums: ~30 MiB)."""
    try:
        attrs = {**identity, **properties.live_attrs(datum, aliases, spec, assumed)}
    except ValueError as e:
        raise ApiError(str(e), api="valohai", endpoint="GET /api/v0/data/") from None
    known = recorded or {}
    outputs = {"id": _same(datum["id"], known.get("id")), "uri": _same(datum.get("uri"), known.get("uri")),
               "name": _same(datum.get("name"), known.get("name")),
               "sha256": _same(datum.get("sha256"), known.get("sha256")), "size": datum.get("size")}
    if attrs.get("url") is not None and attrs["url"] == outputs["uri"]:
        attrs["url"] = outputs["uri"]
    return Live(id=outputs["id"], attrs=attrs, outputs=outputs, adopted=adopted, local=_NONE, secrets=_NONE)


_NONE: dict[str, Any] = {}  # a datum has no local files nor secrets: one empty dict for all (read only)


def _same(value: Any, recorded: Any) -> Any:
    return recorded if type(recorded) is str and type(value) is str and recorded == value else value


class MetadataKind(Kind[ValohaiClient]):
    """Properties, tags and alias of a datum: diff, update, update_many, release."""

    sensitive: set[str] = set()
    outputs = OUTPUTS

    def prefetch(self, ctx: KindContext[ValohaiClient]) -> None:
        """The listings observe reads, requested while the engine prepares what it asks."""
        Index.listings(ctx.api)

    def identity_changes(self, spec: dict, attrs: dict) -> list[FieldChange]:
        """Fields that name a different datum: they force a replacement."""
        raise NotImplementedError

    def diff(self, spec: dict, live: Live, last_applied: dict | None) -> Diff:
        notes = []
        if live.attrs.get("unread"):
            notes.append(f"Valohai's datum object has no {' or '.join(live.attrs['unread'])}: compared with "
                         "what we last applied (changes made elsewhere are not seen; tags set elsewhere may "
                         "be replaced)")
        return Diff(self.identity_changes(spec, live.attrs) +
                    properties.diff(spec, live.attrs, last_applied), notes)

    def update(self, ctx: KindContext[ValohaiClient], live: Live, spec: dict, diff: Diff) -> Live:
        return only(self.update_many(ctx, [(live, spec, diff)]))

    def update_many(self, ctx: KindContext[ValohaiClient], items: list[tuple[Live, dict, Diff]]) -> list[Live | Exception]:
        """All changes in one metadata/apply (apply-all when every body is the same)."""
        bodies: dict[str, dict] = {}
        for live, _spec, diff in items:
            body = properties.body_for(diff.changes)
            if body:
                bodies.setdefault(live.id, {}).update(body)
        failures = ctx.api.apply_metadata(bodies)
        failures.update(self._not_done(ctx, bodies, {live.id: live for live, _s, _d in items}, failures))
        out: list[Live | Exception] = []
        for live, _spec, diff in items:
            if live.id in failures:
                out.append(failures[live.id])
                continue
            attrs = properties.after(live.attrs, properties.body_for(diff.changes))
            out.append(Live(live.id, attrs, dict(live.outputs), adopted=live.adopted))
        return out

    @staticmethod
    def _not_done(ctx: KindContext[ValohaiClient], bodies: dict[str, dict], lives: dict[str, Live],
                  failures: dict[str, Exception]) -> dict[str, Exception]:
        """What a write answered with success but did not do: an alias the server would not
        detach, or tags it kept when `valohai.tags` dropped them (a server that adds tags
        rather than replacing them). One listing, only when tags were dropped. Without
        this the next plan would ask for the same change again, forever."""
        out: dict[str, Exception] = {}
        for d in ctx.api.alias_kept & set(bodies):
            if d not in failures:
                out[d] = ApiError(f"Valohai refused `valohai.alias: null`, so the alias of datum {d} still points "
                                  "at it; detach it in Valohai's web UI (or point the alias elsewhere)",
                                  api="valohai", endpoint="POST /api/v0/data/metadata/apply/")
        detaching = [d for d, b in bodies.items() if properties.ALIAS in b and b[properties.ALIAS] is None
                     and d not in failures and d not in out]
        if detaching:  # a server may answer 200 and keep the alias: one listing says
            still = Index([], ctx.api.aliases()).aliases_of
            for d in detaching:
                if still.get(d):
                    out[d] = ApiError(f"Valohai answered `valohai.alias: null` with success but alias "
                                      f"{', '.join(sorted(still[d]))} still points at datum {d}; detach it in "
                                      "Valohai's web UI (or point the alias elsewhere)",
                                      api="valohai", endpoint="POST /api/v0/data/metadata/apply/")
        dropping = {d: set(lives[d].attrs.get("tags") or []) - set(b[properties.TAGS])
                    for d, b in bodies.items() if properties.TAGS in b and d in lives and d not in failures
                    and "tags" not in (lives[d].attrs.get("unread") or [])}
        dropping = {d: tags for d, tags in dropping.items() if tags}
        if dropping:
            now = {x["id"]: x for x in ctx.api.datums()}
            for d, tags in dropping.items():
                kept = sorted(tags & {properties.tag_name(t) for t in (now.get(d) or {}).get("tags") or []})
                if kept and "tags" in (now.get(d) or {}):
                    out[d] = ApiError(f"Valohai kept tags {', '.join(kept)} on datum {d}: this server adds the "
                                      "`valohai.tags` list to the datum's tags instead of replacing them, so no "
                                      "API call removes a tag; remove them in Valohai's web UI",
                                      api="valohai", endpoint="POST /api/v0/data/metadata/apply/")
        return out

    def release(self, ctx: KindContext[ValohaiClient], live: Live, last_applied: dict | None) -> None:
        body = properties.release_body(live.attrs, last_applied)
        if not body:
            return
        failures = ctx.api.apply_metadata({live.id: body})
        for d, problem_ in self._not_done(ctx, {live.id: body}, {live.id: live}, failures).items():
            ctx.progress(f"datum {d} not fully released: {problem_}")  # nothing more an API call can do
        error = failures.get(live.id)
        if isinstance(error, NotFound):  # the client gives a 400 saying so this type too
            return  # the datum is gone: nothing of ours is left on it
        if error:
            raise error

    def check_offline(self, resources: list[Resource]) -> list[Problem]:
        """Two resources must not claim the same alias: the last write would win."""
        problems: list[Problem] = []
        seen: dict[str, str] = {}
        for r in resources:
            alias = r.spec.get("alias")
            if isinstance(alias, str) and alias in seen:
                problems.append(problem(r, "alias", f"alias {alias!r} is also set by {seen[alias]}"))
            elif isinstance(alias, str):
                seen[alias] = r.address
        return problems
