"""A plan over some of a folder's manifest files never destroys what the other files
declare: the state remembers each resource's declaring file."""
from __future__ import annotations

import json

import pytest
from conftest import cli
from crash_harness import copy_example


@pytest.fixture
def folder(tmp_path, sandbox_env):
    d = tmp_path / "m"
    d.mkdir()
    for name in ("valdi.yaml", "valohai.yaml", "codeocean.yaml"):
        copy_example(name, d)
    state = str(tmp_path / "state.json")
    code, out = cli("--state", state, "apply", str(d), "--auto-approve")
    assert code == 0, out
    return d, state


def test_the_state_records_the_declaring_file_of_each_resource(folder):
    d, state = folder
    doc = json.loads(open(state).read())
    files = {a: r.get("file") for a, r in doc["resources"].items()}
    assert files["valdi.vm.trainer"] == "valdi.yaml"
    assert {f for a, f in files.items() if a.startswith("valohai.")} == {"valohai.yaml"}


def test_planning_one_file_leaves_the_other_files_resources_alone(folder):
    d, state = folder
    code, out = cli("--state", state, "plan", str(d / "valdi.yaml"), "--detailed-exitcode")
    assert code == 0, out  # no change: nothing of codeocean.yaml or valohai.yaml is destroyed
    assert "will be deleted" not in out and "destroy" not in out.lower().split("left out")[0]
    assert "left out" in out and "codeocean.yaml" in out and "valohai.yaml" in out, out
    code, out = cli("--state", state, "apply", str(d / "valohai.yaml"), "--auto-approve")
    assert code == 0, out
    code, out = cli("--state", state, "plan", str(d), "--detailed-exitcode")
    assert code == 0, out  # everything still there, the other files' outputs too
    assert json.loads(open(state).read())["outputs"]["trainer_ip"]["value"]  # valdi.yaml's output kept


def test_a_deleted_manifest_file_destroys_what_it_declared(folder):
    d, state = folder
    (d / "valohai.yaml").unlink()
    code, out = cli("--state", state, "plan", str(d))
    assert "valohai.datum.train-set" in out and "left out" not in out, out


def test_entries_from_an_older_state_without_files_are_left_out_of_a_partial_plan(folder):
    d, state = folder
    doc = json.loads(open(state).read())
    for r in doc["resources"].values():
        r.pop("file", None)
    open(state, "w").write(json.dumps(doc))
    code, out = cli("--state", state, "plan", str(d / "codeocean.yaml"), "--detailed-exitcode")
    assert code == 0, out
    assert "file not recorded" in out, out
