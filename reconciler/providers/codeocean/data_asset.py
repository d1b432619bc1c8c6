"""codeocean.data_asset: a data asset from S3, from a computation's results, or combined
from other data assets; its metadata, archive state and permissions.

    observe   our assets from search (two paged listings: live and archived), plus the
              permissions of the assets whose manifest sets them; a journaled create is
              found by name (newest first) instead of being made twice
    create    POST, then wait for draft -> ready (backoff, progress); a failed asset is
              deleted and its failure_reason reported; then archive, permissions and a
              transfer to `target` (for sources that cannot name it at create time)
    update    name/description/mount/tags/custom metadata in one PUT; archive by PATCH;
              permissions by their endpoint; a new target by transfer
    delete    delete (default) or orphan (forget it, keep the asset)
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from reconciler.config.model import Resource
from reconciler.errors import ApiError, Problem
from reconciler.plan.diffing import left_diff
from reconciler.plan.model import FieldChange
from reconciler.providers.codeocean import metadata, shape
from reconciler.providers.codeocean.client import CodeOceanClient
from reconciler.providers.contract import (
    DeletionPolicy,
    Diff,
    Kind,
    KindContext,
    Live,
    Wanted,
)
from reconciler.providers.shared import newest_unclaimed, problem, wait_for
from reconciler.providers.states import Phase, classify

OUTPUTS = {"id", "name", "state", "type", "size", "files", "mount", "owner_email"}
# seed 003's states; any other word is in transition: waited on, never taken for a failure (which deletes)
ASSET_STATES = {"draft": Phase.IN_TRANSITION, "ready": Phase.RUNNING, "failed": Phase.FAILED, "gone": Phase.GONE}


class DataAssetKind(Kind[CodeOceanClient]):
    name = "codeocean.data_asset"
    schema = "codeocean.data_asset.schema.json"
    sensitive = {"client_secret"}  # source.gcp.client_secret
    outputs = OUTPUTS
    deletion_policies = ("delete", "orphan")
    natural_key_conflicts = True  # the asset name (Code Ocean allows repeats; we never make one)
    deletion_effects = {"delete": DeletionPolicy("delete", "the data asset is deleted in Code Ocean"),
                        "orphan": DeletionPolicy("orphan", "reconciler stops managing it; the data asset stays")}

    # -- reading ------------------------------------------------------------------------------
    def observe(self, ctx: KindContext[CodeOceanClient], wanted: list[Wanted]) -> dict[str, Live | None]:
        api: CodeOceanClient = ctx.api
        owned = api.owned_assets()
        claimed = {w.id for w in wanted if w.id}
        found: dict[str, tuple[dict, bool] | None] = {}
        for w in wanted:
            hit = owned.get(w.id) if w.id else None
            if hit is None and w.id:  # not in our listing: gone, or someone else's now
                asset = api.get(w.id)
                # the DataAsset object may not say (seed 003 has no `archived`): as last applied
                archived = asset.get("archived") if asset and "archived" in asset else \
                    (w.last_applied or {}).get("archived", False)
                hit = (asset, bool(archived)) if asset else None
            if hit is None and (w.lookup or w.probe) and w.spec:  # a crash's create, or a name taken
                name = w.spec.get("name")
                hit = newest_unclaimed(owned.values(), lambda h: h[0].get("name") == name, lambda h: h[0]["id"],
                                       lambda h: h[0].get("created") or 0, claimed)
            found[w.address] = hit
        perms = self._permissions(api, wanted, found)
        out: dict[str, Live | None] = {}
        for w in wanted:
            hit = found[w.address]
            if hit is None:
                out[w.address] = None
                continue
            asset, archived = hit
            prior = w.last_applied or w.spec
            out[w.address] = make_live(asset, archived, perms.get(w.address), prior)
        return out

    def discover(self, ctx: KindContext[CodeOceanClient]) -> list[Live]:
        """The assets this token created (the listing observe reads), ready or archived;
        a failed one is left out (taking it over would plan its replacement)."""
        api: CodeOceanClient = ctx.api
        out = []
        for asset, archived in api.owned_assets().values():
            if asset.get("state") == "failed" or not asset.get("name"):
                continue
            attrs = shape.live_attrs(asset, archived, None, None)
            spec = {k: attrs[k] for k in ("name", "description", "mount", "tags", "custom_metadata", "source",
                                          "target") if attrs.get(k) not in (None, "", [], {})}
            if archived:
                spec["archived"] = True
            out.append(Live(asset["id"], spec))
        return out

    @staticmethod
    def _permissions(api: CodeOceanClient, wanted: list[Wanted], found: dict) -> dict[str, dict]:
        """Only for assets whose manifest (or last apply) sets permissions: there is no
        batch endpoint, so these are the only per-asset reads."""
        todo = [(w.address, found[w.address][0]["id"]) for w in wanted if found.get(w.address)
                and ("permissions" in (w.spec or {}) or "permissions" in (w.last_applied or {}))]
        if not todo:
            return {}
        with ThreadPoolExecutor(max_workers=8) as pool:
            results = pool.map(lambda item: (item[0], api.permissions(item[1])), todo)
            return dict(results)

    def check_offline(self, resources: list[Resource]) -> list[Problem]:
        problems = []
        for r in resources:
            source = r.spec.get("source")
            if isinstance(source, dict) and len(source) != 1:
                problems.append(problem(r, "source", "exactly one of aws, gcp, computation, combined "
                                                     f"(got: {', '.join(source) or 'none'})"))
        return problems

    def check(self, ctx: KindContext[CodeOceanClient], resources: list[Resource]) -> list[Problem]:
        """Custom metadata against the deployment's schema, before anything is written."""
        if not any(isinstance(r.spec.get("custom_metadata"), dict) for r in resources):
            return []
        return metadata.check(ctx.api.metadata_schema(), resources)

    # -- comparing ----------------------------------------------------------------------------
    def diff(self, spec: dict, live: Live, last_applied: dict | None) -> Diff:
        want = desired(spec, last_applied)
        changes = left_diff(want, live.attrs, desired(last_applied) if last_applied else None,
                            replace_on=("source", "results_info"),
                            opaque=("source", "tags", "results_info", "permissions.users",
                                    "permissions.groups", "target"))
        notes = []
        kept = []
        for c in changes:
            if c.path == "target" and c.new is None:
                notes.append("target removed from the manifest: the data stays where it was transferred "
                             "(Code Ocean cannot move it back)")
                continue
            if c.path == "target":
                notes.append(f"target changes: the data is transferred to {_where(c.new)} (an admin-only call)")
            kept.append(c)
        if live.attrs.get("state") == "failed":  # e.g. found after an apply that timed out waiting
            reason = live.attrs.get("failure_reason") or "no reason given"
            kept.append(FieldChange("state", "failed", "ready", True))
            notes.append(f"the live asset failed ({reason}): it is deleted and created again")
        return Diff(kept, notes)

    # -- writing ------------------------------------------------------------------------------
    def create(self, ctx: KindContext[CodeOceanClient], spec: dict) -> Live:
        api: CodeOceanClient = ctx.api
        asset = api.create(shape.create_body(spec))
        asset = self._wait_ready(ctx, asset)
        archived = False
        if spec.get("archived"):
            api.archive(asset["id"], True)
            archived = True
        perms = None
        if "permissions" in spec:
            current = api.permissions(asset["id"])
            api.set_permissions(asset["id"], shape.permissions_body(spec["permissions"], asset.get("owner_email"),
                                                                    current))
            perms = api.permissions(asset["id"])
        if spec.get("target") and "computation" not in spec["source"]:
            ctx.progress(f"transferring data asset {spec['name']} to {_where(spec['target'])}")
            api.transfer(asset["id"], spec["target"])
            asset = api.get(asset["id"]) or asset
        return make_live(asset, archived, perms, spec)

    def _wait_ready(self, ctx: KindContext[CodeOceanClient], asset: dict) -> dict:
        api: CodeOceanClient = ctx.api
        timeout = float(ctx.options.get("asset_timeout") or api.asset_timeout)
        latest: dict[str, Any] = {"asset": asset, "fresh": True}

        def settled() -> tuple[bool, str]:
            if not latest.pop("fresh", False):  # the create's answer first, then a GET per poll
                latest["asset"] = api.get(asset["id"]) or {**latest["asset"], "state": "gone"}
            state = classify(latest["asset"].get("state"), ASSET_STATES)
            return state.phase is not Phase.IN_TRANSITION, "being created" if state.word == "draft" else str(state)

        wait_for(settled, f"data asset {asset['name']} ({asset['id']})", timeout, ctx.progress, api="codeocean")
        asset = latest["asset"]
        if classify(asset.get("state"), ASSET_STATES).phase is not Phase.RUNNING:
            reason = asset.get("failure_reason") or f"state {asset.get('state')}"
            api.delete(asset["id"])  # a failed asset is of no use; the next apply starts clean
            raise ApiError(f"data asset {asset['name']} failed: {reason} (the failed asset was deleted)",
                           api="codeocean", endpoint="POST /api/v1/data_assets")
        return asset

    def update(self, ctx: KindContext[CodeOceanClient], live: Live, spec: dict, diff: Diff) -> Live:
        api: CodeOceanClient = ctx.api
        paths = {c.path.split(".")[0] for c in diff.changes}
        asset_id = live.id
        attrs = dict(live.attrs)
        if paths & set(shape.UPDATABLE):
            body = shape.update_body(live.attrs, diff.changes)
            updated = api.update(asset_id, body)
            attrs.update({k: body[k] for k in shape.UPDATABLE})
            attrs["tags"] = sorted(set(body["tags"]))
            attrs["custom_metadata"] = shape.present(body["custom_metadata"])
            if isinstance(updated, dict) and updated.get("custom_metadata") is not None:
                attrs["custom_metadata"] = shape.present(updated["custom_metadata"])
        if "archived" in paths:
            api.archive(asset_id, bool(spec.get("archived")))
            attrs["archived"] = bool(spec.get("archived"))
        if "permissions" in paths:
            owner = live.outputs.get("owner_email")
            current = live.attrs.get("permissions")
            current = api.permissions(asset_id) if current is None else current
            api.set_permissions(asset_id, shape.permissions_body(_permission_changes(diff), owner, current))
            attrs["permissions"] = shape.permissions_attrs(api.permissions(asset_id), owner)
        if "target" in paths and spec.get("target"):
            ctx.progress(f"transferring data asset {spec['name']} to {_where(spec['target'])}")
            api.transfer(asset_id, spec["target"])
            attrs["target"] = shape.normal_target(spec["target"])
        outputs = {**live.outputs, "name": attrs["name"], "mount": attrs["mount"]}
        return Live(asset_id, attrs, outputs, adopted=live.adopted)

    def plan_notes(self, spec: dict | None, live: Live | None, last_applied: dict | None) -> list[str]:
        missing = shape.missing_aws_fields((spec or {}).get("source")) if live is None else []
        if not missing:
            return []
        sent = ", ".join(f"{k}: {shape.AWS_DEFAULTS[k]!r}".replace("False", "false") for k in missing)
        return [f"source.aws: Code Ocean requires {', '.join(missing)}; sent as {sent} (the manifest leaves "
                "them out)"]

    def delete(self, ctx: KindContext[CodeOceanClient], live: Live, policy: str, last_applied: dict | None) -> None:
        if policy == "orphan":
            return
        ctx.api.delete(live.id)


def desired(spec: dict, last_applied: dict | None = None) -> dict:
    """The spec in the shape live_attrs gives, with the API's defaults filled in. A
    permission key our last apply set and the manifest dropped goes back to its default."""
    want = {k: v for k, v in spec.items() if k not in ("permissions", "source", "target")}
    want["mount"] = spec.get("mount") or spec.get("name")
    want["tags"] = sorted(set(spec.get("tags") or []), key=str)
    want["archived"] = bool(spec.get("archived", False))
    if "source" in spec:
        want["source"] = shape.normal_source(spec["source"])
    if spec.get("target"):
        want["target"] = shape.normal_target(spec["target"])
    given = spec.get("permissions")
    perms = given if isinstance(given, dict) else {}
    before = (last_applied or {}).get("permissions")
    dropped = [k for k in before if k not in perms] if isinstance(before, dict) else []
    if "permissions" in spec or dropped:
        want["permissions"] = shape.normal_permissions(perms, dropped)
    return want


def _permission_changes(diff: Diff) -> dict:
    """The permission keys the diff changes, with their new values (a POST sets only these)."""
    perms: dict[str, Any] = {}
    for c in diff.changes:
        if c.path == "permissions" and isinstance(c.new, dict):
            perms.update(c.new)
        elif c.path.startswith("permissions."):
            perms[c.path.split(".")[1]] = c.new
    return perms


def make_live(asset: dict, archived: bool, permissions: dict | None, prior: dict | None) -> Live:
    attrs = shape.live_attrs(asset, archived, permissions, prior)
    outputs = {k: asset.get(k) for k in ("id", "name", "state", "type", "size", "files", "mount")}
    outputs["owner_email"] = asset.get("owner_email")
    return Live(asset["id"], attrs, outputs)


def _where(target: Any) -> str:
    aws = (target or {}).get("aws") or {} if isinstance(target, dict) else {}
    return f"s3://{aws.get('bucket')}/{aws.get('prefix') or ''}"


__all__ = ["DataAssetKind", "FieldChange"]
