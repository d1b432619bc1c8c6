"""valohai.datum: an S3 object adopted into a Valohai datum, with properties, tags, alias.

    observe   one listing of the project's datums + one of its aliases; a datum not in
              the state is found by its URL (Valohai already tracks it: "adopt existing")
    create    adoption grouped per store (bulk `urls`, or concurrent single adopts), then
              every property, tag and alias in ONE metadata/apply
    update    three-way merge of properties/tags/alias, batched (update_many)
    delete    release (default): remove our properties, tags and alias, keep the datum;
              delete: purge the datum (Valohai deletes the stored file)
"""
from __future__ import annotations

from reconciler.config.model import Resource
from reconciler.errors import ApiError, Problem
from reconciler.plan.model import FieldChange
from reconciler.providers.contract import DeletionPolicy, KindContext, Live, Wanted, only
from reconciler.providers.shared import problem
from reconciler.providers.valohai import properties
from reconciler.providers.valohai.client import ValohaiClient
from reconciler.providers.valohai.common import Index, MetadataKind, make_live


class DatumKind(MetadataKind):
    name = "valohai.datum"
    schema = "valohai.datum.schema.json"
    deletion_policies = ("release", "delete")
    discover_group = ("url", "properties")  # datums under one prefix with the same property names
    deletion_effects = {
        "release": DeletionPolicy("release", "the properties, tags and alias reconciler set are removed; "
                                             "the datum and its file are kept"),
        "delete": DeletionPolicy("delete", "the datum is purged: Valohai deletes the stored file")}

    # -- reading ------------------------------------------------------------------------
    def observe(self, ctx: KindContext[ValohaiClient], wanted: list[Wanted]) -> dict[str, Live | None]:
        index = Index.read(ctx.api)
        out: dict[str, Live | None] = {}
        for w in wanted:
            datum = index.by_id.get(w.id) if w.id else None
            url = (w.spec or {}).get("url")
            adopted = False
            if datum is None and isinstance(url, str):  # natural key: the storage URL
                datum = index.by_uri.get(url)
                adopted = datum is not None and w.id is None and not w.lookup
            spec = w.spec if w.spec is not None else (w.last_applied or {})
            out[w.address] = None if datum is None else make_live(
                datum, index.aliases_of.get(datum["id"], []), spec,
                self._identity(ctx.api, datum, spec), adopted, assumed=w.last_applied, recorded=w.outputs)
        return out

    def discover(self, ctx: KindContext[ValohaiClient]) -> list[Live]:
        """Each datum of the project with its store (by name), URL, properties, tags, alias."""
        api: ValohaiClient = ctx.api
        index = Index.read(api)
        out = []
        for datum in index.by_id.values():
            if not datum.get("uri"):
                continue
            identity = self._identity(api, datum, {"store": None})
            attrs = make_live(datum, index.aliases_of.get(datum["id"], []), {}, identity).attrs
            spec = {"store": attrs["store"], "url": attrs["url"],
                    **{k: attrs[k] for k in ("properties", "tags", "alias") if attrs.get(k)}}
            out.append(Live(datum["id"], spec))
        return out

    def _identity(self, api: ValohaiClient, datum: dict, spec: dict) -> dict:
        """url and store in the manifest's words (a store named by name or by id)."""
        store = datum.get("store")
        store_id, store_name = (store.get("id"), store.get("name")) if isinstance(store, dict) else (store, None)
        wanted = spec.get("store")
        if store_id is None or wanted in (store_id, store_name):
            shown = wanted
        elif isinstance(wanted, str) and store_name is None:  # the API gave an id only
            found = api.find_store(wanted)
            shown = wanted if found and found["id"] == store_id else store_id
        else:
            shown = store_name or store_id
        return {"store": shown, "url": datum.get("uri")}

    def identity_changes(self, spec: dict, attrs: dict) -> list[FieldChange]:
        return [FieldChange(f, attrs.get(f), spec.get(f), forces_replacement=True)
                for f in ("store", "url") if spec.get(f) != attrs.get(f)]

    def plan_notes(self, spec: dict | None, live: Live | None, last_applied: dict | None) -> list[str]:
        """A changed url or store is another file: say what happens to the old datum."""
        if not spec or live is None or all(spec.get(f) == live.attrs.get(f) for f in ("store", "url")):
            return []  # the same datum (what identity_changes says, without building its changes)
        return [f"the datum of {live.attrs.get('url')} is replaced: the old one goes by this resource's "
                "deletion_policy (default release: our properties, tags and alias removed, the file kept; "
                "`deletion_policy: delete` purges it)"]

    def check(self, ctx: KindContext[ValohaiClient], resources: list[Resource]) -> list[Problem]:
        """Stores exist and each URL lies in its store's bucket (before anything is written)."""
        problems = []
        for r in resources:
            store_ref, url = r.spec.get("store"), r.spec.get("url")
            if not isinstance(store_ref, str):
                continue
            store = ctx.api.find_store(store_ref)
            if store is None:
                names = ", ".join(sorted(s["name"] for s in ctx.api.stores())) or "none"
                problems.append(problem(r, "store", f"no Valohai store {store_ref!r} is visible "
                                                    f"(stores: {names})"))
                continue
            bucket = (store.get("configuration") or {}).get("bucket")
            if bucket and isinstance(url, str) and not url.startswith(f"s3://{bucket}/"):
                problems.append(problem(r, "url", f"{url} is not in store {store['name']} "
                                                  f"(bucket s3://{bucket}/)"))
        return problems

    # -- writing ------------------------------------------------------------------------
    def create(self, ctx: KindContext[ValohaiClient], spec: dict) -> Live:
        return only(self.create_many(ctx, [spec]))

    def create_many(self, ctx: KindContext[ValohaiClient], specs: list[dict]) -> list[Live | Exception]:
        api: ValohaiClient = ctx.api
        results: list[Live | Exception | None] = [None] * len(specs)
        by_store: dict[str, tuple[dict, list[int]]] = {}
        for i, spec in enumerate(specs):
            store = api.find_store(spec["store"])
            if store is None:
                results[i] = ApiError(f"cannot adopt {spec['url']}: no store {spec['store']!r} is visible",
                                      api="valohai")
            else:
                by_store.setdefault(store["id"], (store, []))[1].append(i)
        created: dict[str, str] = {}
        existing: set[str] = set()
        for store, members in by_store.values():
            urls = list(dict.fromkeys(specs[i]["url"] for i in members))
            ctx.progress(f"adopting {len(urls)} file(s) from store {store['name']}")
            outcome = api.adopt(store, urls)
            created.update(outcome.created)
            existing |= outcome.existing
            for i in members:
                url = specs[i]["url"]
                if url in outcome.failed:
                    results[i] = ApiError(f"cannot adopt {url} into store {store['name']}: "
                                          f"{outcome.failed[url]}", api="valohai",
                                          endpoint=f"POST /api/v0/stores/{store['id']}/adopt/")
        pending = [i for i, r in enumerate(results) if r is None]
        if not pending:
            return results  # type: ignore[return-value]
        found = api.newest_datums(set(created.values()), existing)
        index = Index(found, api.aliases() if existing else [])
        lives: dict[int, Live] = {}
        bodies: dict[str, dict] = {}
        for i in pending:
            spec, url = specs[i], specs[i]["url"]
            datum = index.by_id.get(created.get(url, "")) or index.by_uri.get(url)
            if datum is None and url in existing:  # "already exists" judged per store, not per project
                results[i] = ApiError(f"cannot adopt {url}: Valohai says it already exists in store {spec['store']}, "
                                      "but it is no datum of this project (a store adopts a file once: it lives in "
                                      "another project); give that datum properties with valohai.datum_properties "
                                      "in its own project", api="valohai")
                continue
            if datum is None:
                results[i] = ApiError(f"adopted {url} but cannot find its datum in the project", api="valohai")
                continue
            live = make_live(datum, index.aliases_of.get(datum["id"], []), spec,
                             {"store": spec["store"], "url": url}, adopted=url in existing)
            body = properties.body_for(properties.diff(spec, live.attrs, None))
            if body:
                bodies[live.id] = body
            lives[i] = Live(live.id, properties.after(live.attrs, body), live.outputs, live.adopted)
        failures = api.apply_metadata(bodies)
        for i, live in lives.items():
            results[i] = failures.get(live.id) or live
        return results  # type: ignore[return-value]

    def delete(self, ctx: KindContext[ValohaiClient], live: Live, policy: str, last_applied: dict | None) -> None:
        if policy == "delete":
            ctx.api.purge(live.id)
        else:
            self.release(ctx, live, last_applied)

