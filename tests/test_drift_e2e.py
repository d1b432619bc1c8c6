"""`drift` against the emulator over HTTP: a change someone makes in Code Ocean is drift
(per field, in text, JSON and Markdown, exit 2); an edit to the manifest is not;
`apply --refresh-only` takes the live values into the state and changes nothing remote."""
from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from conftest import Infra, api_calls

from reconciler.emulator.core import SANDBOX

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def work(tmp_path, sandbox_env):
    return Infra.example(tmp_path, "codeocean.yaml")


def someone_edits_in_code_ocean(emulator, admin, name: str, **fields) -> str:
    asset = next(d for d in admin.get("/_emulator/docs/co_asset").json()["items"] if d["name"] == name)
    with httpx.Client(base_url=emulator.url, auth=(SANDBOX["codeocean_token"], "")) as co:
        current = co.get(f"/api/v1/data_assets/{asset['id']}").json()
        body = {k: current.get(k) for k in ("name", "description", "mount", "tags", "custom_metadata")}
        co.put(f"/api/v1/data_assets/{asset['id']}", json={**body, **fields}).raise_for_status()
    return asset["id"]


def test_drift_is_what_moved_outside_not_the_manifest(work, emulator, admin):
    assert work.apply()[0] == 0
    assert work._run("drift")[0] == 0
    work.edit("description: Tabular training and test splits", "description: Edited in the manifest")
    code, out = work._run("drift")
    assert code == 0 and "No drift" in out  # a pending change, not drift
    assert work.plan("--detailed-exitcode")[0] == 2

    asset_id = someone_edits_in_code_ocean(emulator, admin, "Baseline results",
                                           description="edited in the console", tags=["results", "oops"])
    code, text = work._run("drift")
    assert code == 2
    assert f'codeocean.data_asset.baseline-results [id={asset_id}, name="Baseline results"]' in text
    assert '~ tags: 1 added\n          + "oops"' in text
    assert "training-data" not in text  # its manifest edit is not drift
    code, doc = work._run("drift", "--format", "json")
    (moved,) = json.loads(doc)["drift"]
    assert moved["remote"] == {"id": asset_id, "name": "Baseline results"}
    assert [i["after"] for c in moved["changes"] for i in c["items"]] == ["oops"]
    code, md = work._run("drift", "--format", "markdown")
    assert code == 2 and "changed outside reconciler" in md and "oops" in md

    admin.delete("/_emulator/requests")
    code, out = work._run("apply", "--refresh-only", "--auto-approve")
    assert code == 0 and "Recorded the live values of 1 resource" in out
    assert not [k for k in api_calls(admin) if not k.startswith(("GET", "POST /api/v1/data_assets/search"))]
    assert sorted(work.state()["resources"]["codeocean.data_asset.baseline-results"]["last_applied"]["tags"]) == \
        ["oops", "results"]
    assert work._run("drift")[0] == 0


def test_a_normal_plan_says_what_changed_outside_above_its_actions(work, emulator, admin):
    assert work.apply()[0] == 0
    someone_edits_in_code_ocean(emulator, admin, "Baseline results", tags=["results", "oops"])
    code, out = work.plan("--detailed-exitcode")
    assert code == 2, out
    note = out.index("Objects have changed outside reconciler since the last apply")
    assert note < out.index("Reconciler will perform these actions")
    assert '+ "oops"' in out[note:out.index("Reconciler will perform")]
