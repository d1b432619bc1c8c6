"""valohai.datum_properties: properties, tags and alias on a datum the manifest does not
adopt (an execution's output), addressed by `datum`: an id, `datum://<id>` or
`datum://<alias>`.

The resource is the set of properties, not the datum: it is "created" when first
applied, and deleting it only releases what we set (the datum is never touched
otherwise). When the alias it names moves to another datum, the properties follow:
the old datum is released and the new one gets them (a replacement).
"""
from __future__ import annotations

from reconciler.config.model import Resource
from reconciler.errors import ApiError, Problem
from reconciler.plan.model import FieldChange
from reconciler.providers.contract import DeletionPolicy, KindContext, Live, Wanted, only
from reconciler.providers.shared import problem
from reconciler.providers.valohai import properties
from reconciler.providers.valohai.client import ValohaiClient
from reconciler.providers.valohai.common import Index, MetadataKind, fetch, make_live


class DatumPropertiesKind(MetadataKind):
    name = "valohai.datum_properties"
    schema = "valohai.datum_properties.schema.json"
    deletion_policies = ("release",)
    deletion_effects = {"release": DeletionPolicy("release", "the properties, tags and alias reconciler set are "
                                                             "removed; the datum is never touched")}

    def observe(self, ctx: KindContext[ValohaiClient], wanted: list[Wanted]) -> dict[str, Live | None]:
        index = Index.read(ctx.api)
        out: dict[str, Live | None] = {}
        for w in wanted:
            spec = w.spec if w.spec is not None else (w.last_applied or {})
            if w.id:  # ours already: the datum we wrote to
                datum = index.by_id.get(w.id) or fetch(ctx.api, w.id)
            elif w.lookup:  # a create was journaled: it may have been applied
                datum = index.resolve(spec.get("datum"), ctx.api)
            else:  # never applied: nothing of ours exists yet
                datum = None
            out[w.address] = None if datum is None else self._live(index, datum, spec, w.last_applied)
        return out

    def _live(self, index: Index, datum: dict, spec: dict, assumed: dict | None = None) -> Live:
        target = index.resolve(spec.get("datum"))
        shown = spec.get("datum") if target is not None and target["id"] == datum["id"] else datum["id"]
        return make_live(datum, index.aliases_of.get(datum["id"], []), spec, {"datum": shown}, assumed=assumed)

    def identity_changes(self, spec: dict, attrs: dict) -> list[FieldChange]:
        if spec.get("datum") == attrs.get("datum"):
            return []
        return [FieldChange("datum", attrs.get("datum"), spec.get("datum"), forces_replacement=True)]

    def check(self, ctx: KindContext[ValohaiClient], resources: list[Resource]) -> list[Problem]:
        """Every datum named exists (ids and aliases known at plan time)."""
        index = Index.read(ctx.api)
        return [problem(r, "datum", f"no datum {r.spec['datum']!r} in the Valohai project")
                for r in resources
                if isinstance(r.spec.get("datum"), str) and index.resolve(r.spec["datum"], ctx.api) is None]

    def create(self, ctx: KindContext[ValohaiClient], spec: dict) -> Live:
        return only(self.create_many(ctx, [spec]))

    def create_many(self, ctx: KindContext[ValohaiClient], specs: list[dict]) -> list[Live | Exception]:
        """Every datum's first properties in ONE metadata/apply."""
        index = Index.read(ctx.api)
        results: list[Live | Exception] = []
        bodies: dict[str, dict] = {}
        for spec in specs:
            datum = index.resolve(spec.get("datum"), ctx.api)
            if datum is None:
                results.append(ApiError(f"no datum {spec.get('datum')!r} in the Valohai project",
                                        api="valohai"))
                continue
            live = self._live(index, datum, spec)
            body = properties.body_for(properties.diff(spec, live.attrs, None))
            if body:
                bodies.setdefault(live.id, {}).update(body)
            results.append(Live(live.id, properties.after(live.attrs, body), live.outputs))
        failures = ctx.api.apply_metadata(bodies)
        return [failures.get(r.id, r) if isinstance(r, Live) else r for r in results]

    def delete(self, ctx: KindContext[ValohaiClient], live: Live, policy: str, last_applied: dict | None) -> None:
        self.release(ctx, live, last_applied)
