"""The emulator's Valohai API against the official clients (valohai-cli, valohai-utils),
unchanged, and against the documented shapes, 401s and 400s (api-reference.md part A)."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from reconciler.emulator import EmulatorServer
from reconciler.emulator.core import SANDBOX

PROJECT = SANDBOX["valohai_project_id"]
STORE = SANDBOX["valohai_store_id"]
BUCKET = SANDBOX["valohai_bucket"]
VH = str(Path(sys.executable).with_name("vh"))


@pytest.fixture
def vh(emulator):
    """An authenticated httpx client for the emulator's Valohai API, whose adopt also takes
    `urls` (the quirk valohai-adopt-bulk: seed 000 documents one `url`)."""
    with httpx.Client(base_url=emulator.url, timeout=30,
                      headers={"Authorization": f"Token {SANDBOX['valohai_token']}"}) as client:
        client.post("/_emulator/config", json={"quirks": ["valohai-adopt-bulk"]}).raise_for_status()
        yield client


def adopt(vh, *urls, project=PROJECT):
    body = {"url": urls[0], "project": project} if len(urls) == 1 else {"urls": list(urls), "project": project}
    return vh.post(f"/api/v0/stores/{STORE}/adopt/", json=body)


def run_vh(emulator, tmp_path, *args) -> str:
    """valohai-cli as its users run it: a process, env credentials, its own config dir."""
    config = tmp_path / "vh-config"
    config.mkdir(exist_ok=True)
    env = {**os.environ, **emulator.env(), "VALOHAI_CONFIG_DIR": str(config), "HOME": str(tmp_path)}
    done = subprocess.run([VH, *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


# -- official clients ------------------------------------------------------------------------
def test_vh_data_list_and_alias_list_show_adopted_datums_and_aliases(emulator, vh, tmp_path):
    created = adopt(vh, f"s3://{BUCKET}/data/train.csv", f"s3://{BUCKET}/models/model.pkl").json()["created"]
    model = created[f"s3://{BUCKET}/models/model.pkl"]
    vh.post(f"/api/v0/data/{model}/metadata/", json={"valohai.alias": "prod-model"}).raise_for_status()

    out = run_vh(emulator, tmp_path, "data", "list")
    assert "train.csv" in out and "model.pkl" in out and "Not from exec" in out
    assert f"datum://{model}" in out and f"s3://{BUCKET}/models/model.pkl" in out
    rows = json.loads(run_vh(emulator, tmp_path, "--output-format", "json", "data", "list"))
    assert {r["id"] for r in rows} == set(created.values())

    out = run_vh(emulator, tmp_path, "alias", "list")
    assert "prod-model" in out and "model.pkl" in out and "datum://prod-model" in out


def test_vh_execution_outputs_lists_an_executions_datums(emulator, vh, admin, tmp_path):
    admin.post("/_emulator/valohai/executions",
               json={"outputs": [{"name": "out/model.bin", "content": "weights"}]}).raise_for_status()
    out = run_vh(emulator, tmp_path, "execution", "outputs", "1")
    assert "out/model.bin" in out


def test_a_datum_downloads_the_way_valohai_utils_does_it(emulator, vh, tmp_path, monkeypatch):
    from valohai.internals.download import download_url
    from valohai_cli.override import configure_project_override, configure_token_login
    from valohai_cli.settings import settings

    datum_id = adopt(vh, f"s3://{BUCKET}/data/test.csv").json()["created"][f"s3://{BUCKET}/data/test.csv"]
    vh.post(f"/api/v0/data/{datum_id}/metadata/", json={"valohai.alias": "test-set"}).raise_for_status()
    monkeypatch.setenv("VALOHAI_CONFIG_DIR", str(tmp_path))
    for folder in ("by-id", "by-alias"):  # the inputs folder exists in an execution
        (tmp_path / folder).mkdir()
    try:
        configure_token_login(emulator.url, SANDBOX["valohai_token"])
        configure_project_override(PROJECT, "remote", str(tmp_path))
        by_id = download_url(f"datum://{datum_id}", str(tmp_path / "by-id" / "x"))
        by_alias = download_url("datum://test-set", str(tmp_path / "by-alias" / "x"))
    finally:
        settings.reset()
    expected = emulator.emulator.store.get_blob(f"{BUCKET}/data/test.csv")
    assert Path(by_id).read_bytes() == expected and Path(by_id).name == "test.csv"
    assert Path(by_alias).read_bytes() == expected


# -- documented shapes -----------------------------------------------------------------------
def test_fresh_sandbox_holds_user_project_store_and_objects(vh, admin):
    assert vh.get("/api/v0/users/me/").json()["username"] == "sandbox"
    project = vh.get(f"/api/v0/projects/{PROJECT}/").json()
    assert project["name"] == "sandbox" and project["owner"] == {"id": 1, "username": "sandbox"}
    stores = vh.get("/api/v0/stores/").json()
    assert stores["results"][0]["name"] == "sandbox-store"
    assert stores["results"][0]["configuration"]["bucket"] == BUCKET
    keys = {o["key"] for o in admin.get(f"/_emulator/s3/{BUCKET}").json()["objects"]}
    assert {"data/train.csv", "data/test.csv", "models/model.pkl"} <= keys


def test_get_token_accepts_form_and_json(emulator):
    from reconciler.emulator.valohai import SANDBOX_PASSWORD
    form = httpx.post(f"{emulator.url}/api/v0/get-token/",
                      data={"username": "sandbox", "password": SANDBOX_PASSWORD})
    as_json = httpx.post(f"{emulator.url}/api/v0/get-token/",
                         json={"username": "sandbox", "password": SANDBOX_PASSWORD})
    assert form.json() == as_json.json() == {"token": SANDBOX["valohai_token"]}
    wrong = httpx.post(f"{emulator.url}/api/v0/get-token/", data={"username": "sandbox", "password": "x"})
    assert wrong.status_code == 400


def test_project_create_is_form_encoded_with_owner_object(vh):
    r = vh.post("/api/v0/projects/", data={"name": "new-one", "description": "d"})
    assert r.status_code == 201 and r.json()["owner"]["username"] == "sandbox"
    listing = vh.get("/api/v0/projects/", params={"limit": 9000}).json()
    assert {p["name"] for p in listing["results"]} == {"sandbox", "new-one"}
    assert vh.get("/api/v0/projects/ownership_options/").json() == ["sandbox"]


def test_adopted_datum_has_the_documented_fields_and_real_sha256(emulator, vh):
    url = f"s3://{BUCKET}/data/train.csv"
    r = adopt(vh, url)
    assert r.status_code == 200 and r.json()["ok"] is True
    datum_id = r.json()["created"][url]
    d = vh.get(f"/api/v0/data/{datum_id}/").json()
    body = emulator.emulator.store.get_blob(f"{BUCKET}/data/train.csv")
    assert d["name"] == "train.csv" and d["size"] == len(body) and isinstance(d["size"], int)
    assert d["sha256"] == hashlib.sha256(body).hexdigest()
    assert d["uri"] == url and d["output_execution"] is None and d["ctime"].endswith("Z")
    assert d["tags"] == [] and d["metadata"] == {}
    assert d["project"]["id"] == PROJECT and d["store"]["id"] == STORE
    assert vh.get(f"/api/v0/data/{datum_id}").json()["id"] == datum_id  # no slash: valohai-utils


def test_adopt_errors_duplicate_and_missing_file(vh):
    url = f"s3://{BUCKET}/data/train.csv"
    adopt(vh, url)
    dup = adopt(vh, url)
    assert dup.status_code == 400
    assert dup.json() == {"url": [{"message": f"{url} already exists in sandbox-store", "code": None}]}
    missing = adopt(vh, f"s3://{BUCKET}/nope.csv")
    assert missing.status_code == 400
    assert missing.json()["url"][0]["code"] == "adoptable_file_not_found"
    assert "sandbox-store" in missing.json()["url"][0]["message"]


def test_bulk_adopt_is_all_or_nothing_and_names_each_failing_url(vh):
    good, bad = f"s3://{BUCKET}/data/test.csv", f"s3://{BUCKET}/missing"
    r = adopt(vh, good, bad)
    assert r.status_code == 400
    assert [(e["url"], e["code"]) for e in r.json()["urls"]] == [(bad, "adoptable_file_not_found")]
    assert vh.get("/api/v0/data/", params={"project": PROJECT}).json()["results"] == []


def test_only_objects_in_the_emulated_s3_can_be_adopted(vh, admin):
    admin.put(f"/_emulator/s3/{BUCKET}/late/file.txt", content=b"late")
    assert adopt(vh, f"s3://{BUCKET}/late/file.txt").status_code == 200
    assert adopt(vh, "s3://other-bucket/x").json()["url"][0]["code"] == "invalid_url"


def test_data_list_pages_by_limit_and_offset_exactly(vh, admin):
    urls = []
    for i in range(25):
        admin.put(f"/_emulator/s3/{BUCKET}/many/{i:03}.txt", content=str(i).encode())
        urls.append(f"s3://{BUCKET}/many/{i:03}.txt")
    adopt(vh, *urls)
    first = vh.get("/api/v0/data/", params={"project": PROJECT, "limit": 10}).json()
    assert first["count"] == 25 and len(first["results"]) == 10 and first["previous"] is None
    last = vh.get("/api/v0/data/", params={"project": PROJECT, "limit": 10, "offset": 20}).json()
    assert len(last["results"]) == 5 and last["next"] is None
    assert vh.get(first["next"]).json()["results"][0]["uri"] == urls[10]
    big = vh.get("/api/v0/data/", params={"project": PROJECT, "limit": 5000, "no_count": "true",
                                          "ordering": "-ctime", "deleted": "false", "whatever": 1}).json()
    assert len(big["results"]) == 25 and big["count"] is None
    assert big["results"][0]["uri"] == urls[-1]


def test_metadata_endpoints_merge_remove_tags_and_alias(vh):
    created = adopt(vh, f"s3://{BUCKET}/data/train.csv", f"s3://{BUCKET}/data/test.csv").json()["created"]
    a, b = created.values()
    assert vh.post(f"/api/v0/data/{a}/metadata/", json={"x": 1, "y": [1, 2], "valohai.tags": ["t1"]}
                   ).status_code == 200
    vh.post("/api/v0/data/metadata/apply/", json={"datum_metadata": {
        a: {"x": None, "z": {"k": "v"}, "valohai.alias": "current"}, b: {"x": 2}}}).raise_for_status()
    da = vh.get(f"/api/v0/data/{a}/").json()
    assert da["metadata"] == {"y": [1, 2], "z": {"k": "v"}} and da["tags"] == ["t1"]
    vh.post("/api/v0/data/metadata/apply-all/", json={"metadata": {"valohai.tags": ["t2", "t3"], "w": 0},
                                                       "datum_ids": [a, b]}).raise_for_status()
    assert [d["tags"] for d in (vh.get(f"/api/v0/data/{i}/").json() for i in (a, b))] == [["t2", "t3"]] * 2
    assert vh.get("/api/v0/data/", params={"project": PROJECT, "tag": "t3"}).json()["count"] == 2
    # moving the alias keeps its history
    vh.post(f"/api/v0/data/{b}/metadata/", json={"valohai.alias": "current"}).raise_for_status()
    alias = vh.get("/api/v0/datum-aliases/", params={"project": PROJECT}).json()["results"][0]
    assert alias["datum"]["id"] == b and [h["datum"] for h in alias["history"]] == [a, b]
    assert alias["project"]["id"] == PROJECT and alias["mtime"]
    resolved = vh.get("/api/v0/datum-aliases/resolve/", params={"name": "current", "project": PROJECT})
    assert resolved.json()["datum"]["id"] == b
    vh.post(f"/api/v0/data/{b}/metadata/", json={"valohai.alias": None}).raise_for_status()
    assert vh.get("/api/v0/datum-aliases/").json()["results"][0]["datum"] is None
    assert vh.get("/api/v0/datum-aliases/resolve/", params={"name": "current", "project": PROJECT}
                  ).status_code == 404


def test_purge_deletes_the_file_and_marks_the_datum(vh, admin):
    url = f"s3://{BUCKET}/data/test.csv"
    datum_id = adopt(vh, url).json()["created"][url]
    assert vh.post(f"/api/v0/data/{datum_id}/purge/").status_code == 200
    assert vh.get(f"/api/v0/data/{datum_id}/").json()["purged"] is True
    assert admin.get(f"/_emulator/s3/{BUCKET}/data/test.csv").status_code == 404


def test_execution_outputs_are_datums_with_a_counter(vh, admin):
    r = admin.post("/_emulator/valohai/executions", json={"outputs": [
        {"name": "model.h5", "content": "abc", "properties": {"acc": 0.9}, "tags": ["new"]}]})
    execution, datum = r.json()["execution"], r.json()["datums"][0]
    assert datum["output_execution"] == {"id": execution["id"], "counter": 1}
    assert datum["metadata"] == {"acc": 0.9} and datum["tags"] == ["new"]
    listed = vh.get("/api/v0/data/", params={"output_execution": execution["id"], "limit": 5000}).json()
    assert [d["id"] for d in listed["results"]] == [datum["id"]]
    assert vh.get(f"/api/v0/executions/{PROJECT}:1/").json()["counter"] == 1


def test_download_url_needs_no_token_but_a_valid_signature(emulator, vh):
    url = f"s3://{BUCKET}/models/model.pkl"
    datum_id = adopt(vh, url).json()["created"][url]
    link = vh.get(f"/api/v0/data/{datum_id}/download/").json()["url"]
    assert httpx.get(link).status_code == 200
    assert httpx.get(link.replace("Signature=", "Signature=0")).status_code == 403


# -- 401 / 400 / 404 ---------------------------------------------------------------------------
@pytest.mark.parametrize("method,path", [
    ("GET", "/api/v0/users/me/"), ("GET", "/api/v0/projects/"), ("GET", "/api/v0/stores/"),
    ("GET", "/api/v0/data/"), ("GET", "/api/v0/datum-aliases/"),
    ("POST", f"/api/v0/stores/{STORE}/adopt/"), ("POST", "/api/v0/data/metadata/apply/"),
])
@pytest.mark.parametrize("header", [None, "Token wrong", "Bearer " + SANDBOX["valohai_token"]])
def test_requests_without_a_valid_token_get_401(emulator, method, path, header):
    headers = {"Authorization": header} if header else {}
    r = httpx.request(method, emulator.url + path, headers=headers, json={})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Token" and "detail" in r.json()


def test_token_scheme_is_case_insensitive(emulator):
    r = httpx.get(f"{emulator.url}/api/v0/users/me/", headers={"Authorization": f"token {SANDBOX['valohai_token']}"})
    assert r.status_code == 200


@pytest.mark.parametrize("path,body", [
    (f"/api/v0/stores/{STORE}/adopt/", b"{not json"),
    (f"/api/v0/stores/{STORE}/adopt/", b"[1, 2]"),
    (f"/api/v0/stores/{STORE}/adopt/", b'{"urls": "s3://x", "project": "p"}'),
    (f"/api/v0/stores/{STORE}/adopt/", b'{"url": "s3://sandbox-bucket/data/train.csv"}'),
    ("/api/v0/data/metadata/apply/", b"{not json"),
    ("/api/v0/data/metadata/apply/", b'{"datum_metadata": [1]}'),
    ("/api/v0/data/metadata/apply/", b'{"datum_metadata": {"nope": {"a": 1}}}'),
    ("/api/v0/data/metadata/apply-all/", b'{"metadata": {"a": 1}}'),
    ("/api/v0/data/metadata/apply-all/", b'{"metadata": 5, "datum_ids": ["x"]}'),
    ("/api/v0/data/metadata/apply-all/", b'"text"'),
    ("/api/v0/projects/", b"{not json"),
    ("/api/v0/get-token/", b"{not json"),
])
def test_malformed_bodies_get_400_json(vh, path, body):
    r = vh.post(path, content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert isinstance(r.json(), dict)


@pytest.mark.parametrize("props", [{"valohai.tags": "not-a-list"}, {"valohai.alias": ["a", "b"]}])
def test_reserved_keys_are_checked(vh, props):
    url = f"s3://{BUCKET}/data/train.csv"
    datum_id = adopt(vh, url).json()["created"][url]
    assert vh.post(f"/api/v0/data/{datum_id}/metadata/", json=props).status_code == 400


def test_unknown_objects_are_404(vh):
    for path in ("/api/v0/data/00000000-0000-4000-8000-000000000000/",
                 "/api/v0/projects/00000000-0000-4000-8000-000000000000/",
                 "/api/v0/stores/nope/", "/api/v0/no-such-endpoint/"):
        assert vh.get(path).status_code == 404
    assert vh.post("/api/v0/stores/nope/adopt/", json={"url": "s3://a/b", "project": PROJECT}).status_code == 404


def test_other_users_cannot_see_the_sandbox(emulator, admin):
    token = admin.post("/_emulator/valohai/users", json={"username": "eve"}).json()["token"]
    eve = {"Authorization": f"Token {token}"}
    assert httpx.get(f"{emulator.url}/api/v0/projects/{PROJECT}/", headers=eve).status_code == 404
    assert httpx.get(f"{emulator.url}/api/v0/stores/", headers=eve).json()["results"] == []


def test_valohai_state_survives_a_restart(tmp_path):
    url = f"s3://{BUCKET}/data/train.csv"
    headers = {"Authorization": f"Token {SANDBOX['valohai_token']}"}
    with EmulatorServer(data_dir=tmp_path) as first:
        client = httpx.Client(base_url=first.url, headers=headers)
        datum_id = adopt(client, url).json()["created"][url]
        client.post(f"/api/v0/data/{datum_id}/metadata/", json={"k": "v", "valohai.alias": "keep"})
    with EmulatorServer(data_dir=tmp_path) as second:
        client = httpx.Client(base_url=second.url, headers=headers)
        assert client.get(f"/api/v0/data/{datum_id}/").json()["metadata"] == {"k": "v"}
        assert client.get("/api/v0/datum-aliases/").json()["results"][0]["datum"]["id"] == datum_id
        assert adopt(client, url).status_code == 400  # still adopted


def test_admin_seeds_projects_stores_and_tokens(emulator, vh, admin):
    project = admin.post("/_emulator/valohai/projects", json={"name": "second"}).json()
    store = admin.post("/_emulator/valohai/stores", json={"name": "other", "bucket": "other-bucket",
                                                          "project": project["id"]}).json()
    admin.put("/_emulator/s3/other-bucket/f.txt", content=b"f")
    r = vh.post(f"/api/v0/stores/{store['id']}/adopt/", json={"url": "s3://other-bucket/f.txt",
                                                              "project": project["id"]})
    assert r.status_code == 200
    listed = vh.get("/api/v0/data/", params={"project": project["id"]}).json()["results"]
    assert [d["store"]["name"] for d in listed] == ["other"]
    token = admin.post("/_emulator/valohai/tokens", json={"username": "sandbox"}).json()["token"]
    me = httpx.get(f"{emulator.url}/api/v0/users/me/", headers={"Authorization": f"Token {token}"})
    assert me.json()["username"] == "sandbox"
    broken = admin.post("/_emulator/valohai/stores", content=b"{", headers={"Content-Type": "application/json"})
    assert broken.status_code == 400
