"""`reconciler import ADDR REMOTE_ID` and `imports:` entries: an object made outside reconciler (in a web
console) is taken under management; the next plan shows only how it differs."""
from __future__ import annotations

import json

import httpx
import pytest
from conftest import Infra, api_calls, cli

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


# -- imports: in manifests (a declarative import, reviewed like any change) ------------------
IMPORTS = MANIFEST.replace("{", "{{").replace("}", "}}") + 'imports:\n  - {{to: codeocean.data_asset.data, id: "{id}"}}\n'


def _writes(admin) -> list[str]:
    return [k for k in api_calls(admin) if not k.startswith(("GET", "POST /api/v1/data_assets/search"))]


def test_an_import_plans_the_take_over_and_the_difference_then_nothing(tmp_path, sandbox_env, made_in_console, admin):
    (tmp_path / "m.yaml").write_text(IMPORTS.format(id=made_in_console))
    infra = Infra(tmp_path, "m.yaml")
    code, out = infra.plan("--detailed-exitcode")
    assert code == 2, out
    assert "# codeocean.data_asset.data will be imported" in out and f"id={made_in_console}" in out, out
    assert 'live: name = "Console data", tags = ["imported"]' in out, out  # what is taken over
    assert '+ "reviewed"' in out  # the difference from the spec, as an update
    assert "Plan: 0 to add, 0 to change, 0 to destroy, 1 to import." in out, out
    made = api_calls(admin).get("POST /api/v1/data_assets", 0)  # the console's
    code, out = infra.apply()
    assert code == 0, out
    assert api_calls(admin).get("POST /api/v1/data_assets", 0) == made  # no create call
    assert infra.state()["resources"]["codeocean.data_asset.data"]["id"] == made_in_console
    code, out = infra.plan("--detailed-exitcode")  # the entry stays in the manifest: a no-op now
    assert code == 0 and "No changes" in out, out


@pytest.mark.parametrize("remote", ["00000000-0000-0000-0000-000000000000", "ssh-key"])
def test_an_id_that_does_not_exist_or_is_of_another_kind_is_a_plan_time_error(tmp_path, sandbox_env, emulator,
                                                                              remote, admin):
    if remote == "ssh-key":
        with httpx.Client(base_url=emulator.url) as c:
            token = c.post("/account/login", json={"email": SANDBOX["valdi_email"],
                                                   "password": SANDBOX["valdi_password"]}).json()["access_token"]
            remote = c.post("/sshkeys", headers={"Authorization": f"Bearer {token}"},
                            json={"name": "k", "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO1 x"}).json()
            remote = remote.get("id") or remote.get("ssh_key", {}).get("id")
    (tmp_path / "m.yaml").write_text(IMPORTS.format(id=remote))
    before = _writes(admin)
    code, out = Infra(tmp_path, "m.yaml").plan()
    assert code == 1 and f"m.yaml:9:" in out and f"no codeocean.data_asset with id {remote}" in out, out
    assert _writes(admin) == before


def test_an_import_into_an_undeclared_address_is_an_error_at_load(tmp_path, sandbox_env):
    (tmp_path / "m.yaml").write_text(IMPORTS.format(id="x").replace("to: codeocean.data_asset.data",
                                                                     "to: codeocean.data_asset.other"))
    code, out = Infra(tmp_path, "m.yaml").plan()
    assert code == 1 and "m.yaml:9:" in out and "codeocean.data_asset.other is not declared" in out, out


def test_an_import_into_a_for_each_instance(tmp_path, sandbox_env):
    """A datum adopted by another state is imported as one instance of a for_each block."""
    other = tmp_path / "other"
    other.mkdir()
    (other / "m.yaml").write_text("resources:\n  - kind: valohai.datum\n    name: d\n    spec: {store: sandbox-store, "
                                  "url: s3://sandbox-bucket/shards/p0.csv}\n")
    assert cli("--state", str(other / "state.json"), "apply", str(other), "--auto-approve")[0] == 0
    datum_id = json.loads((other / "state.json").read_text())["resources"]["valohai.datum.d"]["id"]
    (tmp_path / "m.yaml").write_text(f"""\
resources:
  - kind: valohai.datum
    name: part
    for_each: [p0, p1]
    spec: {{store: sandbox-store, url: "s3://sandbox-bucket/shards/${{each.key}}.csv"}}
imports:
  - {{to: 'valohai.datum.part[p0]', id: {datum_id}}}
""")
    code, out = Infra(tmp_path, "m.yaml").plan()
    assert code == 0 and "# valohai.datum.part[p0] will be imported" in out, out
    assert "Plan: 1 to add, 0 to change, 0 to destroy, 1 to import." in out, out


def test_an_import_id_that_is_no_datum_is_an_error_even_when_the_url_names_one(tmp_path, sandbox_env, admin):
    """The datum kind also finds a datum by its URL: an import entry naming an id that is
    no datum (a typo, another kind's id) must not take over the URL's datum in its place."""
    other = tmp_path / "other"
    other.mkdir()
    (other / "m.yaml").write_text("resources:\n  - kind: valohai.datum\n    name: d\n    spec: {store: sandbox-store, "
                                  "url: s3://sandbox-bucket/shards/p0.csv}\n")
    assert cli("--state", str(other / "state.json"), "apply", str(other), "--auto-approve")[0] == 0
    wrong = "00000000-0000-0000-0000-000000000000"
    (tmp_path / "m.yaml").write_text(f"""\
resources:
  - kind: valohai.datum
    name: part
    spec: {{store: sandbox-store, url: "s3://sandbox-bucket/shards/p0.csv"}}
imports:
  - {{to: valohai.datum.part, id: "{wrong}"}}
""")
    before = _writes(admin)
    infra = Infra(tmp_path, "m.yaml")
    code, out = infra.plan()
    assert code == 1 and f"no valohai.datum with id {wrong}" in out, out
    code, out = infra.apply()
    assert code == 1 and _writes(admin) == before, out
    assert not (tmp_path / "state.json").exists() or not infra.state().get("resources"), out
    code, out = cli("--state", str(tmp_path / "state.json"), "import", "valohai.datum.part", wrong, str(tmp_path))
    assert code == 1 and f"no valohai.datum with id {wrong}" in out, out
    assert _writes(admin) == before
    assert not (tmp_path / "state.json").exists() or not infra.state().get("resources"), out
