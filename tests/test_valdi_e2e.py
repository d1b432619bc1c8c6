"""examples/valdi.yaml through the CLI against the emulator: apply, no changes, power
stop/start with costs, a flavor change that replaces the VM, file upload / re-upload /
delete, keys that cannot be deleted, destroy, a 2-second token lifetime, catalog checks
before any provisioning, and one listing per kind per plan."""
from __future__ import annotations

import os
import re
import stat
import time
from pathlib import Path

import pytest
from conftest import Infra, api_calls
from tracked import copy_tracked

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


@pytest.fixture
def work(tmp_path, sandbox_env):
    d = tmp_path / "infra"
    d.mkdir()
    for name in ("valdi.yaml", "keys", "files"):
        src = EXAMPLES / name
        copy_tracked(src, d / name)
    return Infra(d, "valdi.yaml")


def docs(admin, kind: str) -> list[dict]:
    return admin.get(f"/_emulator/docs/{kind}").json()["items"]


def objects(admin) -> dict[str, int]:
    listing = admin.get("/_emulator/s3/valdi").json()["objects"]
    return {o["key"].split("/", 1)[1]: o["size"] for o in listing}


def test_apply_converges_and_writes_the_secrets_only_where_asked(work, admin, monkeypatch):
    monkeypatch.delenv("RECONCILER_STATE_KEY", raising=False)
    code, out = work.apply()
    assert code == 0, out
    assert "$0.66/h ($481.80/month)" in out  # the VM's running cost from the catalog
    # a log (no terminal) gets plain progress lines: the VM's status while it provisions, k of N
    assert re.search(r"valdi\.vm\.trainer: VM trainer: provisioning \(\d+s elapsed\)", out), out
    assert re.search(r"valdi\.vm\.trainer: Creation complete after \d+s \(\d+ of 4 done\)", out), out
    assert "RECONCILER_STATE_KEY" in out  # said once: by the apply that first wrote a secret in clear
    code, out = work.plan("--detailed-exitcode")
    assert code == 0 and "No changes" in out, out
    assert "RECONCILER_STATE_KEY" not in out and "RECONCILER_STATE_KEY" not in work.apply()[1]
    (vm,) = docs(admin, "valdi_vm")
    assert vm["user_provided_name"] == "trainer" and vm["state"] == "running"
    assert {k["name"] for k in docs(admin, "valdi_sshkey")} == {"deploy", "ci-runner"}
    assert objects(admin) == {"team-datasets/config/train-config.json": 46, "team-datasets/raw/README.txt": 27,
                              "team-datasets/raw/": 0, "team-datasets/processed/": 0}
    pem = work.path / ".secrets" / "ci-runner.pem"
    creds = work.path / ".secrets" / "datasets.credentials"
    for f in (pem, creds):
        assert stat.S_IMODE(f.stat().st_mode) == 0o600
    assert pem.read_text().startswith("-----BEGIN") and "\\n" not in pem.read_text()
    assert re.search(r"^aws_secret_access_key = \S+$", creds.read_text(), re.M)
    state = work.state()
    volume = state["resources"]["valdi.volume.datasets"]
    assert "secret_access_key" in volume["secrets"] and "secret_access_key" not in volume["outputs"]
    assert volume["secrets"]["secret_access_key"] in creds.read_text()
    # the sandbox's keys open the sandbox's gateway, and the file says so
    gateway = f"{os.environ['VALDI_ENDPOINT']}/gateway"
    assert f"--endpoint-url {gateway} " in creds.read_text() and "gateway.valdi.ai" not in creds.read_text()


def test_power_stop_and_start_in_place_with_the_cost_change(work, admin):
    assert work.apply()[0] == 0
    (before,) = docs(admin, "valdi_vm")
    work.edit("      power: running", "      power: stopped")
    code, out = work.plan("--detailed-exitcode")
    assert code == 2 and "$0.66/h ($481.80/month) -> $0.10/h ($73.00/month)" in out, out
    assert "Cost change: -$0.56/h (-$408.80/month)" in out
    assert work.apply()[0] == 0
    (vm,) = docs(admin, "valdi_vm")
    assert vm["state"] == "stopped" and vm["server"] == before["server"]
    work.edit("      power: stopped", "      power: running")
    admin.delete("/_emulator/requests")
    assert work.apply()[0] == 0
    assert api_calls(admin).get("POST /v1/vm/start/{id}") == 1
    assert docs(admin, "valdi_vm")[0]["state"] == "running"
    assert work.plan("--detailed-exitcode")[0] == 0


def test_a_flavor_change_replaces_the_vm_and_protection_is_honoured(work, admin):
    assert work.apply()[0] == 0
    (old,) = docs(admin, "valdi_vm")
    work.edit("94d76997-44ec-4f1e-8291-231de42b6030", "b5917017-7ca4-403e-b08b-ba5cc31c7d2a")
    code, out = work.plan()
    assert code == 1 and "protected by prevent_destroy" in out and "details.flavor_id" in out
    work.edit("lifecycle: {prevent_destroy: true}", "lifecycle: {prevent_destroy: false}")
    code, out = work.plan()
    assert code == 1 and "protected" in out  # the protection is lifted by an apply first, as documented
    work.edit("b5917017-7ca4-403e-b08b-ba5cc31c7d2a", "94d76997-44ec-4f1e-8291-231de42b6030")
    assert work.apply()[0] == 0
    work.edit("94d76997-44ec-4f1e-8291-231de42b6030", "b5917017-7ca4-403e-b08b-ba5cc31c7d2a")
    code, out = work.plan()
    assert "-/+ valdi.vm.trainer" in out and "details.flavor_id" in out and "forces replacement" in out
    assert "$0.66/h ($481.80/month) -> $1.32/h ($963.60/month)" in out
    work.edit("power: running", "power: stopped")
    code, stopped = work.plan()
    # what a replace does: the disk goes; no "stopped, local data kept" beside it
    assert "the old object: the VM is destroyed in VALDI (its disk too)" in stopped
    assert "local data kept" not in stopped
    work.edit("power: stopped", "power: running")
    code, out = work.apply()
    assert code == 0, out
    (new,) = docs(admin, "valdi_vm")
    assert new["server"] != old["server"] and new["extras"]["flavor_id"].startswith("b5917017")
    assert work.plan("--detailed-exitcode")[0] == 0


def test_files_upload_reupload_only_when_changed_and_delete(work, admin):
    assert work.apply()[0] == 0
    work.edit("        - {path: raw/README.txt, source: files/README.txt}",
         "        - {path: raw/README.txt, source: files/README.txt}\n"
         "        - {path: raw/labels.csv, source: files/labels.csv}")
    (work.path / "files" / "labels.csv").write_text("id,label\n1,cat\n")
    admin.delete("/_emulator/requests")
    code, out = work.apply()
    assert code == 0, out
    calls = api_calls(admin)
    assert calls.get("GET /volume/{id}/upload/{path:path}") == 1  # only the new file
    assert objects(admin)["team-datasets/raw/labels.csv"] == 15

    (work.path / "files" / "labels.csv").write_text("id,label\n1,cat\n2,dog\n")
    code, out = work.plan("--detailed-exitcode")
    assert code == 2 and "files.raw/labels.csv" in out, out
    assert work.apply()[0] == 0
    assert objects(admin)["team-datasets/raw/labels.csv"] == 21

    admin.put("/_emulator/s3/valdi/8/team-datasets/raw/theirs.txt", content=b"not ours")
    work.edit("\n        - {path: raw/labels.csv, source: files/labels.csv}", "")
    code, out = work.apply()
    assert code == 0, out
    left = objects(admin)
    assert "team-datasets/raw/labels.csv" not in left
    assert "team-datasets/raw/theirs.txt" in left  # someone else's file stays
    assert work.plan("--detailed-exitcode")[0] == 0


def test_a_removed_or_changed_key_is_said_plainly(work, admin):
    assert work.apply()[0] == 0
    work.edit("      name: ci-runner\n", "      name: ci-runner-2\n")
    code, out = work.plan()
    assert "-/+ valdi.ssh_key.ci" in out and "VALDI has no API to delete SSH keys" in out
    text = (work.path / "valdi.yaml").read_text()
    start = text.index("  # A key pair VALDI generates")
    end = text.index("  # A fixed-flavor machine")
    (work.path / "valdi.yaml").write_text(text[:start] + text[end:])
    code, out = work.plan()
    assert "valdi.ssh_key.ci" in out and "will be forgotten" in out and "no API to delete" in out
    assert work.apply()[0] == 0
    assert any(k["name"] == "ci-runner" for k in docs(admin, "valdi_sshkey"))  # still there, as said


def test_destroy_leaves_nothing_of_ours(work, admin):
    assert work.apply()[0] == 0
    work.edit("lifecycle: {prevent_destroy: true}", "lifecycle: {prevent_destroy: false}")
    assert work.apply()[0] == 0
    code, out = work.destroy()
    assert code == 0, out
    assert docs(admin, "valdi_vm") == [] and docs(admin, "valdi_volume") == []
    assert objects(admin) == {}
    # the deleted volume's keys are gone from disk too; the key VALDI keeps stays usable
    assert not (work.path / ".secrets" / "datasets.credentials").exists()
    assert (work.path / ".secrets" / "ci-runner.pem").exists()
    assert work.state()["resources"] == {}


def test_an_apply_succeeds_when_access_tokens_live_two_seconds(work, admin):
    admin.post("/_emulator/config", json={"valdi_access_ttl": 2, "vm_provision_delay": 3.0})
    code, out = work.apply()
    assert code == 0, out
    work.edit("      power: running", "      power: stopped")
    assert work.apply()[0] == 0
    log = admin.get("/_emulator/requests", params={"full": "1"}).json()["log"]
    assert not [e for e in log if e["status"] == 401 and not e["path"].startswith("/account")]
    assert any(e["path"] == "/account/refresh_token" for e in log)  # it refreshed as it went


@pytest.mark.parametrize("old, new, message", [
    ("flavor_id: 94d76997-44ec-4f1e-8291-231de42b6030", "flavor_id: 00000000-0000-0000-0000-000000000000",
     "details.flavor_id: '00000000-0000-0000-0000-000000000000' is not offered (allowed: 94d76997"),
    ("provider_id: a45088e0-1681-446e-9a3e-3ed9dfc3d57e\n      details:\n        flavor_id: 94d76997-44ec-4f1e-8291-231de42b6030\n        ssh_key_id: ${valdi.ssh_key.deploy.id}\n        ipv4: true",
     "provider_id: 66730e5d-98d2-45f6-8aaa-6ad8cdcbc285\n      details:\n        hostnode: b2ce5479-fa59-483f-86ba-0aa128051821\n        gpu_model: a100-pcie-80gb\n        operating_system: TensorML 20 Everything\n        gpu_count: 1\n        vcpus: 8\n        ram: 32\n        storage: 40\n        ssh_key_id: ${valdi.ssh_key.deploy.id}",
     "details.storage: 40 GB does not fit TensorML 20 Everything on this hostnode (allowed: 60 ... 300)"),
    ("flavor_id: 94d76997-44ec-4f1e-8291-231de42b6030\n        ssh_key_id: ${valdi.ssh_key.deploy.id}\n        ipv4: true",
     "flavor_id: 94d76997-44ec-4f1e-8291-231de42b6030\n        ssh_key_id: ${valdi.ssh_key.deploy.id}\n        ipv4: yes please",
     "spec.details.ipv4"),
])
def test_invalid_vm_details_fail_before_any_provisioning(work, admin, old, new, message):
    work.edit(old, new)
    code, out = work.plan()
    assert code == 1 and message in out, out
    assert re.search(r"valdi\.yaml:\d+", out)
    code, out = work.apply()
    assert code == 1
    assert "POST /v1/vm/provision" not in api_calls(admin)
    assert "POST /sshkeys/sshkey" not in api_calls(admin)  # nothing at all was written


def test_odd_vcpus_and_ratio_limits_name_the_allowed_values(work, admin):
    work.edit("provider_id: a45088e0-1681-446e-9a3e-3ed9dfc3d57e\n      details:\n        flavor_id: "
               "94d76997-44ec-4f1e-8291-231de42b6030\n        ssh_key_id: ${valdi.ssh_key.deploy.id}\n        ipv4: true",
         "provider_id: 0a53cf4e-7b2d-4c8e-9f61-2d4a8e6b3c15\n      details:\n        data_center_id: ca-montreal-3\n"
         "        machine_type: sapphire-rapids-h100\n        ssh_key_id: ${valdi.ssh_key.deploy.id}\n"
         "        boot_disk_size: 64\n        vcpus: 40\n        ram: 32\n        gpu_count: 1")
    code, out = work.plan()
    assert code == 1 and "details.vcpus: 40 vCPUs break sapphire-rapids-h100's limits" in out
    assert "(allowed for ram 32 and gpu_count 1: 4 ... 24)" in out, out


def test_a_plan_reads_one_listing_per_kind(work, admin):
    assert work.apply()[0] == 0
    assert api_calls(admin).get("GET /v1/devices/available") == 1  # the catalog: once per run
    admin.delete("/_emulator/requests")
    assert work.plan()[0] == 0
    calls = api_calls(admin)
    assert calls.get("GET /v1/vm") == 1 and calls.get("GET /sshkeys") == 1
    assert calls.get("GET /volume") == 1 and calls.get("GET /v1/devices/available") == 1
    assert calls.get("GET /volume/{id}") == 1  # contents of the one volume that lists files
    assert "GET /v1/vm/{id}" not in calls


def test_a_vm_slower_than_vm_timeout_fails_clearly_and_the_next_apply_picks_it_up(work, admin):
    admin.post("/_emulator/config", json={"vm_provision_delay": 2.0})
    work.edit('valdi: {email: "${env.VALDI_EMAIL}", password: "${env.VALDI_PASSWORD}"}',
              'valdi: {email: "${env.VALDI_EMAIL}", password: "${env.VALDI_PASSWORD}", vm_timeout: 0.5}')
    code, out = work.apply()
    assert code == 1 and "VM trainer is still provisioning after" in out and "the next apply picks it up" in out
    time.sleep(2.0)
    code, out = work.apply()
    assert code == 0, out
    assert len(docs(admin, "valdi_vm")) == 1  # found, not provisioned twice
    assert work.plan("--detailed-exitcode")[0] == 0


def test_a_vm_password_stays_out_of_every_output_and_is_sealed_in_the_state(work, admin, monkeypatch):
    monkeypatch.setenv("RECONCILER_STATE_KEY", "state key for the test")
    monkeypatch.setenv("VM_PASSWORD", "Vm-pass-93kd81Lq")
    work.edit("provider_id: a45088e0-1681-446e-9a3e-3ed9dfc3d57e\n      details:\n        flavor_id: "
              "94d76997-44ec-4f1e-8291-231de42b6030\n        ssh_key_id: ${valdi.ssh_key.deploy.id}\n        ipv4: true",
              "provider_id: 66730e5d-98d2-45f6-8aaa-6ad8cdcbc285\n      details:\n"
              "        hostnode: b2ce5479-fa59-483f-86ba-0aa128051821\n        gpu_model: a100-pcie-80gb\n"
              "        operating_system: Ubuntu 22.04 LTS\n        gpu_count: 1\n        vcpus: 8\n        ram: 32\n"
              "        storage: 100\n        external_ports: \"{21297}\"\n        internal_ports: \"{22}\"\n"
              "        password: ${env.VM_PASSWORD}")
    before = [work.plan(), work.plan("--format", "json"), work.plan("--format", "markdown")]
    assert '"password": "(sensitive)"' in before[1][1]  # shown in full, masked inside `details`
    outputs = before + [work.apply(), work.plan("--detailed-exitcode")]
    assert outputs[3][0] == 0, outputs[3][1]
    assert outputs[4][0] == 0  # the sealed password round-trips: no phantom change
    # component pricing: GPU 2.044 + 8 vCPU x 0.0035 + 32 GB x 0.0025 + 100 GB x 0.0002 = 2.172
    assert "- -> $2.17/h" in outputs[0][1], outputs[0][1]
    text = "\n".join(out for _, out in outputs) + (work.path / "state.json").read_text()
    assert "Vm-pass-93kd81Lq" not in text
    assert work.state()["resources"]["valdi.vm.trainer"]["last_applied"]["details"]["password"] == "(sealed)"
    assert docs(admin, "valdi_vm")[0]["port_forwards"] == '{"21297": "22"}'


@pytest.mark.parametrize("storage", ["20000", "12345678901234"])
def test_additional_storage_out_of_range_fails_at_plan_before_the_key_is_made(work, admin, storage):
    """The VM call would refuse it after the SSH key was created: the plan says so first."""
    work.edit("provider_id: a45088e0-1681-446e-9a3e-3ed9dfc3d57e\n      details:\n        flavor_id: "
              "94d76997-44ec-4f1e-8291-231de42b6030\n        ssh_key_id: ${valdi.ssh_key.deploy.id}\n        ipv4: true",
              "provider_id: bd3731eb-37c7-4577-817e-b8fe9dd02dfd\n      details:\n"
              "        config: vcpu-8_memory-48g_nvidia-rtx-3090-2\n"
              "        image_id: 2cd0e25f-a39e-4bc6-aa78-b4c40b87072a\n"
              f"        ssh_key_id: ${{valdi.ssh_key.deploy.id}}\n        additional_storage: {storage}")
    admin.delete("/_emulator/requests")
    code, out = work.apply()
    assert code == 1 and "details.additional_storage" in out and "out of range" in out, out
    assert not [k for k in api_calls(admin) if not k.startswith(("GET", "POST /account"))], api_calls(admin)


def test_an_existing_file_we_did_not_write_is_never_overwritten(work, admin):
    """The user's own file where a generated private key would go: the plan refuses with
    file:line:col before any call; a file reconciler wrote is replaced on --replace; a file
    beside a key already made (nothing will write it) is no obstacle."""
    mine = work.path / ".secrets" / "ci-runner.pem"
    mine.parent.mkdir()
    mine.write_text("the user's own key\n")
    admin.delete("/_emulator/requests")
    code, out = work.apply()
    assert code == 1 and re.search(r"valdi\.yaml:\d+:\d+: valdi\.ssh_key\.ci\.spec\.private_key_file: .*did not write",
                                   out), out
    assert not [k for k in api_calls(admin) if not k.startswith(("GET", "POST /account"))]
    assert mine.read_text() == "the user's own key\n"
    mine.unlink()
    assert work.apply()[0] == 0
    first = mine.read_text()
    code, out = work.apply("--replace", "valdi.ssh_key.ci")
    assert code == 0 and mine.read_text() != first, out  # ours: replaced with the new key
    mine.write_text("edited by hand\n")
    assert work.plan("--detailed-exitcode")[0] == 0  # nothing writes it now: no obstacle
