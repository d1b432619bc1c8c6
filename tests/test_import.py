"""`reconciler import ADDR REMOTE_ID`: an object made outside reconciler (in a web
console) is taken under management; the next plan shows only how it differs."""
from __future__ import annotations

import json

import httpx
import pytest
from conftest import Infra, cli

from reconciler.emulator.core import SANDBOX

MANIFEST = """\
resources:
  - kind: codeocean.data_asset
    name: data
    spec:
      name: Console data
      tags: [imported, reviewed]
      source: {aws: {bucket: sandbox-bucket, prefix: data/}}
"""


@pytest.fixture
def infra(tmp_path, sandbox_env):
    (tmp_path / "m.yaml").write_text(MANIFEST)
    return Infra(tmp_path, "m.yaml")


@pytest.fixture
def made_in_console(emulator):
    with httpx.Client(base_url=f"{emulator.url}/api/v1", auth=(SANDBOX["codeocean_token"], "")) as co:
        return co.post("/data_assets", json={"name": "Console data", "mount": "Console data", "tags": ["imported"],
                                             "source": {"aws": {"bucket": "sandbox-bucket", "prefix": "data/",
                                                                "keep_on_external_storage": False, "public": False}}}
                       ).json()["id"]


def test_import_then_plan_shows_only_the_difference(infra, made_in_console, admin):
    code, out = cli("--state", str(infra.path / "state.json"), "import", "codeocean.data_asset.data",
                    made_in_console, str(infra.path))
    assert code == 0 and f"Imported {made_in_console}" in out, out
    code, out = infra.plan("--detailed-exitcode")
    assert code == 2 and "~ codeocean.data_asset.data" in out and "reviewed" in out, out
    assert "Plan: 0 to add, 1 to change, 0 to destroy." in out  # an update, not a second asset
    assert infra.apply()[0] == 0
    assert infra.plan("--detailed-exitcode")[0] == 0
    assert len(admin.get("/_emulator/docs/co_asset").json()["items"]) == 1
    assert infra.state()["resources"]["codeocean.data_asset.data"]["adopted"] is True


@pytest.mark.parametrize("address, remote, message", [
    ("codeocean.data_asset.other", None, "is not declared in the manifests"),
    ("codeocean.data_asset.data", "00000000-0000-0000-0000-000000000000", "no codeocean.data_asset with id"),
])
def test_import_refuses_what_it_cannot_do(infra, made_in_console, address, remote, message):
    code, out = cli("--state", str(infra.path / "state.json"), "import", address, remote or made_in_console,
                    str(infra.path))
    assert code == 1 and message in out, out


def test_import_refuses_an_address_already_managed(infra, made_in_console):
    state = str(infra.path / "state.json")
    assert cli("--state", state, "import", "codeocean.data_asset.data", made_in_console, str(infra.path))[0] == 0
    code, out = cli("--state", state, "import", "codeocean.data_asset.data", made_in_console, str(infra.path))
    assert code == 1 and "already managed" in out


@pytest.mark.parametrize("address, example", [
    ("valdi.vm.trainer", "valdi.yaml"),
    ("valdi.ssh_key.deploy", "valdi.yaml"),
    ("valdi.ssh_key.ci", "valdi.yaml"),
    ("valdi.volume.datasets", "valdi.yaml"),
    ("codeocean.data_asset.training-data", "codeocean.yaml"),
])
def test_a_create_whose_natural_key_is_taken_is_a_plan_time_conflict_offering_import(address, example, tmp_path,
                                                                                     sandbox_env, admin):
    """After `state rm`, the object is still there: the next plan names it and offers
    `reconciler import`, and apply makes no second object of the same name."""
    from conftest import cli
    from crash_harness import copy_example, duplicates
    d = tmp_path / "m"
    d.mkdir()
    copy_example(example, d)
    state = str(tmp_path / "state.json")
    code, out = cli("--state", state, "apply", str(d), "--auto-approve")
    assert code == 0, out
    if address == "valdi.vm.trainer":
        assert cli("--state", state, "state", "unprotect", address, str(d))[0] == 0
    remote_id = json.loads(open(state).read())["resources"][address]["id"]
    assert cli("--state", state, "state", "rm", address, str(d))[0] == 0
    code, out = cli("--state", state, "plan", str(d))
    command = f"reconciler --state {state} import {address} {remote_id} {d}"  # runnable as printed
    assert code == 1 and command in out, out
    code, out = cli("--state", state, "apply", str(d), "--auto-approve")
    assert code == 1 and duplicates(admin) == 0, out
    code, out = cli(*command.split()[1:])
    assert code == 0, out
    code, out = cli("--state", state, "plan", str(d), "--detailed-exitcode")
    assert code == 0, out
