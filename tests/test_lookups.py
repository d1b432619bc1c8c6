"""`lookups:`: read-only rows of the services' catalogues, picked by their own field names."""
from __future__ import annotations

import httpx
import pytest
from conftest import Infra, api_calls, cli

from reconciler.emulator.core import SANDBOX

VM = """\
lookups:
  a6000: {{kind: valdi.flavor, where: {where}}}
resources:
  - kind: valdi.ssh_key
    name: deploy
    spec: {{name: deploy, public_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBx1 me@example"}}
  - kind: valdi.vm
    name: trainer
    spec:
      name: trainer
      provider_id: ${{lookup.a6000.provider_id}}
      details:
        flavor_id: ${{lookup.a6000.flavor_id}}
        ssh_key_id: ${{valdi.ssh_key.deploy.id}}
      power: running
"""


def test_a_lookup_picks_the_a6000_flavour_by_name(tmp_path, sandbox_env, admin):
    (tmp_path / "m.yaml").write_text(VM.format(where='{gpu_type: "RTX A6000 48GB", gpu_count: 1}'))
    infra = Infra(tmp_path, "m.yaml")
    assert cli("validate", str(tmp_path))[0] == 0 and not api_calls(admin)  # known at plan time only
    code, out = infra.plan()
    assert code == 0, out
    assert "94d76997-44ec-4f1e-8291-231de42b6030" in out and "a45088e0-1681-446e-9a3e-3ed9dfc3d57e" in out, out
    assert "$0.66" in out  # priced like a flavour written out
    assert api_calls(admin).get("GET /v1/devices/available") == 1  # the listing the VM check reads anyway
    code, out = infra.apply()
    assert code == 0, out
    assert infra.plan("--detailed-exitcode")[0] == 0


@pytest.mark.parametrize("where, message", [
    ('{gpu: "RTX A6000 48GB"}', "valdi.flavor has no field 'gpu' (it has: available, cpu_core_count, flavor_id, "
                                "gpu_count, gpu_type,"),
    ('{gpu_type: "RTX A6000 48GB"}', "3 valdi.flavor rows match gpu_type = 'RTX A6000 48GB': 1x RTX A6000 48GB, "
                                     "6 vCPUs, 55 GB RAM"),
    ('{gpu_type: "H100"}', "no valdi.flavor matches gpu_type = 'H100'; there are: 1x RTX A6000 48GB"),
], ids=["unknown-field", "several", "none"])
def test_a_lookup_that_does_not_pick_one_row_is_a_plan_time_error(tmp_path, sandbox_env, admin, where, message):
    (tmp_path / "m.yaml").write_text(VM.format(where=where))
    code, out = Infra(tmp_path, "m.yaml").plan()
    assert code == 1 and message in out and "m.yaml:2:" in out, out
    assert not [k for k in api_calls(admin) if not k.startswith(("GET", "POST /account/login"))]


def test_an_undeclared_lookup_is_an_error_at_load(tmp_path, sandbox_env):
    (tmp_path / "m.yaml").write_text(VM.format(where='{gpu_count: 1}').replace("lookup.a6000.flavor_id",
                                                                               "lookup.a600.flavor_id"))
    code, out = Infra(tmp_path, "m.yaml").plan()
    assert code == 1 and "m.yaml:13:" in out and "no lookup 'a600'" in out, out


def test_a_store_and_an_asset_made_elsewhere_by_name(tmp_path, sandbox_env, emulator, admin):
    with httpx.Client(base_url=f"{emulator.url}/api/v1", auth=(SANDBOX["codeocean_token"], "")) as co:
        asset = co.post("/data_assets", json={"name": "Reference genome", "mount": "genome", "tags": [],
                                              "source": {"aws": {"bucket": "sandbox-bucket", "prefix": "data/",
                                                                 "keep_on_external_storage": False,
                                                                 "public": False}}}).json()["id"]
    (tmp_path / "m.yaml").write_text("""\
lookups:
  store: {kind: valohai.store, where: {name: sandbox-store}}
  genome: {kind: codeocean.data_asset, where: {name: Reference genome}}
resources:
  - kind: valohai.datum
    name: train
    spec:
      store: ${lookup.store.id}
      url: s3://sandbox-bucket/data/train.csv
  - kind: codeocean.data_asset
    name: bundle
    spec:
      name: Bundle
      source: {combined: ["${lookup.genome.id}"]}
""")
    admin.delete("/_emulator/requests")
    code, out = Infra(tmp_path, "m.yaml").plan()
    assert code == 0 and asset in out, out
    calls = api_calls(admin)  # the listings the plan reads anyway, read once
    assert calls.get("GET /api/v0/stores/") == 1 and calls.get("POST /api/v1/data_assets/search") == 2, calls


def test_lookups_of_assets_shared_with_us_search_every_asset_once(tmp_path, sandbox_env, emulator, admin):
    admin.post("/_emulator/codeocean/users", json={"email": "colleague@example.com", "token": "cop_colleague"})
    ids = []
    with httpx.Client(base_url=f"{emulator.url}/api/v1", auth=("cop_colleague", "")) as co:
        for name in ("Reference genome", "Annotations"):
            asset = co.post("/data_assets", json={"name": name, "mount": name.split()[0].lower(), "tags": [],
                                                  "source": {"aws": {"bucket": "sandbox-bucket", "prefix": "data/",
                                                                     "keep_on_external_storage": False,
                                                                     "public": False}}}).json()["id"]
            shared = co.post(f"/data_assets/{asset}/permissions", json={
                "users": [{"email": SANDBOX["codeocean_email"], "role": "viewer"}], "groups": [], "everyone": "none"})
            assert shared.status_code < 300, shared.text
            ids.append(asset)
    (tmp_path / "m.yaml").write_text("""\
lookups:
  genome: {kind: codeocean.data_asset, where: {name: Reference genome}}
  notes: {kind: codeocean.data_asset, where: {name: Annotations}}
resources:
  - kind: codeocean.data_asset
    name: bundle
    spec:
      name: Bundle
      source: {combined: ["${lookup.genome.id}", "${lookup.notes.id}"]}
""")
    admin.delete("/_emulator/requests")
    code, out = Infra(tmp_path, "m.yaml").plan()
    assert code == 0 and all(i in out for i in ids), out
    # the owned listing (live and archived), then one search of every visible asset for both lookups
    assert api_calls(admin).get("POST /api/v1/data_assets/search") == 3, api_calls(admin)
