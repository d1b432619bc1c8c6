"""kill -9 of an apply that carries out a `moved:` rename (with an update), an `imports:`
take-over (with an update) and a create, at every mutating request it makes; a second
apply converges: the moved object keeps its id, the imported one is the console's, none
is made twice or lost, and a plan after it shows no changes (tests/crash_harness.py)."""
from __future__ import annotations

import json
import os

import httpx
import pytest
from conftest import cli
from crash_harness import duplicates, kill_at, mutating_requests

from reconciler.emulator.core import SANDBOX

BEFORE = """\
resources:
  - kind: codeocean.data_asset
    name: old
    spec: {name: Kept data, tags: [v1], source: {aws: {bucket: sandbox-bucket, prefix: models/}}}
"""

AFTER = """\
resources:
  - kind: codeocean.data_asset
    name: renamed
    spec: {name: Kept data, tags: [v2], source: {aws: {bucket: sandbox-bucket, prefix: models/}}}
  - kind: codeocean.data_asset
    name: data
    spec: {name: Console data, tags: [imported, reviewed], source: {aws: {bucket: sandbox-bucket, prefix: data/}}}
  - kind: codeocean.data_asset
    name: fresh
    spec: {name: Fresh data, tags: [new], source: {aws: {bucket: sandbox-bucket, prefix: data/}}}
moved:
  - {from: codeocean.data_asset.old, to: codeocean.data_asset.renamed}
imports:
  - {to: codeocean.data_asset.data, id: "ID"}
"""


def prepare(work, emulator) -> tuple[str, str]:
    """The first apply, and an asset made in the console: (the kept asset's id, the console's)."""
    work.mkdir()
    (work / "m.yaml").write_text(BEFORE)
    state = work / "state.json"
    code, out = cli("--state", str(state), "apply", str(work), "--auto-approve")
    assert code == 0, out
    kept = json.loads(state.read_text())["resources"]["codeocean.data_asset.old"]["id"]
    with httpx.Client(base_url=f"{emulator.url}/api/v1", auth=(SANDBOX["codeocean_token"], "")) as co:
        console = co.post("/data_assets", json={
            "name": "Console data", "mount": "Console data", "tags": ["imported"],
            "source": {"aws": {"bucket": "sandbox-bucket", "prefix": "data/", "keep_on_external_storage": False,
                               "public": False}}}).json()["id"]
    (work / "m.yaml").write_text(AFTER.replace("ID", console))
    return kept, console


def live_assets(admin) -> list[dict]:
    return [d for d in admin.get("/_emulator/docs/co_asset").json()["items"] if not d.get("deleted")]


@pytest.mark.parametrize("mode", ["stall_after", "stall"])  # killed after / before the API acted
def test_kill_9_during_moves_and_imports_converges(mode, tmp_path, sandbox_env, emulator, admin):
    env = {**os.environ, **sandbox_env}
    kept, console = prepare(tmp_path / "clean", emulator)
    before = len(mutating_requests(admin))
    code, out = cli("--state", str(tmp_path / "clean" / "state.json"), "apply", str(tmp_path / "clean"),
                    "--auto-approve")
    assert code == 0 and "moved" in out and "imported" in out, out
    points = len(mutating_requests(admin)) - before
    assert points >= 3, mutating_requests(admin)[before:]  # the moved one's update, the import's, the create
    killed = 0
    for point in range(points):
        admin.post("/_emulator/reset")
        work = tmp_path / f"kill{point}"
        kept, console = prepare(work, emulator)
        killed_at, state = kill_at(point, work, work, admin, env, mode=mode)
        killed += killed_at is not None
        code, out = cli("--state", str(state), "apply", str(work), "--auto-approve")
        assert code == 0, (point, killed_at, out)
        code, out = cli("--state", str(state), "plan", str(work), "--detailed-exitcode")
        assert code == 0 and "No changes" in out, (point, killed_at, out)
        resources = json.loads(state.read_text())["resources"]
        assert sorted(resources) == ["codeocean.data_asset.data", "codeocean.data_asset.fresh",
                                     "codeocean.data_asset.renamed"], (point, killed_at)
        assert resources["codeocean.data_asset.renamed"]["id"] == kept, (point, killed_at)
        assert resources["codeocean.data_asset.data"]["id"] == console, (point, killed_at)
        assert duplicates(admin) == 0 and len(live_assets(admin)) == 3, (point, killed_at, live_assets(admin))
    print(f"\n{mode}: {points} kill points, {killed} killed")
    assert killed >= points - 1
