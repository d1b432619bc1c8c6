"""The emulator's Code Ocean API over real HTTP: the documented shapes, the quirks the SDK
depends on, and the 400/401/403/404 answers (api-reference.md part C, E21-E30;
contracts/codeocean.md)."""
from __future__ import annotations

import time

import httpx
import pytest

from reconciler.emulator import EmulatorConfig, EmulatorServer
from reconciler.emulator import codeocean_model as m
from reconciler.emulator.core import SANDBOX

TOKEN = SANDBOX["codeocean_token"]
COMPUTATION = "c0a1b2c3-d4e5-4f60-8a7b-9c0d1e2f3a4b"
BUCKET = "sandbox-bucket"
TRAIN, TEST = b"x,y\n1,2\n2,4\n3,6\n4,8\n", b"x,y\n5,10\n6,12\n"  # seeded under data/


@pytest.fixture
def co(emulator):
    """An httpx client authenticated as the sandbox user (an admin)."""
    with httpx.Client(base_url=f"{emulator.url}/api/v1", auth=(TOKEN, ""), timeout=30) as client:
        yield client


def body(name="asset", **extra) -> dict:
    """A create body from the sandbox bucket's data/ folder, as the SDK sends it (nulls)."""
    source = {"aws": {"bucket": BUCKET, "prefix": "data", "keep_on_external_storage": False,
                      "public": False, "endpoint_name": None, "use_input_bucket": None},
              "gcp": None, "computation": None, "cloud_workstation": None}
    return {"name": name, "tags": ["t"], "mount": name, "description": None, "source": source,
            "target": None, "custom_metadata": None, "data_asset_ids": None, "results_info": None, **extra}


def create(co, name="asset", **extra) -> dict:
    r = co.post("/data_assets", json=body(name, **extra))
    assert r.status_code == 200, r.text
    return r.json()


def settled(co, asset_id: str, timeout: float = 5.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        asset = co.get(f"/data_assets/{asset_id}").json()
        if asset["state"] != "draft" or time.monotonic() > deadline:
            return asset
        time.sleep(0.05)


def no_delay(admin):
    admin.post("/_emulator/config", json={"asset_ready_delay": 0}).raise_for_status()


def add_user(admin, email, admin_rights=False) -> httpx.Client:
    r = admin.post("/_emulator/codeocean/users", json={"email": email, "admin": admin_rights})
    assert r.status_code == 201, r.text
    return httpx.Client(base_url=api_of(admin), auth=(r.json()["token"], ""), timeout=30)


def api_of(admin) -> str:
    return str(admin.base_url).rstrip("/") + "/api/v1"


def bulk_assets(emulator, count: int, prefix: str) -> list[str]:
    """Many assets at once, straight into the emulator's store (HTTP would take too long)."""
    store = emulator.emulator.store
    user = store.get(m.USER, SANDBOX["codeocean_user_id"])
    source = {"aws": {"bucket": BUCKET, "prefix": "data", "keep_on_external_storage": True, "public": False}}
    now = time.time()
    return [m.create_asset(store, user, {"name": f"{prefix}-{i:04d}", "tags": [prefix], "mount": "m",
                                         "source": source}, now=now)["id"] for i in range(count)]


# -- auth -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("auth", [
    pytest.param(None, id="no credentials"),
    pytest.param(("cop_wrong", ""), id="unknown token"),
    pytest.param((TOKEN, "secret"), id="right token with a password"),
    pytest.param("bearer", id="token as Bearer, not Basic"),
])
def test_requests_without_a_valid_token_are_401_with_a_message(emulator, auth):
    headers = {"Authorization": f"Bearer {TOKEN}"} if auth == "bearer" else {}
    r = httpx.get(f"{emulator.url}/api/v1/custom_metadata", headers=headers,
                  auth=auth if isinstance(auth, tuple) else None)
    assert r.status_code == 401
    assert r.json()["message"]
    assert TOKEN not in r.text
    assert r.headers["www-authenticate"].startswith("Basic")


def test_the_sdk_headers_are_accepted_on_bodyless_requests(co):
    headers = {"Content-Type": "application/json", "Min-Server-Version": "4.8.0", "Agent-Id": "agent-7"}
    asset = create(co)
    assert co.get(f"/data_assets/{asset['id']}", headers=headers).status_code == 200
    assert co.patch(f"/data_assets/{asset['id']}/archive", params={"archive": "True"},
                    headers={**headers, "Content-Length": "0"}).status_code == 204
    assert co.delete(f"/data_assets/{asset['id']}", headers=headers).status_code == 204


# -- create and the lifecycle ------------------------------------------------------------------
def test_an_aws_asset_is_draft_then_ready_with_its_file_count_and_size(co):
    asset = create(co, "train", custom_metadata={"modality": "MRI", "subjects": 12, "collected": 1700000000})
    assert asset["state"] == "draft"
    assert asset["type"] == "dataset" and asset["owner"] == SANDBOX["codeocean_user_id"]
    assert isinstance(asset["created"], int) and asset["last_used"] == 0
    assert asset["source_bucket"] == {"origin": "aws", "bucket": BUCKET, "prefix": "data", "external": False}
    ready = settled(co, asset["id"])
    assert ready["state"] == "ready" and ready["failure_reason"] is None
    assert (ready["files"], ready["size"]) == (2, len(TRAIN) + len(TEST))
    assert ready["custom_metadata"] == {"modality": "MRI", "subjects": 12, "collected": 1700000000}


def test_nothing_under_the_prefix_fails_with_the_reason(co):
    source = body()["source"]
    source["aws"]["prefix"] = "no/such/folder"
    asset = create(co, source=source)
    assert asset["state"] == "draft"
    failed = settled(co, asset["id"])
    assert failed["state"] == "failed"
    assert failed["failure_reason"] == f"no objects found in s3://{BUCKET}/no/such/folder"


def test_an_internal_asset_owns_a_copy_and_an_external_one_reads_the_bucket(co, admin):
    admin.put(f"/_emulator/s3/{BUCKET}/copy-me/a.txt", content=b"first").raise_for_status()
    source = body()["source"]
    source["aws"]["prefix"] = "copy-me/"
    internal = create(co, "internal", source=source)
    external = create(co, "external", source={**source, "aws": {**source["aws"], "keep_on_external_storage": True,
                                                                "public": True}})
    assert settled(co, internal["id"])["source_bucket"]["external"] is False
    assert settled(co, external["id"])["source_bucket"]["external"] is True
    admin.delete(f"/_emulator/s3/{BUCKET}/copy-me/a.txt").raise_for_status()

    url = co.get(f"/data_assets/{internal['id']}/files/urls", params={"path": "a.txt"}).json()["download_url"]
    assert httpx.get(url).content == b"first"
    # seed 003: an external asset's files are read in its bucket, not through the API
    for r in (co.get(f"/data_assets/{external['id']}/files/urls", params={"path": "a.txt"}),
              co.post(f"/data_assets/{external['id']}/files", json={"path": ""})):
        assert r.status_code == 400 and f"s3://{BUCKET}/copy-me" in r.json()["message"]


@pytest.mark.parametrize("change, field", [
    (dict(name=None), "name"),
    (dict(name="  "), "name"),
    (dict(mount=None), "mount"),
    (dict(tags=None), "tags"),
    (dict(tags="a,b"), "tags"),
    (dict(source=None), "source"),
    (dict(data_asset_ids=["x"]), "data_asset_ids"),  # with a source as well
    (dict(source={"aws": None, "gcp": None, "computation": None, "cloud_workstation": None}), "source"),
    (dict(source={"aws": {"bucket": None, "prefix": "data"}}), "source.aws.bucket"),
    # seed 003 marks prefix, keep_on_external_storage and public required
    (dict(source={"aws": {"bucket": BUCKET}}), "source.aws.prefix"),
    (dict(source={"aws": {"bucket": BUCKET, "prefix": "data", "public": False}}), "source.aws.keep_on_external"),
    (dict(source={"aws": {"bucket": BUCKET, "prefix": "data", "keep_on_external_storage": False}}),
     "source.aws.public"),
    (dict(source={"computation": {"id": "no-such-run", "path": None}}), "source.computation.id"),
    (dict(target={"aws": {"bucket": "out", "prefix": None}}), "target"),
    (dict(custom_metadata={"colour": "red"}), "custom_metadata.colour"),
    (dict(custom_metadata={"modality": "PET"}), "custom_metadata.modality"),
    (dict(custom_metadata={"subjects": "twelve"}), "custom_metadata.subjects"),
    (dict(custom_metadata={"subjects": 100001}), "custom_metadata.subjects"),
    (dict(custom_metadata={"collected": "2024-01-01"}), "custom_metadata.collected"),
    (dict(results_info={"commit": "abc"}), "results_info.capsule_id"),
], ids=lambda v: str(v) if isinstance(v, str) else None)
def test_a_bad_create_is_400_naming_the_field(co, change, field):
    r = co.post("/data_assets", json={**body(), **change})
    assert r.status_code == 400, r.text
    assert r.json()["message"].startswith(field), r.json()["message"]


def test_a_body_that_is_not_json_is_400(co):
    assert co.post("/data_assets", content=b"{nope").status_code == 400
    assert co.post("/data_assets", content=b"").json()["message"]


def test_result_assets_from_a_computation_internal_or_external(co, admin):
    internal = create(co, "results", source={"computation": {"id": COMPUTATION, "path": None}})
    assert internal["type"] == "result" and internal["provenance"]["computation"] == COMPUTATION
    assert settled(co, internal["id"])["files"] == 2
    items = co.post(f"/data_assets/{internal['id']}/files", json={"path": ""}).json()["items"]
    assert [(i["name"], i["type"]) for i in items] == [("figures", "folder"), ("metrics.json", "file")]

    external = create(co, "exported", source={"computation": {"id": COMPUTATION, "path": "figures"}},
                      target={"aws": {"bucket": "results-out", "prefix": "run1", "endpoint_name": None}})
    assert external["source_bucket"] == {"origin": "aws", "bucket": "results-out", "prefix": "run1",
                                         "external": True}
    assert settled(co, external["id"])["files"] == 1
    assert admin.get("/_emulator/s3/results-out").json()["objects"] == [{"key": "run1/loss.csv", "size": 32}]


def test_an_admin_seeded_computation_feeds_a_result_asset(co, admin):
    r = admin.post("/_emulator/codeocean/computations", json={"name": "nightly", "commit": "9e1d",
                                                               "files": {"out/model.bin": "weights"}})
    assert r.status_code == 201
    comp = r.json()
    assert co.get(f"/computations/{comp['id']}").json()["state"] == "completed"
    asset = settled(co, create(co, source={"computation": {"id": comp["id"], "path": "out"}})["id"])
    assert (asset["state"], asset["files"], asset["size"]) == ("ready", 1, len("weights"))
    assert asset["provenance"]["commit"] == "9e1d"
    empty = settled(co, create(co, source={"computation": {"id": comp["id"], "path": "nothing"}})["id"])
    assert empty["state"] == "failed" and comp["id"] in empty["failure_reason"]


def test_results_info_is_echoed_under_provenance(co):
    info = {"capsule_id": "cap-1", "pipeline_id": None, "version": "2", "commit": "abc123",
            "run_script": "code/main.py", "data_assets": ["d1"],
            "parameters": [{"name": "Epochs", "param_name": "epochs", "value": "3"}],
            "nextflow_profile": None, "processes": None}
    asset = create(co, results_info=info)
    assert asset["provenance"]["capsule"] == "cap-1" and asset["provenance"]["commit"] == "abc123"
    assert asset["provenance"]["run_script"] == "code/main.py" and asset["provenance"]["data_assets"] == ["d1"]
    assert asset["app_parameters"] == [{"name": "Epochs", "value": "3"}]


def test_a_combined_asset_holds_its_parts_and_blocks_their_delete(co):
    first, second = create(co, "first"), create(co, "second")
    r = co.post("/data_assets", json={**body("both"), "source": None, "data_asset_ids": [first["id"], "nope"]})
    assert r.status_code == 400 and "nope" in r.json()["message"]
    both = create(co, "both", source=None, data_asset_ids=[first["id"], second["id"]])
    assert both["type"] == "combined"
    both = settled(co, both["id"])
    assert both["state"] == "ready" and both["files"] == 4
    assert both["contained_data_assets"] == [{"id": first["id"], "mount": "first", "size": 34},
                                             {"id": second["id"], "mount": "second", "size": 34}]
    refused = co.delete(f"/data_assets/{first['id']}")
    assert refused.status_code == 400 and refused.json()["message"].endswith("used by combined data asset both")
    assert co.get(f"/data_assets/{first['id']}").status_code == 200
    assert co.delete(f"/data_assets/{both['id']}").status_code == 204
    assert co.delete(f"/data_assets/{first['id']}").status_code == 204
    gone = co.get(f"/data_assets/{first['id']}")
    assert gone.status_code == 404 and gone.json()["message"]


def test_a_combined_asset_of_a_failed_part_fails(co):
    source = body()["source"]
    source["aws"]["prefix"] = "empty"
    broken = create(co, "broken", source=source)
    both = create(co, "both", source=None, data_asset_ids=[broken["id"], create(co)["id"]])
    failed = settled(co, both["id"])
    assert failed["state"] == "failed" and "broken" in failed["failure_reason"]


# -- read, update, archive --------------------------------------------------------------------
def test_update_needs_its_four_fields_and_replaces_custom_metadata(co):
    """Seed 003 Update Metadata marks name, description, tags and mount required: absent or
    null is a 400 naming the field; custom_metadata is optional and replaces the map."""
    asset = create(co, "before", description="d", custom_metadata={"modality": "CT", "lab": "north"})
    update = {"name": "after", "description": "d2", "tags": ["t2"], "mount": "m2",
              "custom_metadata": {"subjects": 3}}
    for key in ("name", "description", "tags", "mount"):
        for given in ({k: v for k, v in update.items() if k != key}, {**update, key: None}):
            r = co.put(f"/data_assets/{asset['id']}", json=given)
            assert r.status_code == 400 and r.json()["message"].startswith(key), r.text
    assert co.get(f"/data_assets/{asset['id']}").json()["name"] == "before"
    r = co.put(f"/data_assets/{asset['id']}", json=update)
    assert r.status_code == 200
    got = co.get(f"/data_assets/{asset['id']}").json()
    assert (got["name"], got["description"], got["tags"], got["mount"]) == ("after", "d2", ["t2"], "m2")
    assert got["custom_metadata"] == {"subjects": 3}
    kept = co.put(f"/data_assets/{asset['id']}", json={**update, "custom_metadata": None})
    assert kept.status_code == 200 and kept.json()["custom_metadata"] == {"subjects": 3}
    bad = co.put(f"/data_assets/{asset['id']}", json={**update, "custom_metadata": {"modality": "X-ray"}})
    assert bad.status_code == 400 and bad.json()["message"].startswith("custom_metadata.modality")
    assert co.put(f"/data_assets/{asset['id']}", json={"tags": "x"}).status_code == 400
    assert co.get(f"/data_assets/{asset['id']}").json()["custom_metadata"] == {"subjects": 3}


@pytest.mark.parametrize("flag, archived", [("True", True), ("true", True), ("TRUE", True),
                                            ("False", False), ("false", False)])
def test_archive_reads_python_and_json_booleans(co, flag, archived):
    asset = create(co)
    co.patch(f"/data_assets/{asset['id']}/archive", params={"archive": "True"})
    assert co.patch(f"/data_assets/{asset['id']}/archive", params={"archive": flag}).status_code == 204
    assert co.get(f"/data_assets/{asset['id']}").json()["archived"] is archived


def test_archive_without_a_boolean_is_400(co):
    asset = create(co)
    for params in ({}, {"archive": "yes"}):
        r = co.patch(f"/data_assets/{asset['id']}/archive", params=params)
        assert r.status_code == 400 and r.json()["message"].startswith("archive")


def test_unknown_asset_is_404_everywhere(co):
    for method, path in [("GET", ""), ("PUT", ""), ("DELETE", ""), ("PATCH", "/archive?archive=true"),
                         ("GET", "/permissions"), ("POST", "/files"), ("GET", "/files/urls?path=a")]:
        r = co.request(method, f"/data_assets/no-such-id{path}", json={} if method in ("PUT", "POST") else None)
        assert r.status_code == 404, (method, path, r.text)
        assert r.json()["message"]


# -- search ------------------------------------------------------------------------------------------
def search(co, **params) -> dict:
    r = co.post("/data_assets/search", json=params)
    assert r.status_code == 200, r.text
    return r.json()


def names(co, **params) -> list[str]:
    return [a["name"] for a in search(co, limit=1000, **params)["results"]]


def test_search_query_terms(co, admin):
    admin.post("/_emulator/codeocean/computations", json={"id": "run-2", "run_script": "code/train.py",
                                                          "commit": "ABCDEF12", "files": {"f": "1"}})
    create(co, "RNA-seq reads", tags=["genomics", "raw"], description="sequencer output")
    create(co, "rna counts", tags=["Genomics"], custom_metadata={"lab": "Westlake"})
    create(co, "MRI scans", tags=["imaging"])
    result = create(co, "trained model", source={"computation": {"id": "run-2", "path": None}})
    combined = create(co, "bundle", source=None, data_asset_ids=[result["id"]])

    assert sorted(names(co, query="name:rna")) == ["RNA-seq reads", "rna counts"]
    assert sorted(names(co, query="tag:genomics")) == ["RNA-seq reads", "rna counts"]
    assert sorted(names(co, query="tag:raw tag:imaging")) == ["MRI scans", "RNA-seq reads"]  # same field: OR
    assert names(co, query="name:rna tag:raw") == ["RNA-seq reads"]  # different fields: AND
    assert names(co, query='name:"rna counts"') == ["rna counts"]
    assert names(co, query="sequencer") == ["RNA-seq reads"]  # free text: description
    assert names(co, query="westlake") == ["rna counts"]  # free text: custom metadata
    assert names(co, query="run_script:train.py") == ["trained model"]
    assert names(co, query="commit_id:abcdef") == ["trained model"]
    assert names(co, query=f"contained_data_id:{result['id']}") == [combined["name"]]
    assert names(co, query="name:nothing-like-this") == []


def test_search_type_origin_filters_and_sorting(co):
    small = create(co, "b-small", tags=["x"], custom_metadata={"subjects": 5, "modality": "CT"})
    source = body()["source"]
    source["aws"]["keep_on_external_storage"] = True
    create(co, "a-external", source=source, custom_metadata={"subjects": 50, "modality": "MRI"})
    create(co, "c-result", source={"computation": {"id": COMPUTATION, "path": None}}, tags=["x", "y"])
    for a in search(co, limit=10)["results"]:
        settled(co, a["id"])

    assert names(co, type="result") == ["c-result"]
    assert names(co, origin="external") == ["a-external"]
    assert sorted(names(co, origin="internal")) == ["b-small", "c-result"]
    assert names(co, sort_field="name", sort_order="asc") == ["a-external", "b-small", "c-result"]
    assert names(co, sort_field="name", sort_order="desc") == ["c-result", "b-small", "a-external"]
    assert names(co, sort_field="size", sort_order="desc")[0] == "c-result"  # 65 bytes vs 34
    assert names(co)[0] == "c-result"  # newest first by default
    assert names(co, filters=[{"key": "subjects", "range": {"min": 10, "max": 100}}]) == ["a-external"]
    assert names(co, filters=[{"key": "subjects", "range": {"min": 1, "max": None}}],
                 sort_field="name") == ["a-external", "b-small"]
    assert names(co, filters=[{"key": "modality", "value": "ct"}]) == ["b-small"]
    assert sorted(names(co, filters=[{"key": "modality", "values": ["CT", "MRI"]}])) == ["a-external", "b-small"]
    assert names(co, filters=[{"key": "tags", "value": "y", "exclude": True}],
                 sort_field="name") == ["a-external", "b-small"]
    assert names(co, filters=[{"key": "tags", "value": "x"}, {"key": "modality", "exclude": True}]) == ["c-result"]
    assert small["id"] in {a["id"] for a in search(co, filters=[{"key": "name", "value": "B-SMALL"}])["results"]}


@pytest.mark.parametrize("params, field", [
    ({"limit": 1001}, "limit"), ({"limit": 0}, "limit"), ({"offset": -1}, "offset"),
    ({"sort_field": "owner"}, "sort_field"), ({"sort_order": "up"}, "sort_order"), ({"type": "folder"}, "type"),
    ({"ownership": "mine"}, "ownership"), ({"origin": "local"}, "origin"), ({"next_token": "%%%"}, "next_token"),
    ({"filters": [{"key": "colour", "value": "red"}]}, "filters[0].key"),
    ({"filters": [{"key": "subjects", "range": {}}]}, "filters[0].range"),
])
def test_bad_search_parameters_are_400_naming_them(co, params, field):
    r = co.post("/data_assets/search", json=params)
    assert r.status_code == 400 and r.json()["message"].startswith(field), r.text


def test_search_hides_archived_assets_unless_asked_for_only_them(co):
    kept, archived = create(co, "kept"), create(co, "archived")
    co.patch(f"/data_assets/{archived['id']}/archive", params={"archive": "True"}).raise_for_status()
    assert names(co) == ["kept"]
    assert names(co, archived=False) == ["kept"]
    assert names(co, archived=True) == ["archived"]
    co.patch(f"/data_assets/{archived['id']}/archive", params={"archive": "false"}).raise_for_status()
    assert sorted(names(co)) == ["archived", "kept"]


def test_ownership_sharing_and_what_other_users_see(co, admin):
    mine = create(co, "mine")
    with add_user(admin, "ann@lab.example") as ann, add_user(admin, "bob@lab.example") as bob:
        anns = create(ann, "anns")
        assert names(co, sort_field="name") == ["anns", "mine"]  # an admin sees everything
        assert names(co, ownership="created") == ["mine"]
        assert names(ann) == ["anns"] and names(bob) == []
        assert bob.get(f"/data_assets/{anns['id']}").status_code == 404

        r = ann.post(f"/data_assets/{anns['id']}/permissions",
                     json={"users": [{"email": "ann@lab.example", "role": "owner"},
                                     {"email": "bob@lab.example", "role": "viewer"}],
                           "groups": [], "everyone": "none", "share_assets": None})
        assert r.status_code == 204
        assert names(bob) == ["anns"] and names(bob, ownership="shared") == ["anns"]
        assert names(bob, ownership="created") == [] and names(ann, ownership="private") == []
        assert names(co, ownership="private") == ["mine"]
        assert bob.get(f"/data_assets/{anns['id']}").status_code == 200
        assert bob.put(f"/data_assets/{anns['id']}", json={"name": "taken"}).status_code == 403
        assert bob.delete(f"/data_assets/{anns['id']}").status_code == 403
        assert bob.delete(f"/data_assets/{mine['id']}").status_code == 404
        assert ann.post(f"/data_assets/{anns['id']}/transfer",
                        json={"target": {"aws": {"bucket": "b"}}}).status_code == 403  # admins only


def test_next_token_pages_over_more_than_1000_assets_and_wins_over_offset(emulator, co):
    ids = set(bulk_assets(emulator, 1201, "bulk"))
    first = search(co, limit=1000, offset=0)
    assert len(first["results"]) == 1000 and first["has_more"] is True
    assert isinstance(first["next_token"], str)
    second = search(co, limit=1000, offset=0, next_token=first["next_token"])  # the SDK re-sends offset
    assert len(second["results"]) == 201
    assert second["has_more"] is False and second["next_token"] is None
    assert {a["id"] for a in first["results"] + second["results"]} == ids
    assert search(co)["has_more"] is True and len(search(co)["results"]) == 100  # default limit
    page = search(co, limit=10, offset=1195)
    assert len(page["results"]) == 6 and page["has_more"] is False


# -- permissions, files, transfer ----------------------------------------------------------------
def test_permissions_start_with_the_owner_and_post_replaces_the_given_keys(co):
    asset = create(co)
    owner = {"email": SANDBOX["codeocean_email"], "role": "owner"}
    assert co.get(f"/data_assets/{asset['id']}/permissions").json() == {
        "users": [owner], "groups": [], "everyone": "none", "share_assets": False}
    r = co.post(f"/data_assets/{asset['id']}/permissions",
                json={"users": [owner], "groups": [{"group": "lab", "role": "discoverable"}],
                      "everyone": "viewer", "share_assets": True})
    assert r.status_code == 204
    assert co.get(f"/data_assets/{asset['id']}/permissions").json() == {
        "users": [owner], "groups": [{"group": "lab", "role": "discoverable"}], "everyone": "viewer",
        "share_assets": True}
    complete = {"users": [owner], "groups": [], "everyone": "none"}
    for bad in ({"users": [{"email": "x@y", "role": "boss"}]}, {"groups": [{"group": "g", "role": "god"}]},
                {"everyone": "all"}):
        r = co.post(f"/data_assets/{asset['id']}/permissions", json={**complete, **bad})
        assert r.status_code == 400 and r.json()["message"].startswith(next(iter(bad)))
    # seed 003: users, groups and everyone are all required: a missing key is a 400
    for key in ("users", "groups", "everyone"):
        r = co.post(f"/data_assets/{asset['id']}/permissions", json={k: v for k, v in complete.items() if k != key})
        assert r.status_code == 400 and r.json()["message"].startswith(key), r.text
    assert co.get(f"/data_assets/{asset['id']}/permissions").json()["everyone"] == "viewer"  # unchanged
    # the official SDK sends null for what it leaves unset: null reads as empty
    r = co.post(f"/data_assets/{asset['id']}/permissions", json={"users": [owner], "groups": None, "everyone": None})
    assert r.status_code == 204
    assert co.get(f"/data_assets/{asset['id']}/permissions").json() == {
        "users": [owner], "groups": [], "everyone": "none", "share_assets": True}


def test_files_list_by_folder_and_signed_urls_serve_the_bytes(co, admin):
    for key, data in {"deep/a.txt": b"A", "deep/sub/b.txt": b"BB", "deep/sub/c.txt": b"CCC"}.items():
        admin.put(f"/_emulator/s3/{BUCKET}/{key}", content=data).raise_for_status()
    source = body()["source"]
    source["aws"]["prefix"] = "deep"
    asset = create(co, source=source)
    assert co.post(f"/data_assets/{asset['id']}/files", json={"path": ""}).status_code == 400  # still draft
    settled(co, asset["id"])
    root = co.post(f"/data_assets/{asset['id']}/files", json={"path": ""}).json()["items"]
    assert root == [{"name": "sub", "path": "sub", "type": "folder"},
                    {"name": "a.txt", "path": "a.txt", "type": "file", "size": 1}]
    sub = co.post(f"/data_assets/{asset['id']}/files", json={"path": "sub"}).json()["items"]
    assert [(i["path"], i["size"]) for i in sub] == [("sub/b.txt", 2), ("sub/c.txt", 3)]
    assert co.post(f"/data_assets/{asset['id']}/files", json={"path": "nope"}).status_code == 404

    urls = co.get(f"/data_assets/{asset['id']}/files/urls", params={"path": "sub/c.txt"}).json()
    download = httpx.get(urls["download_url"])  # no credentials: the URL is signed
    assert download.content == b"CCC" and download.headers["content-disposition"].startswith("attachment")
    assert httpx.get(urls["view_url"]).headers["content-disposition"].startswith("inline")
    assert httpx.get(urls["download_url"].replace("signature=", "signature=0")).status_code == 403
    old = co.get(f"/data_assets/{asset['id']}/files/download_url", params={"path": "a.txt"}).json()
    assert httpx.get(old["url"]).content == b"A"
    assert co.get(f"/data_assets/{asset['id']}/files/urls", params={"path": "zzz"}).status_code == 404


def test_transfer_moves_the_files_and_makes_the_asset_external(co, admin):
    asset = create(co)
    settled(co, asset["id"])
    before = int(time.time())
    r = co.post(f"/data_assets/{asset['id']}/transfer",
                json={"target": {"aws": {"bucket": "archive", "prefix": "moved", "endpoint_name": None}},
                      "force": None})
    after = time.time()
    assert r.status_code == 204
    got = co.get(f"/data_assets/{asset['id']}").json()
    assert got["source_bucket"] == {"origin": "aws", "bucket": "archive", "prefix": "moved", "external": True}
    assert before <= got["last_transferred"] <= after and got["transfer_error"] is None  # stamped when it ran
    assert [o["key"] for o in admin.get("/_emulator/s3/archive").json()["objects"]] == \
        ["moved/test.csv", "moved/train.csv"]
    assert names(co, origin="external") == ["asset"]
    assert co.post(f"/data_assets/{asset['id']}/transfer", json={"target": None}).status_code == 400


# -- custom metadata, admin surface, persistence -----------------------------------------------------
def test_the_custom_metadata_schema_is_served_and_replaceable(co, admin):
    schema = co.get("/custom_metadata").json()
    assert [f["name"] for f in schema["fields"]] == ["modality", "subjects", "collected", "lab"]
    assert schema["categories"] == ["Research"]
    new = {"fields": [{"name": "species", "type": "string", "required": True}], "categories": []}
    assert admin.put("/_emulator/codeocean/custom_metadata", json=new).status_code == 200
    assert co.get("/custom_metadata").json()["fields"][0]["name"] == "species"
    assert co.post("/data_assets", json=body(custom_metadata={"species": "mouse"})).status_code == 200
    assert co.post("/data_assets", json=body(custom_metadata={"lab": "x"})).status_code == 400
    assert co.post("/data_assets", json=body()).json()["message"].startswith("custom_metadata.species")
    bad = admin.put("/_emulator/codeocean/custom_metadata", json={"fields": [{"name": "f", "type": "bool"}]})
    assert bad.status_code == 400


def test_admin_users_need_a_fresh_email(admin):
    assert admin.post("/_emulator/codeocean/users", json={"email": SANDBOX["codeocean_email"]}).status_code == 400
    made = admin.post("/_emulator/codeocean/users", json={"email": "new@x.example", "token": "cop_new"})
    assert made.status_code == 201 and made.json()["token"] == "cop_new"
    assert httpx.get(f"{api_of(admin)}/custom_metadata", auth=("cop_new", "")).status_code == 200


def test_assets_users_and_schema_survive_a_restart(tmp_path):
    config = EmulatorConfig(asset_ready_delay=0)
    with EmulatorServer(data_dir=tmp_path, config=config) as first:
        httpx.post(f"{first.url}/_emulator/codeocean/users", json={"email": "u@x.example", "token": "cop_u"})
        with httpx.Client(base_url=f"{first.url}/api/v1", auth=("cop_u", "")) as client:
            asset = create(client, "kept", custom_metadata={"lab": "east"})
        httpx.put(f"{first.url}/_emulator/codeocean/custom_metadata",
                  json={"fields": [{"name": "lab", "type": "string"}]})
    with EmulatorServer(data_dir=tmp_path, config=config) as second:
        with httpx.Client(base_url=f"{second.url}/api/v1", auth=("cop_u", "")) as client:
            got = client.get(f"/data_assets/{asset['id']}").json()
            assert (got["name"], got["state"], got["custom_metadata"]) == ("kept", "ready", {"lab": "east"})
            assert [f["name"] for f in client.get("/custom_metadata").json()["fields"]] == ["lab"]
            assert names(client) == ["kept"]

