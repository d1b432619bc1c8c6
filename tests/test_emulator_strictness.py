"""The emulator is never kinder than the documents: a wrong trailing slash is no
body-keeping 307 on any API (Valohai, a Django app, answers 301; the others 404), and the
quirks change exactly the shape they name (each one's answer, next to the default)."""
from __future__ import annotations

import base64
import json

import httpx
import pytest

from reconciler.emulator.core import SANDBOX

VH = {"Authorization": f"Token {SANDBOX['valohai_token']}"}
CO = (SANDBOX["codeocean_token"], "")
PROJECT, STORE = SANDBOX["valohai_project_id"], SANDBOX["valohai_store_id"]


def valdi_bearer(url: str) -> dict:
    r = httpx.post(f"{url}/account/login", json={"email": SANDBOX["valdi_email"],
                                                  "password": SANDBOX["valdi_password"]})
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.mark.parametrize("method, path, auth, expected", [
    ("POST", "/api/v0/stores/{store}/adopt", "vh", 301),  # Django's APPEND_SLASH: a client re-sends as GET
    ("GET", "/api/v0/stores", "vh", 301),
    ("POST", "/api/v1/data_assets/search/", "co", 404),
    ("GET", "/api/v1/custom_metadata/", "co", 404),
    ("POST", "/volume/", "valdi", 404),
    ("GET", "/v1/vm/", "valdi", 404),
    ("POST", "/sshkeys/sshkey/", "valdi", 404),
])
def test_a_wrong_trailing_slash_is_never_a_body_keeping_redirect(emulator, method, path, auth, expected):
    kw = {"headers": VH} if auth == "vh" else {"auth": CO} if auth == "co" else {"headers": valdi_bearer(emulator.url)}
    r = httpx.request(method, emulator.url + path.format(store=STORE), json={"x": 1}, **kw)
    assert r.status_code == expected
    if expected == 301:
        assert r.headers["location"].endswith(path.format(store=STORE) + "/")
    assert r.status_code not in (307, 308)


def test_valohai_utils_unslashed_datum_path_is_still_served(emulator):
    adopted = httpx.post(f"{emulator.url}/api/v0/stores/{STORE}/adopt/", headers=VH, json={
        "url": "s3://sandbox-bucket/data/train.csv", "project": PROJECT}).json()["created"]
    datum_id = next(iter(adopted.values()))
    assert httpx.get(f"{emulator.url}/api/v0/data/{datum_id}", headers=VH).json()["id"] == datum_id


# -- each quirk changes the answer it names ------------------------------------------------------
def quirks(admin, *names):
    admin.post("/_emulator/config", json={"quirks": list(names)}).raise_for_status()


def adopt_train(base: str, **body) -> httpx.Response:
    return httpx.post(f"{base}/api/v0/stores/{STORE}/adopt/", headers=VH,
                      json={"project": PROJECT, **(body or {"url": "s3://sandbox-bucket/data/train.csv"})})


def datum_of(url: str) -> dict:
    return httpx.get(f"{url}/api/v0/data/", headers=VH, params={"project": PROJECT}).json()["results"][0]


def meta(url: str, datum_id: str, props: dict) -> httpx.Response:
    return httpx.post(f"{url}/api/v0/data/metadata/apply/", headers=VH,
                      json={"datum_metadata": {datum_id: props}})


def test_valohai_datum_shape_quirks(emulator, admin):
    datum_id = next(iter(adopt_train(emulator.url).json()["created"].values()))
    meta(emulator.url, datum_id, {"a": 1, "valohai.tags": ["x"]}).raise_for_status()
    assert (datum_of(emulator.url)["metadata"], datum_of(emulator.url)["tags"]) == ({"a": 1}, ["x"])
    quirks(admin, "valohai-metadata-list")
    assert datum_of(emulator.url)["metadata"] == [{"key": "a", "value": 1}]
    quirks(admin, "valohai-metadata-absent")
    assert not {"metadata", "tags"} & set(datum_of(emulator.url))


def test_valohai_write_quirks(emulator, admin):
    datum_id = next(iter(adopt_train(emulator.url).json()["created"].values()))
    meta(emulator.url, datum_id, {"valohai.tags": ["a"], "valohai.alias": "al"}).raise_for_status()
    quirks(admin, "valohai-tags-add")
    meta(emulator.url, datum_id, {"valohai.tags": ["b"]}).raise_for_status()
    assert datum_of(emulator.url)["tags"] == ["a", "b"]
    quirks(admin, "valohai-alias-null-refused")
    assert meta(emulator.url, datum_id, {"valohai.alias": None}).status_code == 400
    quirks(admin)
    assert meta(emulator.url, datum_id, {"valohai.alias": None}).status_code == 200
    missing = "00000000-0000-7000-8000-000000000000"
    both = {"datum_metadata": {datum_id: {"k": 1}, missing: {"k": 1}}}
    assert httpx.post(f"{emulator.url}/api/v0/data/metadata/apply/", headers=VH, json=both).status_code == 400
    assert "k" not in datum_of(emulator.url)["metadata"]  # all or nothing
    quirks(admin, "valohai-metadata-per-datum")
    answer = httpx.post(f"{emulator.url}/api/v0/data/metadata/apply/", headers=VH, json=both).json()
    assert answer["updated"] == [datum_id] and answer["errors"][0]["datum"] == missing
    assert datum_of(emulator.url)["metadata"]["k"] == 1


def test_valohai_adopt_and_store_quirks(emulator, admin):
    refused = adopt_train(emulator.url, urls=["s3://sandbox-bucket/data/test.csv"])  # seed 000: one `url`
    assert refused.status_code == 400 and "url" in refused.json()
    assert adopt_train(emulator.url).status_code == 200
    quirks(admin, "valohai-adopt-bulk")
    assert adopt_train(emulator.url, urls=["s3://sandbox-bucket/data/test.csv"]).status_code == 200
    quirks(admin, "valohai-stores-bare-list")
    stores = httpx.get(f"{emulator.url}/api/v0/stores/", headers=VH).json()
    assert isinstance(stores, list) and stores[0]["id"] == STORE
    quirks(admin, "valohai-adopt-store-scoped")
    other = admin.post("/_emulator/valohai/projects", json={"name": "other"}).json()["id"]
    taken = adopt_train(emulator.url, url="s3://sandbox-bucket/data/train.csv", project=other)
    assert taken.status_code == 400 and "already exists" in taken.text  # a datum of the store, elsewhere
    quirks(admin)
    assert adopt_train(emulator.url, url="s3://sandbox-bucket/data/train.csv", project=other).status_code == 200


def test_valdi_quirks(emulator, admin):
    bearer = valdi_bearer(emulator.url)
    url = emulator.url
    quirks(admin, "valdi-sshkey-no-id")
    made = httpx.post(f"{url}/sshkeys/sshkey", headers=bearer, json={"name": "k"})
    assert made.status_code == 201 and "ssh_key_id" not in made.json() and made.json()["private_key"]
    quirks(admin, "valdi-catalog-no-unit-costs")
    devices = httpx.get(f"{url}/v1/devices/available", headers=bearer).json()["devices_by_provider"]
    assert not any(k.endswith("_cost") for p in devices for d in p["provider_devices"] for k in d)
    key_id = httpx.get(f"{url}/sshkeys", headers=bearer).json()["ssh_keys"][0]["ssh_key_id"]
    quirks(admin, "valdi-provision-no-id", "valdi-vm-status-case")
    answer = httpx.post(f"{url}/v1/vm/provision", headers=bearer, json={
        "provider_id": "a45088e0-1681-446e-9a3e-3ed9dfc3d57e", "user_provided_name": "q",
        "details": {"flavor_id": "94d76997-44ec-4f1e-8291-231de42b6030", "ssh_key_id": key_id}}).json()
    assert answer == {"message": "success"}
    # the quirk is the case of the word; which word depends on whether 0.2 s of provisioning passed
    assert httpx.get(f"{url}/v1/vm", headers=bearer).json()["virtual_machines"][0]["status"] in ("Provisioning",
                                                                                                 "Running")
    volume = httpx.post(f"{url}/volume", headers=bearer, json={"bucket_name": "q"}).json()["volume_id"]
    path = base64.urlsafe_b64encode(b"d/f.txt").decode()
    link = httpx.get(f"{url}/volume/{volume}/upload/{path}", headers=bearer).json()["upload_link"]
    httpx.put(link, content=b"abc", headers={"Content-Type": ""}).raise_for_status()
    shapes = {}
    for quirk in ("valdi-contents-s3-style", "valdi-contents-no-etag", "valdi-contents-plain"):
        quirks(admin, quirk)
        shapes[quirk] = httpx.get(f"{url}/volume/{volume}", headers=bearer,
                                  params={"include_contents": "True"}).json()["contents"]
    assert shapes["valdi-contents-plain"] == ["d/", "d/f.txt"]
    assert shapes["valdi-contents-no-etag"][1] == {"path": "d/f.txt", "type": "file", "size": 3}
    s3 = shapes["valdi-contents-s3-style"][1]
    assert (s3["Key"], s3["Size"], s3["ETag"]) == ("d/f.txt", 3, '"900150983cd24fb0d6963f7d28e17f72"')
    for quirk in ("valdi-contents-toplevel", "valdi-contents-object"):
        quirks(admin, quirk)
        shapes[quirk] = httpx.get(f"{url}/volume/{volume}", headers=bearer,
                                  params={"include_contents": "True"}).json()["contents"]
    assert [e["path"] for e in shapes["valdi-contents-toplevel"]] == ["d/"]
    quirks(admin, "valdi-contents-toplevel")
    deeper = httpx.get(f"{url}/volume/{volume}", headers=bearer, params={"include_contents": "True", "subdirs": "d"})
    assert [e["path"] for e in deeper.json()["contents"]] == ["d/f.txt"]
    assert shapes["valdi-contents-object"]["d/f.txt"]["size"] == 3
    quirks(admin, "valdi-vm-listing-seed-fields", "valdi-vm-state-unrecognised")
    # long enough that a busy machine still lists the destroyed VM as `terminating` below
    admin.post("/_emulator/config", json={"vm_destroy_delay": 30}).raise_for_status()
    (vm,) = httpx.get(f"{url}/v1/vm", headers=bearer).json()["virtual_machines"]
    assert "flavor_id" not in vm and "ipv4" not in vm and vm["status"] in ("pending", "running")
    httpx.post(f"{url}/v1/vm/destroy/{vm['server']}", headers=bearer).raise_for_status()
    assert httpx.get(f"{url}/v1/vm", headers=bearer).json()["virtual_machines"][0]["status"] == "terminating"
    quirks(admin)


def test_requests_the_documents_do_not_allow_are_refused(emulator, admin):
    """Seed 002: ports are brace-set strings; seed 003: transfer's target.aws.prefix, and no
    results_info with a computation source; JSON under text/plain is DRF's 415."""
    url, bearer = emulator.url, valdi_bearer(emulator.url)
    listed = httpx.get(f"{url}/v1/devices/available", headers=bearer).json()["devices_by_provider"]
    node = next(d for p in listed if p["provider_id"].startswith("66730e5d") for d in p["provider_devices"])
    key_id = httpx.post(f"{url}/sshkeys/sshkey", headers=bearer, json={"name": "k"}).json()["ssh_key_id"]
    details = {"gpu_model": node["gpu_code"], "operating_system": "Ubuntu 22.04 LTS", "gpu_count": 1,
               "ssh_key_id": key_id, "hostnode": node["hostnode"], "storage": 40, "vcpus": 2, "ram": 8,
               "external_ports": [node["available_port"][0]], "internal_ports": [22]}
    r = httpx.post(f"{url}/v1/vm/provision", headers=bearer, json={
        "provider_id": "66730e5d-98d2-45f6-8aaa-6ad8cdcbc285", "user_provided_name": "p", "details": details})
    assert r.status_code == 400 and "brace set" in r.text, r.text
    odd = httpx.post(f"{url}/volume", headers=bearer, json={"bucket_name": "Data set #1/ünïcode"})
    assert odd.status_code == 200  # seed 002: any characters

    co = httpx.Client(base_url=f"{url}/api/v1", auth=CO)
    body = {"name": "r", "mount": "r", "tags": [], "source": {"computation": {"id": "c0a1b2c3-d4e5-4f60-8a7b-"
                                                                                    "9c0d1e2f3a4b"}},
            "results_info": {"capsule_id": "cap"}}
    r = co.post("/data_assets", json=body)
    assert r.status_code == 400 and r.json()["message"].startswith("results_info")
    r = co.post("/data_assets", content=json.dumps({**body, "results_info": None}),
                headers={"Content-Type": "text/plain"})
    assert r.status_code == 415
    asset = co.post("/data_assets", json={**body, "results_info": None}).json()
    r = co.post(f"/data_assets/{asset['id']}/transfer", json={"target": {"aws": {"bucket": "moved"}}})
    assert r.status_code == 400 and r.json()["message"].startswith("target.aws.prefix")
    co.close()
    datum = httpx.post(f"{url}/api/v0/stores/{STORE}/adopt/", headers=VH, json={
        "project": PROJECT, "url": "s3://sandbox-bucket/data/train.csv"}).json()["created"]
    datum_id = next(iter(datum.values()))
    r = httpx.post(f"{url}/api/v0/data/{datum_id}/metadata/", content=json.dumps({"k": 1}),
                   headers={**VH, "Content-Type": "text/plain"})
    assert r.status_code == 415


def test_codeocean_quirks(emulator, admin):
    co = httpx.Client(base_url=f"{emulator.url}/api/v1", auth=CO)
    asset = co.post("/data_assets", json={"name": "q", "mount": "q", "tags": [], "custom_metadata": {"lab": "x"},
                                          "source": {"aws": {"bucket": "sandbox-bucket", "prefix": "data",
                                                             "keep_on_external_storage": False, "public": False}}})
    asset_id = asset.json()["id"]
    assert "archived" in co.get(f"/data_assets/{asset_id}").json()
    put = {"name": "q", "description": "", "tags": [], "mount": "q"}  # seed 003: all four required
    co.put(f"/data_assets/{asset_id}", json={**put, "custom_metadata": {"modality": "CT"}}).raise_for_status()
    assert co.get(f"/data_assets/{asset_id}").json()["custom_metadata"] == {"modality": "CT"}  # replaced
    quirks(admin, "codeocean-no-archived", "codeocean-metadata-merge")
    assert "archived" not in co.get(f"/data_assets/{asset_id}").json()
    co.put(f"/data_assets/{asset_id}", json={**put, "custom_metadata": {"lab": "y"}}).raise_for_status()
    assert co.get(f"/data_assets/{asset_id}").json()["custom_metadata"] == {"modality": "CT", "lab": "y"}
    co.put(f"/data_assets/{asset_id}", json={**put, "custom_metadata": {"modality": None}}).raise_for_status()
    assert co.get(f"/data_assets/{asset_id}").json()["custom_metadata"] == {"lab": "y"}
    quirks(admin, "codeocean-no-external")
    assert "external" not in co.get(f"/data_assets/{asset_id}").json()["source_bucket"]
    quirks(admin)
    co.close()
