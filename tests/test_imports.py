"""`imports:` in manifests: a declarative `reconciler import`, reviewed like any change."""
from __future__ import annotations

import httpx
import pytest
from conftest import Infra, api_calls

from reconciler.emulator.core import SANDBOX

MANIFEST = """\
resources:
  - kind: codeocean.data_asset
    name: data
    spec:
      name: Console data
      tags: [imported, reviewed]
      source: {{aws: {{bucket: sandbox-bucket, prefix: data/}}}}
imports:
  - {{to: codeocean.data_asset.data, id: "{id}"}}
"""


@pytest.fixture
def made_in_console(emulator):
    with httpx.Client(base_url=f"{emulator.url}/api/v1", auth=(SANDBOX["codeocean_token"], "")) as co:
        return co.post("/data_assets", json={"name": "Console data", "mount": "Console data", "tags": ["imported"],
                                             "source": {"aws": {"bucket": "sandbox-bucket", "prefix": "data/",
                                                                "keep_on_external_storage": False, "public": False}}}
                       ).json()["id"]


def _writes(admin) -> list[str]:
    return [k for k in api_calls(admin) if not k.startswith(("GET", "POST /api/v1/data_assets/search"))]


def test_an_import_plans_the_take_over_and_the_difference_then_nothing(tmp_path, sandbox_env, made_in_console, admin):
    (tmp_path / "m.yaml").write_text(MANIFEST.format(id=made_in_console))
    infra = Infra(tmp_path, "m.yaml")
    code, out = infra.plan("--detailed-exitcode")
    assert code == 2, out
    assert "# codeocean.data_asset.data will be imported" in out and f"id={made_in_console}" in out, out
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
    (tmp_path / "m.yaml").write_text(MANIFEST.format(id=remote))
    before = _writes(admin)
    code, out = Infra(tmp_path, "m.yaml").plan()
    assert code == 1 and f"m.yaml:9:" in out and f"no codeocean.data_asset with id {remote}" in out, out
    assert _writes(admin) == before


def test_an_import_into_an_undeclared_address_is_an_error_at_load(tmp_path, sandbox_env):
    (tmp_path / "m.yaml").write_text(MANIFEST.format(id="x").replace("to: codeocean.data_asset.data",
                                                                     "to: codeocean.data_asset.other"))
    code, out = Infra(tmp_path, "m.yaml").plan()
    assert code == 1 and "m.yaml:9:" in out and "codeocean.data_asset.other is not declared" in out, out
