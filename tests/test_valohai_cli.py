"""Issue 5 end to end: `reconciler plan|apply` with examples/valohai.yaml against the
emulator, the official `vh` CLI reading the result, and the request counts of a
1,000-datum apply and of the no-op plan after it."""
from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from conftest import api_calls
from test_valohai_emulator import run_vh

from reconciler.cli import main
from reconciler.emulator.core import SANDBOX

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "valohai.yaml"
PROJECT, BUCKET = SANDBOX["valohai_project_id"], SANDBOX["valohai_bucket"]


@pytest.fixture
def vh(emulator):
    with httpx.Client(base_url=emulator.url, headers={"Authorization": f"Token {SANDBOX['valohai_token']}"}) as c:
        yield c


@pytest.fixture
def workdir(tmp_path, sandbox_env):
    d = tmp_path / "manifests"
    d.mkdir()
    shutil.copy(EXAMPLE, d / "valohai.yaml")
    return d


def run(workdir: Path, *args: str) -> tuple[int, str]:
    state = workdir.parent / "state.json"
    result = CliRunner().invoke(main, ["--no-color", "--state", str(state), *args, str(workdir)],
                                catch_exceptions=False)
    return result.exit_code, result.output


def datum_by_uri(vh, key: str) -> dict:
    items = vh.get("/api/v0/data/", params={"project": PROJECT, "limit": 5000}).json()["results"]
    return next(d for d in items if d["uri"] == f"s3://{BUCKET}/{key}")


def edit(workdir: Path, old: str, new: str) -> None:
    path = workdir / "valohai.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_example_adopt_no_changes_one_update_outside_property_survives_release(workdir, vh, admin,
                                                                             emulator, tmp_path):
    code, out = run(workdir, "apply", "--auto-approve")
    assert code == 0, out
    train = datum_by_uri(vh, "data/train.csv")
    assert train["metadata"] == {"owner": "ml-team", "rows": 4, "split": {"train": 0.8, "validation": 0.2}}
    assert train["tags"] == ["training", "v1"]
    model = datum_by_uri(vh, "models/model.pkl")
    assert model["metadata"]["trained_on"] == train["id"]  # a reference to another datum's id
    aliases = {a["name"]: a["datum"]["id"] for a in vh.get("/api/v0/datum-aliases/").json()["results"]}
    assert aliases == {"train-latest": train["id"], "model-candidate": model["id"]}

    code, out = run(workdir, "plan", "--detailed-exitcode")
    assert code == 0 and "No changes" in out

    # someone sets a property outside the manifest: not drift, and it survives our apply
    vh.post(f"/api/v0/data/{train['id']}/metadata/", json={"reviewed_by": "qa"}).raise_for_status()
    code, out = run(workdir, "plan", "--detailed-exitcode")
    assert code == 0 and "reviewed_by" not in out

    edit(workdir, "rows: 4", "rows: 5")
    code, out = run(workdir, "plan", "--detailed-exitcode")
    assert code == 2 and "Plan: 0 to add, 1 to change, 0 to destroy." in out and "properties.rows" in out
    admin.delete("/_emulator/requests")
    code, out = run(workdir, "apply", "--auto-approve")
    assert code == 0, out
    writes = {k: v for k, v in api_calls(admin).items() if k.startswith("POST")}
    assert writes == {"POST /api/v0/data/metadata/apply/": 1}
    assert vh.get(f"/api/v0/data/{train['id']}/").json()["metadata"]["rows"] == 5
    assert vh.get(f"/api/v0/data/{train['id']}/").json()["metadata"]["reviewed_by"] == "qa"

    # `vh data list` (valohai-cli, unchanged) shows the adopted datums
    listed = run_vh(emulator, tmp_path, "data", "list")
    assert all(name in listed for name in ("train.csv", "test.csv", "model.pkl"))

    # the resource leaves the manifest: released, not deleted
    text = (workdir / "valohai.yaml").read_text()
    start = text.index("  - kind: valohai.datum\n    name: train-set")
    end = text.index("  - kind: valohai.datum\n    name: test-set")
    (workdir / "valohai.yaml").write_text(text[:start] + text[end:].replace(
        '"${valohai.datum.train-set.id}"', "unknown"))
    code, out = run(workdir, "plan", "--detailed-exitcode")
    assert code == 2 and "released" in out and "train-set" in out
    code, out = run(workdir, "apply", "--auto-approve")
    assert code == 0, out
    after = vh.get(f"/api/v0/data/{train['id']}/").json()
    assert after["metadata"] == {"reviewed_by": "qa"} and after["tags"] == [] and not after["purged"]
    assert "train-latest" not in {a["name"] for a in vh.get("/api/v0/datum-aliases/").json()["results"]
                                  if a["datum"]}
    code, out = run(workdir, "plan", "--detailed-exitcode")
    assert code == 0, out


def test_a_datum_valohai_already_tracks_is_adopted_existing(workdir, vh):
    url = f"s3://{BUCKET}/data/test.csv"
    existing = vh.post(f"/api/v0/stores/{SANDBOX['valohai_store_id']}/adopt/",
                       json={"url": url, "project": PROJECT}).json()["created"][url]
    code, out = run(workdir, "plan")
    assert "adopt" in out and "valohai.datum.test-set" in out
    code, out = run(workdir, "apply", "--auto-approve")
    assert code == 0, out
    assert datum_by_uri(vh, "data/test.csv")["id"] == existing
    assert vh.get("/api/v0/data/", params={"project": PROJECT}).json()["count"] == 3


def test_deletion_policy_delete_purges(workdir, vh):
    edit(workdir, "deletion_policy: release", "deletion_policy: delete")
    assert run(workdir, "apply", "--auto-approve")[0] == 0
    model = datum_by_uri(vh, "models/model.pkl")
    code, out = run(workdir, "destroy", "--auto-approve")
    assert code == 0, out
    assert vh.get(f"/api/v0/data/{model['id']}/").json()["purged"] is True
    assert datum_by_uri(vh, "data/train.csv")["purged"] is False  # released only


def test_a_file_missing_from_the_store_fails_with_url_and_store(workdir):
    edit(workdir, "models/model.pkl", "models/missing.pkl")
    code, out = run(workdir, "apply", "--auto-approve")
    assert code == 1
    assert "s3://sandbox-bucket/models/missing.pkl" in out and "sandbox-store" in out


def test_properties_on_an_execution_output(workdir, vh, admin):
    admin.post("/_emulator/valohai/executions", json={"outputs": [
        {"name": "model.h5", "content": "w", "alias": "best", "properties": {"acc": 0.91}}]})
    (workdir / "valohai.yaml").unlink()
    (workdir / "outputs.yaml").write_text(textwrap.dedent("""\
        providers:
          valohai: {token: "${env.VALOHAI_TOKEN}", project: "${env.VALOHAI_PROJECT}"}
        resources:
          - kind: valohai.datum_properties
            name: best-model
            spec: {datum: "datum://best", properties: {approved: true}, tags: [prod]}
        """))
    assert run(workdir, "apply", "--auto-approve")[0] == 0
    best = vh.get("/api/v0/datum-aliases/resolve/", params={"name": "best", "project": PROJECT}).json()["datum"]
    assert best["metadata"] == {"acc": 0.91, "approved": True} and best["tags"] == ["prod"]
    assert run(workdir, "plan", "--detailed-exitcode")[0] == 0
    assert run(workdir, "destroy", "--auto-approve")[0] == 0
    best = vh.get(f"/api/v0/data/{best['id']}/").json()
    assert best["metadata"] == {"acc": 0.91} and best["tags"] == []


def test_1000_datums_adopt_and_tag_then_a_no_op_plan_reads_listings(tmp_path, sandbox_env, emulator, admin):
    n = 1000
    admin.post("/_emulator/config", json={"quirks": ["valohai-adopt-bulk"]}).raise_for_status()
    store = emulator.emulator.store
    for i in range(n):  # seed S3 in-process: 1,000 admin PUTs would only time the loopback
        store.put_blob(f"{BUCKET}/bulk/{i:04}.csv", f"row,{i}\n".encode())
    d = tmp_path / "bulk"
    d.mkdir()
    lines = ["providers:", '  valohai: {token: "${env.VALOHAI_TOKEN}", project: "${env.VALOHAI_PROJECT}"}',
             "resources:"]
    for i in range(n):
        lines.append(f"  - {{kind: valohai.datum, name: f{i:04}, spec: {{store: sandbox-store, "
                     f"url: 's3://{BUCKET}/bulk/{i:04}.csv', tags: [bulk, v1]}}}}")
    (d / "bulk.yaml").write_text("\n".join(lines) + "\n")

    admin.delete("/_emulator/requests")
    code, out = run(d, "apply", "--auto-approve")
    assert code == 0, out[-2000:]
    apply_calls = api_calls(admin)
    print(f"\napply of {n} datums: {sum(apply_calls.values())} API calls: {apply_calls}")

    admin.delete("/_emulator/requests")
    code, out = run(d, "plan", "--detailed-exitcode")
    assert code == 0 and "No changes" in out
    plan_calls = api_calls(admin)
    print(f"no-op plan over {n} datums: {sum(plan_calls.values())} API calls: {plan_calls}")

    assert apply_calls["POST /api/v0/stores/{id}/adopt/"] == 2  # 500 URLs per bulk adopt
    assert apply_calls["POST /api/v0/data/metadata/apply-all/"] == 1  # identical tags: one call
    assert sum(apply_calls.values()) <= 10
    assert not any("{id}" in k and k.startswith("GET") for k in plan_calls)  # no GET per datum
    assert plan_calls["GET /api/v0/data/"] <= 2 and sum(plan_calls.values()) <= 5
    tagged = httpx.get(f"{emulator.url}/api/v0/data/", params={"project": PROJECT, "tag": "bulk", "limit": 1},
                       headers={"Authorization": f"Token {SANDBOX['valohai_token']}"}).json()["count"]
    assert tagged == n
