"""Every API route of the emulator, swept: without credentials it answers 401; with
credentials and a malformed or ill-typed body it answers a 4xx with a JSON error, never
a 500 (issue: "malformed bodies get 400 with a JSON error, never 500")."""
from __future__ import annotations

import base64
import re
import uuid

import httpx
import pytest

from reconciler.emulator.core import SANDBOX

# routes any caller may use: logins, and presigned / signed download and upload URLs
PUBLIC = re.compile(r"^/(account/login|account/refresh_token|api/v0/get-token/|gateway/|valohai-s3/|"
                    r"codeocean-files/|_emulator/)")
BODIES = [b"{nope", b"[]", b"null", b'"x"', b"\xff\xfe\x00",
          b'{"name": {"a": 1}, "tags": "x", "source": 5, "details": [], "bucket_name": 7, "provider_id": 3,'
          b' "url": 1, "project": [], "query": 5, "limit": "many", "users": "x", "datum_metadata": 3,'
          b' "metadata": "x", "datum_ids": 5, "token": 9, "email": [], "public_key": 5, "target": 1, "path": 2}',
          b'{"limit": 100000, "offset": -5, "next_token": "%%%", "filters": [{"nokey": 1}], "sort_field": "x"}']


def routes(emulator) -> list[tuple[str, str]]:
    app = emulator._server.config.app.app  # the Starlette app inside the fault/log middleware
    return [(method, route.path) for route in app.routes for method in sorted(route.methods or [])
            if method != "HEAD" and not PUBLIC.match(route.path)]


def auth_for(path: str, valdi_token: str) -> dict:
    if path.startswith("/api/v0/"):
        return {"Authorization": f"Token {SANDBOX['valohai_token']}"}
    if path.startswith("/api/v1/"):
        return {"Authorization": "Basic " + base64.b64encode(f"{SANDBOX['codeocean_token']}:".encode()).decode()}
    return {"Authorization": f"Bearer {valdi_token}"}


@pytest.fixture
def live_ids(emulator, admin):
    """Ids of real objects, so handlers get past their 404 and parse the body."""
    valdi = admin.post("/account/login", json={"email": SANDBOX["valdi_email"],
                                                "password": SANDBOX["valdi_password"]}).json()["access_token"]
    bearer = {"Authorization": f"Bearer {valdi}"}
    volume = admin.post("/volume", json={"bucket_name": "sweep"}, headers=bearer).json()["volume_id"]
    co = auth_for("/api/v1/", valdi)
    asset = admin.post("/api/v1/data_assets", headers=co, json={
        "name": "sweep", "mount": "sweep", "tags": [], "source": {"aws": {"bucket": "sandbox-bucket",
                                                                          "prefix": "data/", "keep_on_external_storage": False, "public": False}}}).json()["id"]
    vh = auth_for("/api/v0/", valdi)
    created = admin.post(f"/api/v0/stores/{SANDBOX['valohai_store_id']}/adopt/", headers=vh, json={
        "url": "s3://sandbox-bucket/data/train.csv", "project": SANDBOX["valohai_project_id"]}).json()["created"]
    return {"valdi": valdi, "volume": volume, "asset": asset, "datum": next(iter(created.values()))}


def fill(path: str, ids: dict, real: bool) -> str:
    def value(name: str) -> str:
        if name.startswith("path"):
            return base64.urlsafe_b64encode(b"dir/file.txt").decode()
        if not real:
            return str(uuid.uuid4())
        if path.startswith("/volume"):
            return ids["volume"]
        if path.startswith("/api/v1/"):
            return ids["asset"]
        if path.startswith("/api/v0/data/"):
            return ids["datum"]
        if path.startswith("/api/v0/projects/"):
            return SANDBOX["valohai_project_id"]
        if path.startswith("/api/v0/stores/"):
            return SANDBOX["valohai_store_id"]
        return str(uuid.uuid4())
    return re.sub(r"\{(\w+)(:path)?\}", lambda m: value(m.group(1)), path)


def test_every_api_route_wants_credentials(emulator):
    checked = 0
    with httpx.Client(base_url=emulator.url) as client:
        for method, path in routes(emulator):
            r = client.request(method, fill(path, {}, real=False), content=b"{}")
            assert r.status_code == 401, f"{method} {path} answered {r.status_code} without credentials"
            assert isinstance(r.json(), dict)
            checked += 1
    assert checked >= 50  # all three APIs are there


def test_malformed_bodies_get_a_json_4xx_never_a_500(emulator, live_ids):
    failures = []
    with httpx.Client(base_url=emulator.url) as client:
        for method, path in routes(emulator):
            if method == "DELETE":  # would remove the objects the other routes are probed with
                continue
            for real in (True, False):
                url = fill(path, live_ids, real)
                for body in BODIES:
                    r = client.request(method, url, content=body, headers={
                        **auth_for(path, live_ids["valdi"]), "Content-Type": "application/json"})
                    if r.status_code >= 500 or (r.status_code >= 400 and not _json_object(r)):
                        failures.append(f"{method} {path} {body[:20]!r}: {r.status_code} {r.text[:80]}")
    assert not failures, "\n".join(failures[:20])


def _json_object(r: httpx.Response) -> bool:
    try:
        return isinstance(r.json(), dict)
    except ValueError:
        return False
