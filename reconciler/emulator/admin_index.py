"""GET /_emulator/: what the admin surface offers, one line and an example per endpoint,
as JSON (the default) or a small HTML page (a browser asks for text/html).

The list is read from the app's own routes at request time, so it cannot miss one; the
words come from DESCRIPTIONS (tests check that every admin route has its line)."""
from __future__ import annotations

import html
from typing import Iterable, Sequence

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import BaseRoute, Route

from reconciler.emulator import codeocean_model, valdi_auth, valdi_model, valohai_model

PREFIX = "/_emulator"

# the kinds /_emulator/docs/{kind} answers for (the store's document kinds)
KINDS = tuple(sorted({
    valdi_model.SSHKEY, valdi_model.VM, valdi_model.VOLUME, valdi_auth.USER,
    valohai_model.USER, valohai_model.TOKEN, valohai_model.PROJECT, valohai_model.STORE,
    valohai_model.DATUM, valohai_model.ALIAS, valohai_model.EXECUTION,
    codeocean_model.USER, codeocean_model.COMPUTATION, codeocean_model.SCHEMA, codeocean_model.ASSET}))

# path -> (what it does, an example with curl against $E, the emulator's URL); a POST with a
# body says it is JSON, as the admin surface requires
DESCRIPTIONS: dict[str, tuple[str, str]] = {
    "/_emulator/": ("this index (JSON; a browser gets HTML)", "curl $E/_emulator/"),
    "/_emulator/health": ("200 while the emulator answers", "curl $E/_emulator/health"),
    "/_emulator/s3/{bucket}": ("list the objects of a bucket (?prefix=)", "curl $E/_emulator/s3/sandbox-bucket"),
    "/_emulator/s3/{bucket}/{key:path}": (
        "PUT an object into a bucket (for a datum or an asset to point at), GET it, DELETE it",
        "curl -X PUT --data-binary @data.csv $E/_emulator/s3/sandbox-bucket/data/new.csv"),
    "/_emulator/requests": ("the request log: counts per route (?full=1 for every request); DELETE clears it",
                            "curl $E/_emulator/requests"),
    "/_emulator/faults": ("inject faults (429, 500, 503, drop, stall) on requests matching a pattern; "
                          "GET lists, DELETE clears",
                          "curl -X POST $E/_emulator/faults -H 'Content-Type: application/json' -d '{\"pattern\": \"POST /v1/vm/provision\", "
                          "\"kinds\": [503], \"times\": 1}'"),
    "/_emulator/faults/{id}": ("remove one fault", "curl -X DELETE $E/_emulator/faults/ID"),
    "/_emulator/config": ("read or change the configuration (delays, latency, fault rate, quirks)",
                          "curl -X POST $E/_emulator/config -H 'Content-Type: application/json' -d '{\"vm_provision_delay\": 0}'"),
    "/_emulator/quirks": ("the named quirks (plausible API answers the documents leave open), and the active ones",
                          "curl $E/_emulator/quirks"),
    "/_emulator/reset": ("forget everything and seed the sandbox again", "curl -X POST $E/_emulator/reset"),
    "/_emulator/docs": ("how many stored objects of each kind", "curl $E/_emulator/docs"),
    "/_emulator/docs/{kind}": (f"the stored objects of one kind ({', '.join(KINDS)})",
                               "curl $E/_emulator/docs/valdi_vm"),
    "/_emulator/valdi/users": ("add a VALDI user (email, password)",
                               "curl -X POST $E/_emulator/valdi/users -H 'Content-Type: application/json' -d '{\"email\": \"a@example.com\", "
                               "\"password\": \"pw\"}'"),
    "/_emulator/valohai/users": ("add a Valohai user (username; token optional)",
                                 "curl -X POST $E/_emulator/valohai/users -H 'Content-Type: application/json' -d '{\"username\": \"ana\"}'"),
    "/_emulator/valohai/tokens": ("add an API token for a Valohai user",
                                  "curl -X POST $E/_emulator/valohai/tokens -H 'Content-Type: application/json' -d '{\"username\": \"ana\"}'"),
    "/_emulator/valohai/projects": ("add a Valohai project (name, owner)",
                                    "curl -X POST $E/_emulator/valohai/projects -H 'Content-Type: application/json' -d '{\"name\": \"vision\"}'"),
    "/_emulator/valohai/stores": ("add a Valohai data store over a bucket (name, bucket)",
                                  "curl -X POST $E/_emulator/valohai/stores -H 'Content-Type: application/json' -d '{\"name\": \"s\", \"bucket\": \"b\"}'"),
    "/_emulator/valohai/executions": ("add a finished execution with output datums",
                                      "curl -X POST $E/_emulator/valohai/executions -H 'Content-Type: application/json' -d '{...}'"),
    "/_emulator/codeocean/users": ("add a Code Ocean user (email, token, admin)",
                                   "curl -X POST $E/_emulator/codeocean/users -H 'Content-Type: application/json' -d '{\"email\": \"a@example.com\"}'"),
    "/_emulator/codeocean/computations": ("add a finished computation with result files (id, files)",
                                          "curl -X POST $E/_emulator/codeocean/computations -H 'Content-Type: application/json' -d '{\"id\": \"c1\"}'"),
    "/_emulator/codeocean/custom_metadata": ("read or replace the deployment's custom metadata schema",
                                             "curl $E/_emulator/codeocean/custom_metadata"),
}


def admin_routes(all_routes: Iterable[BaseRoute]) -> list[dict]:
    """Every /_emulator/ route with its methods, words and example."""
    out: dict[str, dict] = {}
    for route in all_routes:
        if not isinstance(route, Route) or not route.path.startswith(PREFIX + "/"):
            continue
        entry = out.setdefault(route.path, {"path": route.path, "methods": set()})
        entry["methods"] |= (route.methods or {"GET"}) - {"HEAD"}
    listed = []
    for path, entry in out.items():
        what, example = DESCRIPTIONS.get(path, ("", ""))
        listed.append({"path": path.replace("{key:path}", "{key}"), "methods": sorted(entry["methods"]),
                       "description": what, "example": example})
    return listed


def routes(all_routes: Sequence[BaseRoute]) -> list[Route]:
    """The index over `all_routes` (the app's list, read when asked: routes added later count)."""
    async def index(request: Request):
        listed = admin_routes(all_routes)
        base = str(request.base_url).rstrip("/")
        accept = request.headers.get("accept", "")
        if request.query_params.get("format") == "html" or ("text/html" in accept and "json" not in accept):
            return HTMLResponse(_page(listed, base))
        return JSONResponse({"emulator": base, "admin": listed, "kinds": list(KINDS),
                             "note": "examples use $E for the emulator's URL"})

    return [Route(PREFIX + "/", index, methods=["GET"])]


def _page(listed: list[dict], base: str) -> str:
    rows = "\n".join(
        f"<tr><td>{' '.join(e['methods'])}</td><td><code>{html.escape(e['path'])}</code></td>"
        f"<td>{html.escape(e['description'])}<br><code>{html.escape(e['example'].replace('$E', base))}</code></td></tr>"
        for e in listed)
    return ("<!doctype html><meta charset=utf-8><title>reconciler emulator</title>"
            f"<h1>reconciler emulator at {html.escape(base)}</h1>"
            "<p>VALDI, Valohai and Code Ocean answer under their real paths; this is the admin surface.</p>"
            f"<table border=1 cellpadding=4><tr><th>methods</th><th>path</th><th>what</th></tr>\n{rows}</table>\n")
