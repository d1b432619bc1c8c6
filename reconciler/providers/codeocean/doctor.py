"""`reconciler doctor` for Code Ocean: the token, the searches a plan runs (live and
archived assets we created) with the fields the kind reads, and the custom metadata
schema. Read-only: search is a POST that changes nothing."""
from __future__ import annotations

from reconciler.providers.codeocean.client import CodeOceanClient
from reconciler.providers.doctor import Checks, Finding

STR = (str,)
ASSET = {"id": STR, "name": STR, "state": STR, "type": STR, "mount": STR, "created": (int, float)}


def doctor(api: CodeOceanClient) -> list[Finding]:
    c = Checks("codeocean")
    check = "POST /api/v1/data_assets/search"
    for archived in (False, True):
        page = c.call(check, lambda: api._call("POST", "/data_assets/search", idempotent=True, json={
            "limit": 20, "offset": 0, "ownership": "created", "archived": archived}))
        if page is None:
            return c.findings  # the token is refused: nothing else can be asked
        if not c.fields(check, "the search answer", page, {"results": (list,), "has_more": (bool,)}):
            continue
        assets = [a for a in page["results"] if c.fields(check, "a data asset", a, ASSET)]
        if any("archived" not in a for a in assets):
            c.note(check, "data assets carry no `archived`: it is read from which search found them",
                   "codeocean-no-archived")
        if any(isinstance(a.get("source_bucket"), dict) and a["source_bucket"].get("bucket")
               and not isinstance(a["source_bucket"].get("external"), bool) for a in assets):
            c.note(check, "a data asset's `source_bucket` has no `external`: keep_on_external_storage is read "
                   "as last applied", "codeocean-no-external")
        if any(not isinstance(a.get("custom_metadata") or {}, dict) for a in assets):
            c.problem(check, "a data asset's `custom_metadata` is not an object")
        if page["has_more"] and not isinstance(page.get("next_token"), str):
            c.problem(check, "has_more is true but next_token is not a string: paging cannot go on")
        if len(assets) == len(page["results"]):
            c.ok(check, f"{len(assets)} {'archived' if archived else 'live'} asset(s) of ours on the first page")
    schema = c.call("GET /api/v1/custom_metadata", lambda: api._call("GET", "/custom_metadata"))
    if schema is not None and c.fields("GET /api/v1/custom_metadata", "the schema", schema, {"fields": (list,)}):
        c.ok("GET /api/v1/custom_metadata", f"{len(schema['fields'])} custom field(s)")
    return c.findings
