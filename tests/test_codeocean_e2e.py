"""examples/codeocean.yaml through the CLI against the emulator: apply, no changes, retag,
archive, permissions, a source change that replaces the asset and what combines it,
destroy in dependency order, a failing source, custom metadata checked before any write,
and the official `codeocean` SDK reading back what apply made."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import Infra, api_calls

from reconciler.emulator.core import SANDBOX

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def work(tmp_path, sandbox_env):
    return Infra.example(tmp_path, "codeocean.yaml")


def assets(admin) -> dict[str, dict]:
    return {d["name"]: d for d in admin.get("/_emulator/docs/co_asset").json()["items"]}


def sdk(emulator):
    from codeocean import CodeOcean
    return CodeOcean(domain=emulator.url, token=SANDBOX["codeocean_token"])


def test_apply_then_no_changes_and_the_sdk_reads_it_back(work, emulator, admin):
    code, out = work.apply()
    assert code == 0, out
    code, out = work.plan("--detailed-exitcode")
    assert code == 0 and "No changes" in out, out
    made = assets(admin)
    assert set(made) == {"Training data", "Baseline results", "Training bundle"}
    client = sdk(emulator)
    data = client.data_assets.get_data_asset(made["Training data"]["id"])
    assert data.state.value == "ready" and data.mount == "training-data"
    assert sorted(data.tags) == ["tabular", "training"]
    assert data.custom_metadata == {"modality": "genomics", "subjects": 120, "lab": "vision"}
    assert data.source_bucket.bucket == "sandbox-bucket" and data.source_bucket.prefix == "data/"
    assert data.files == 2
    bundle = client.data_assets.get_data_asset(made["Training bundle"]["id"])
    assert bundle.type.value == "combined"
    assert {c.id for c in bundle.contained_data_assets} == {made["Training data"]["id"],
                                                            made["Baseline results"]["id"]}
    perms = client.data_assets.get_permissions(made["Training data"]["id"])
    assert {(u.email, u.role.value) for u in perms.users} >= {("reviewer@codeocean.example", "viewer")}
    assert any(u.role.value == "owner" for u in perms.users)  # we never drop the owner


def test_retag_archive_and_permissions_change_in_place(work, admin):
    assert work.apply()[0] == 0
    ids = {n: d["id"] for n, d in assets(admin).items()}
    admin.delete("/_emulator/requests")
    work.edit("tags: [training, tabular]", "tags: [training, tabular, v2]")
    code, out = work.plan("--detailed-exitcode")
    assert code == 2 and "1 to change" in out and "v2" in out, out
    assert work.apply()[0] == 0
    calls = api_calls(admin)
    assert calls.get("PUT /api/v1/data_assets/{id}") == 1
    assert not any(k.startswith(("POST /api/v1/data_assets ", "DELETE")) for k in calls)

    admin.delete("/_emulator/requests")
    work.edit("tags: [results]", "tags: [results]\n      archived: true")
    work.edit("everyone: none", "everyone: viewer")
    assert work.apply()[0] == 0
    calls = api_calls(admin)
    assert calls.get("PATCH /api/v1/data_assets/{id}/archive") == 1
    assert calls.get("POST /api/v1/data_assets/{id}/permissions") == 1
    after = assets(admin)
    assert after["Baseline results"]["archived"] is True
    assert after["Training data"]["permissions"]["everyone"] == "viewer"
    assert {n: d["id"] for n, d in after.items()} == ids  # nothing was replaced
    assert work.plan("--detailed-exitcode")[0] == 0  # archived assets are still found


def test_a_source_change_replaces_the_asset_and_what_combines_it(work, admin):
    assert work.apply()[0] == 0
    before = {n: d["id"] for n, d in assets(admin).items()}
    work.edit("prefix: data/", "prefix: models/")
    code, out = work.plan()
    assert "-/+ codeocean.data_asset.training-data" in out and "-/+ codeocean.data_asset.training-bundle" in out
    assert "forces replacement" in out
    code, out = work.apply()
    assert code == 0, out
    after = {n: d["id"] for n, d in assets(admin).items()}
    assert len(after) == 3  # no leftovers, no duplicates
    assert after["Training data"] != before["Training data"]
    assert after["Training bundle"] != before["Training bundle"]
    assert after["Baseline results"] == before["Baseline results"]
    assert assets(admin)["Training data"]["source_bucket"]["prefix"] == "models/"
    assert work.plan("--detailed-exitcode")[0] == 0


def test_destroy_removes_the_combined_asset_first(work, admin):
    assert work.apply()[0] == 0
    ids = {d["id"]: n for n, d in assets(admin).items()}
    admin.delete("/_emulator/requests")
    code, out = work.destroy()
    assert code == 0, out
    log = admin.get("/_emulator/requests", params={"full": "1"}).json()["log"]
    deleted = [ids[e["path"].rsplit("/", 1)[1]] for e in log if e["method"] == "DELETE"]
    assert deleted[0] == "Training bundle" and sorted(deleted) == sorted(ids.values())
    assert assets(admin) == {}


def test_a_source_without_objects_fails_clearly_and_a_fixed_manifest_converges(work, admin):
    work.edit("prefix: data/", "prefix: no-such-folder/")
    code, out = work.apply()
    assert code == 1
    assert "codeocean.data_asset.training-data" in out
    assert "Training data failed: no objects found in s3://sandbox-bucket/no-such-folder" in out
    assert "Training data" not in assets(admin)  # the failed asset is not left behind
    work.edit("prefix: no-such-folder/", "prefix: data/")
    code, out = work.apply()
    assert code == 0, out
    assert work.plan("--detailed-exitcode")[0] == 0
    assert len(assets(admin)) == 3


@pytest.mark.parametrize("good, bad, message", [
    ("lab: vision", "colour: blue", "unknown custom metadata field 'colour'"),
    ("modality: genomics", "modality: X-ray",
     "'X-ray' is not an allowed value of modality (allowed: MRI, CT, EEG, genomics)"),
    ("subjects: 120", "subjects: many", "subjects must be a number"),
    ("subjects: 120", "subjects: 200000", "subjects must be at most 100000"),
])
def test_custom_metadata_is_checked_before_any_write(work, admin, good, bad, message):
    work.edit(good, bad)
    code, out = work.plan()
    assert code == 1 and message in out, out
    assert re.search(r"codeocean\.yaml:\d+", out)
    code, out = work.apply()  # apply checks too, before it writes anything
    assert code == 1 and message in out, out
    assert not any(k.startswith("POST /api/v1/data_assets") and "search" not in k for k in api_calls(admin))


def test_a_plan_reads_assets_in_two_searches_not_one_get_each(work, admin):
    assert work.apply()[0] == 0
    admin.delete("/_emulator/requests")
    assert work.plan()[0] == 0
    calls = api_calls(admin)
    assert calls.get("POST /api/v1/data_assets/search") == 2  # live and archived
    assert "GET /api/v1/data_assets/{id}" not in calls
    assert calls.get("GET /api/v1/data_assets/{id}/permissions") == 1  # only the asset that sets them


def test_a_gcp_source_with_a_client_secret_never_shows_it(work, admin, monkeypatch):
    monkeypatch.setenv("GCP_SECRET", "gcp-secret-7Hq2Lx9")
    monkeypatch.setenv("RECONCILER_STATE_KEY", "state key for the test")
    with work.manifest.open("a") as f:
        f.write("""
  - kind: codeocean.data_asset
    name: from-gcs
    spec:
      name: From GCS
      tags: [gcs]
      source:
        gcp: {bucket: sandbox-bucket, prefix: models, client_id: reader@example, client_secret: "${env.GCP_SECRET}"}
""")
    outputs = [work.plan(), work.apply(), work.plan("--detailed-exitcode"), work.plan("--format", "markdown")]
    assert outputs[1][0] == 0, outputs[1][1]
    assert outputs[2][0] == 0  # the secret round-trips through the sealed state: no phantom change
    text = "\n".join(out for _, out in outputs) + (work.path / "state.json").read_text()
    assert "gcp-secret-7Hq2Lx9" not in text
    asset = assets(admin)["From GCS"]
    assert asset["source_bucket"]["origin"] == "gcp" and asset["state"] == "ready" and asset["files"] == 1
