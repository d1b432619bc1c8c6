"""The VALDI client and kinds called directly against a live emulator: token refresh and
re-login, credentials never in errors, and what a crash in the middle of a create leaves
(a generated key's private key, a volume's access keys) said plainly, not hidden."""
from __future__ import annotations

import configparser
import logging
import stat
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import api_calls

from reconciler.config.model import Position, Resource
from reconciler.emulator.core import SANDBOX
from reconciler.emulator.valdi_catalog import (
    PROVIDER_A,
    PROVIDER_B,
    PROVIDER_C,
    PROVIDER_D,
)
from reconciler.errors import AuthError
from reconciler.providers.contract import KindContext, Wanted
from reconciler.providers.http import redact
from reconciler.providers.valdi import PROVIDER
from reconciler.providers.valdi.client import ValdiClient, token_expiry
from reconciler.providers.valdi.ssh_key import SshKeyKind
from reconciler.providers.valdi.vm import VmKind
from reconciler.providers.valdi.volume import MARKER_ONLY, VolumeKind


def ctx() -> KindContext:
    return KindContext(api=PROVIDER.connect({}))


def test_token_expiry_reads_valdis_yyyymmddhhmmss_exp():
    import base64
    import json
    payload = {"data": {"user_id": 8, "creation_time": "2023-12-04 23:54:59.733508"},
               "purpose": "access_token", "exp": 20231204235959}
    token = "e30." + base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=") + ".sig"
    expires, lifetime = token_expiry(token)
    assert time.strftime("%Y%m%d%H%M%S", time.gmtime(expires)) == "20231204235959"
    assert 299 < lifetime < 300
    assert token_expiry("not-a-jwt") == (0.0, 1.0)


def test_short_access_tokens_are_refreshed_and_an_expired_refresh_token_logs_in_again(sandbox_env, admin):
    admin.post("/_emulator/config", json={"valdi_access_ttl": 1, "valdi_refresh_ttl": 6})
    api = PROVIDER.connect({})
    api.ssh_keys()
    for _ in range(2):
        time.sleep(1.1)
        api.invalidate("sshkeys")
        api.ssh_keys()
    assert api.logins == 1 and api.refreshes >= 1
    time.sleep(4.2)  # the refresh token is gone too
    api.invalidate("sshkeys")
    api.ssh_keys()
    assert api.logins == 2
    log = admin.get("/_emulator/requests", params={"full": "1"}).json()["log"]
    assert not [e for e in log if e["status"] == 401 and e["path"] == "/sshkeys"]  # refreshed before, not after


def test_a_wrong_password_is_an_auth_error_that_does_not_show_it(sandbox_env, monkeypatch):
    monkeypatch.setenv("VALDI_PASSWORD", "wrong-password-1234")
    with pytest.raises(AuthError) as e:
        PROVIDER.connect({}).ssh_keys()
    assert "wrong-password-1234" not in str(e.value) and SANDBOX["valdi_password"] not in str(e.value)
    assert "401" in str(e.value)


def test_a_generated_key_found_after_a_crash_says_its_private_key_was_lost(sandbox_env, tmp_path):
    kind = SshKeyKind()
    spec = {"name": "ci", "private_key_file": "ci.pem"}
    made = kind.create(KindContext(api=PROVIDER.connect({}), base_dir=tmp_path), spec)
    assert "private_key" not in made.outputs and made.secrets["private_key"].startswith("-----BEGIN")
    assert set(made.secrets) <= kind.sensitive  # so a reference to it is masked before it exists
    found = kind.observe(ctx(), [Wanted("valdi.ssh_key.ci", None, spec, None, lookup=True,
                                        base_dir=str(tmp_path))])["valdi.ssh_key.ci"]
    assert found.id == made.id  # not a second key
    notes = kind.plan_notes(spec, found, None)
    assert any("private key was lost" in n and "--replace" in n for n in notes)


def test_a_volume_found_after_a_crash_has_no_keys_and_says_so(sandbox_env, tmp_path, admin):
    kind = VolumeKind()
    spec = {"bucket_name": "crashed", "credentials_file": "creds"}
    ctx().api.create_volume("crashed")  # made, then the apply died before it heard back
    found = kind.observe(ctx(), [Wanted("valdi.volume.v", None, spec, None, lookup=True,
                                        base_dir=str(tmp_path))])["valdi.volume.v"]
    assert found is not None and found.secrets["secret_access_key"] is None
    assert not kind.diff(spec, found, None).changed  # no change it could never make
    assert any("returned only when it is created" in n for n in kind.plan_notes(spec, found, None))


def test_a_missing_credentials_file_is_rewritten_from_the_state(sandbox_env, tmp_path):
    kind = VolumeKind()
    spec = {"bucket_name": "keys", "credentials_file": "creds"}
    made = kind.create(KindContext(api=PROVIDER.connect({}), base_dir=tmp_path), spec)
    (tmp_path / "creds").unlink()
    # the keys travel as secrets, under names the kind lists as sensitive (a reference to one is masked)
    assert not set(made.secrets) & set(made.outputs) and set(made.secrets) <= kind.sensitive
    secrets = {k: made.secrets[k] for k in ("access_key_id", "secret_access_key")}
    live = kind.observe(ctx(), [Wanted("valdi.volume.v", made.id, spec, spec, base_dir=str(tmp_path),
                                       secrets=secrets)])["valdi.volume.v"]
    diff = kind.diff(spec, live, spec)
    assert [c.path for c in diff.changes] == ["credentials_file"]
    kind.update(KindContext(api=PROVIDER.connect({}), base_dir=tmp_path), live, spec, diff)
    ini = configparser.ConfigParser()  # the INI shape awscli and boto3 read
    ini.read(tmp_path / "creds")
    assert dict(ini["default"]) == {"aws_access_key_id": secrets["access_key_id"],
                                    "aws_secret_access_key": secrets["secret_access_key"]}
    assert stat.S_IMODE((tmp_path / "creds").stat().st_mode) == 0o600


def test_observing_many_keys_and_volumes_is_one_listing_each(sandbox_env, admin):
    api = PROVIDER.connect({})
    for i in range(20):
        api.create_ssh_key(f"k{i}", None)
        api.create_volume(f"v{i}")
    admin.delete("/_emulator/requests")
    wanted_keys = [Wanted(f"valdi.ssh_key.k{i}", None, {"name": f"k{i}"}, None, lookup=True) for i in range(20)]
    wanted_volumes = [Wanted(f"valdi.volume.v{i}", None, {"bucket_name": f"v{i}"}, None, lookup=True)
                      for i in range(20)]
    c = ctx()
    assert all(SshKeyKind().observe(c, wanted_keys).values())
    assert all(VolumeKind().observe(c, wanted_volumes).values())
    calls = api_calls(admin)
    assert calls.get("GET /sshkeys") == 1 and calls.get("GET /volume") == 1
    assert "GET /volume/{id}" not in calls  # no contents read for volumes that list no files


# -- auth under pressure --------------------------------------------------------------------
def log_of(admin) -> list[dict]:
    return admin.get("/_emulator/requests", params={"full": "1"}).json()["log"]


def test_a_401_on_a_token_the_client_thought_fresh_is_refreshed_and_retried_once(sandbox_env, admin):
    admin.post("/_emulator/config", json={"valdi_access_ttl": 1})
    late_clock = lambda: time.time() - 600  # noqa: E731 - the client's clock runs behind the server's
    api = ValdiClient(sandbox_env["VALDI_ENDPOINT"], sandbox_env["VALDI_EMAIL"], sandbox_env["VALDI_PASSWORD"],
                      clock=late_clock)
    api.ssh_keys()
    time.sleep(1.2)
    api.invalidate("sshkeys")
    assert api.ssh_keys() == []
    assert api.logins == 1 and api.refreshes == 1
    statuses = [e["status"] for e in log_of(admin) if e["path"] == "/sshkeys"]
    assert statuses == [200, 401, 200]


def test_eight_threads_share_one_login_and_refresh_one_at_a_time(sandbox_env, admin):
    admin.post("/_emulator/config", json={"valdi_access_ttl": 2})
    api = PROVIDER.connect({})
    stop = time.monotonic() + 3.0

    def work(_):
        calls = 0
        while time.monotonic() < stop:
            assert api.vm("00000000-0000-0000-0000-000000000000") is None
            calls += 1
        return calls

    with ThreadPoolExecutor(8) as pool:
        assert sum(pool.map(work, range(8))) > 16
    log = log_of(admin)
    assert [e["path"] for e in log].count("/account/login") == 1 and api.logins == 1
    assert 1 <= api.refreshes <= 6  # about one per token lifetime, not one per thread
    assert [e["path"] for e in log].count("/account/refresh_token") == api.refreshes
    assert not [e for e in log if e["status"] == 401]


def test_debug_logs_of_login_refresh_and_upload_carry_no_secret(sandbox_env, admin, caplog, tmp_path):
    admin.post("/_emulator/config", json={"valdi_access_ttl": 1})
    api = PROVIDER.connect({})
    with caplog.at_level(logging.DEBUG):
        volume = api.create_volume("logged")
        api.upload(volume["volume_id"], "a.txt", b"hello")
        time.sleep(1.1)
        api.invalidate("sshkeys")
        api.ssh_keys()
    assert api.refreshes >= 1  # the refresh request and answer are in the log, redacted
    text = caplog.text
    assert SANDBOX["valdi_password"] not in text and volume["secret_access_key"] not in text
    assert "eyJ" not in text  # no JWT (access or refresh token)
    assert "Signature=(redacted)" in text or "Signature" not in text


# -- VMs --------------------------------------------------------------------------------------
FLAVOR_VM = {"name": "box", "provider_id": PROVIDER_A,
             "details": {"flavor_id": "94d76997-44ec-4f1e-8291-231de42b6030", "ipv4": True}}


def with_key(spec: dict, key_id: str) -> dict:
    return {**spec, "details": {**spec["details"], "ssh_key_id": key_id}}


def test_a_vm_declared_stopped_is_provisioned_then_stopped_with_its_outputs(sandbox_env, admin):
    c = ctx()
    key = c.api.create_ssh_key("k", None)["ssh_key_id"]
    progress = []
    spec = {**with_key(FLAVOR_VM, key), "power": "stopped"}
    live = VmKind().create(KindContext(api=c.api, progress=progress.append), spec)
    (vm,) = admin.get("/_emulator/docs/valdi_vm").json()["items"]
    assert vm["state"] == "stopped" and live.attrs["power"] == "stopped"
    assert live.outputs["id"] == vm["server"] and live.outputs["name"] == "box"
    assert live.outputs["port_forwards"] == {"22": "22", "443": "443", "80": "80"}  # a dict, not a JSON string
    assert live.outputs["ip"] and live.outputs["status"] == "stopped"
    assert not VmKind().diff(spec, live, spec).changed


def test_a_journaled_vm_create_is_found_by_name_and_provider_not_made_twice(sandbox_env, admin):
    c = ctx()
    key = c.api.create_ssh_key("k", None)["ssh_key_id"]
    spec = with_key(FLAVOR_VM, key)
    server = c.api.provision(PROVIDER_A, "box", spec["details"])  # the apply died before recording it
    c.api.provision(PROVIDER_A, "other", spec["details"])
    found = VmKind().observe(ctx(), [Wanted("valdi.vm.box", None, spec, None, lookup=True)])["valdi.vm.box"]
    assert found is not None and found.id == server
    elsewhere = {**spec, "provider_id": PROVIDER_B}  # same name, other provider: not ours
    assert VmKind().observe(ctx(), [Wanted("valdi.vm.box", None, elsewhere, None, lookup=True)]) == \
        {"valdi.vm.box": None}


def test_a_details_change_is_a_replacement_that_names_the_field(sandbox_env):
    c = ctx()
    key = c.api.create_ssh_key("k", None)["ssh_key_id"]
    spec = with_key(FLAVOR_VM, key)
    live = VmKind().create(c, spec)
    bigger = {**spec, "details": {**spec["details"], "flavor_id": "b5917017-7ca4-403e-b08b-ba5cc31c7d2a"}}
    diff = VmKind().diff(bigger, live, spec)
    assert diff.replace == ["details.flavor_id"]
    no_ipv4 = {**spec, "details": {k: v for k, v in spec["details"].items() if k != "ipv4"}}
    dropped = VmKind().diff(no_ipv4, live, spec)
    assert dropped.replace == ["details.ipv4"]  # dropped from the manifest: VALDI cannot change it in place
    stopped = VmKind().diff({**spec, "power": "stopped"}, live, spec)
    assert [c.path for c in stopped.changes] == ["power"] and not stopped.replace


@pytest.mark.parametrize("provider, details, running, stopped", [
    (PROVIDER_A, {"flavor_id": "b5917017-7ca4-403e-b08b-ba5cc31c7d2a"}, 1.32, 0.20),
    # 8 vCPU x 0.0035 + 32 GB x 0.0025 + 100 GB x 0.0002 + 1 GPU x 2.044; stopped: storage only
    (PROVIDER_B, {"hostnode": "b2ce5479-fa59-483f-86ba-0aa128051821", "vcpus": 8, "ram": 32, "storage": 100,
                  "gpu_count": 1}, 2.172, 0.02),
    (PROVIDER_C, {"config": "vcpu-8_memory-48g_nvidia-rtx-3090-2", "additional_storage": 100}, 0.80, 0.06),
    # 16 vCPU x 0.008 + 64 GiB x 0.002 + 2 GPU x 2.39 + 100 GiB x 0.00015; stopped: the disk
    (PROVIDER_D, {"data_center_id": "ca-montreal-3", "machine_type": "sapphire-rapids-h100", "vcpus": 16,
                  "ram": 64, "gpu_count": 2, "boot_disk_size": 100}, 5.051, 0.015),
])
def test_hourly_cost_of_each_provider_shape_running_and_stopped(sandbox_env, provider, details, running, stopped):
    c, kind = ctx(), VmKind()
    attrs = {"provider_id": provider, "details": details}
    assert kind.hourly_cost(c, attrs) == pytest.approx(running)
    assert kind.hourly_cost(c, {**attrs, "power": "stopped"}) == pytest.approx(stopped)
    assert kind.hourly_cost(c, {**attrs, "details": {**details, "flavor_id": "nope", "config": "nope",
                                                      "hostnode": "nope", "machine_type": "nope"}}) is None


def resource(spec: dict) -> Resource:
    return Resource(kind="valdi.vm", name="box", spec=spec, position=Position("m.yaml", 3, 5))


@pytest.mark.parametrize("provider, details, field, allowed", [
    (PROVIDER_C, {"config": "vcpu-8_memory-48g_nvidia-rtx-3090-2", "image_id": "nope", "ssh_key_id": "k"},
     "details.image_id", "2cd0e25f-a39e-4bc6-aa78-b4c40b87072a (Ubuntu 22.04 LTS)"),
    (PROVIDER_C, {"config": "vcpu-4", "image_id": "x", "ssh_key_id": "k"},
     "details.config", "vcpu-32_memory-192g_nvidia-rtx-3090-8"),
    (PROVIDER_B, {"hostnode": "b2ce5479-fa59-483f-86ba-0aa128051821", "gpu_model": "v100-pcie-16gb",
                  "operating_system": "Ubuntu 22.04 LTS", "gpu_count": 1, "vcpus": 8, "ram": 32, "storage": 100,
                  "password": "x"}, "details.gpu_model", "allowed: a100-pcie-80gb"),
    (PROVIDER_B, {"hostnode": "b2ce5479-fa59-483f-86ba-0aa128051821", "gpu_model": "a100-pcie-80gb",
                  "operating_system": "Ubuntu 22.04 LTS", "gpu_count": 9, "vcpus": 7, "ram": 32, "storage": 100,
                  "password": "x"}, "details.gpu_count", "allowed: 1 ... 8"),
    (PROVIDER_B, {"hostnode": "b2ce5479-fa59-483f-86ba-0aa128051821", "gpu_model": "a100-pcie-80gb",
                  "operating_system": "Ubuntu 22.04 LTS", "gpu_count": 1, "vcpus": 7, "ram": 32, "storage": 100,
                  "password": "x"}, "details.vcpus", "allowed: 2, 4, ... 128"),
    (PROVIDER_A, {"flavor_id": "94d76997", "ssh_key_id": "k"}, "details.flavor_id",
     "allowed: 94d76997-44ec-4f1e-8291-231de42b6030, b5917017"),
])
def test_check_names_the_field_and_the_allowed_values(sandbox_env, admin, provider, details, field, allowed):
    problems = VmKind().check(ctx(), [resource({"name": "box", "provider_id": provider, "details": details})])
    assert any(p.path == f"valdi.vm.box.spec.{field}" and allowed in p.message for p in problems), problems
    assert "POST /v1/vm/provision" not in api_calls(admin)


def test_check_sees_capacity_taken_by_others(sandbox_env, admin):
    c = ctx()
    key = c.api.create_ssh_key("k", None)["ssh_key_id"]
    four_gpus = {"flavor_id": "e3a7c2d1-58f4-4b9e-a6d0-7c1b2e3f4a59", "ssh_key_id": key}
    c.api.provision(PROVIDER_A, "theirs", four_gpus)  # the only one of that flavor
    problems = VmKind().check(ctx(), [resource({"name": "box", "provider_id": PROVIDER_A, "details": four_gpus})])
    assert [p.message for p in problems] == ["no capacity: 0 free, 1 needed"]


# -- volume folders ---------------------------------------------------------------------------
def test_a_folder_that_leaves_the_manifest_keeps_what_is_still_inside(sandbox_env, admin, tmp_path):
    (tmp_path / "a.txt").write_text("ours\n")
    kind, c = VolumeKind(), KindContext(api=PROVIDER.connect({}), base_dir=tmp_path)
    before = {"bucket_name": "b", "folders": ["raw", "empty", "gone"],
              "files": [{"path": "raw/a.txt", "source": "a.txt"}, {"path": "gone/a.txt", "source": "a.txt"}]}
    made = kind.create(c, before)
    admin.put("/_emulator/s3/valdi/8/b/empty/", content=b"")
    admin.put("/_emulator/s3/valdi/8/b/gone/theirs.txt", content=b"not ours")
    after = {"bucket_name": "b", "files": [{"path": "raw/a.txt", "source": "a.txt"}]}

    def observe():
        return kind.observe(ctx(), [Wanted("valdi.volume.v", made.id, after, before,
                                           base_dir=str(tmp_path))])["valdi.volume.v"]
    live = observe()
    diff = kind.diff(after, live, before)
    assert {c.path: c.new for c in diff.changes} == {
        "files.gone/a.txt": None, "folders.empty": None,
        "folders.raw": MARKER_ONLY, "folders.gone": MARKER_ONLY}  # raw/a.txt is still wanted, gone/ holds theirs
    kind.update(c, live, after, diff)
    left = {o["key"] for o in admin.get("/_emulator/s3/valdi").json()["objects"]}
    assert left == {"8/b/raw/a.txt", "8/b/gone/theirs.txt"}
    assert not kind.diff(after, observe(), after).changed


def test_a_public_key_file_holding_a_private_key_fails_offline_without_showing_it(tmp_path):
    (tmp_path / "id_ed25519").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n"
                                         "-----END OPENSSH PRIVATE KEY-----\n")
    (tmp_path / "ok.pub").write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG me@host\n")
    keys = [Resource(kind="valdi.ssh_key", name=n, spec={"name": n, "public_key_file": f},
                     position=Position("m.yaml", 3, 5), base_dir=str(tmp_path))
            for n, f in (("bad", "id_ed25519"), ("good", "ok.pub"))]
    (found,) = SshKeyKind().check_offline(keys)
    assert found.path == "valdi.ssh_key.bad.spec.public_key_file"
    assert "does not hold an OpenSSH public key" in found.message and "name the .pub file" in found.message
    assert "b3BlbnNz" not in str(found)


def test_every_valdi_secret_field_name_is_redacted():
    fields = ("password", "token", "access_token", "refresh_token", "private_key", "secret_access_key")
    assert redact({f: "s3cr3t" for f in fields}) == {f: "(redacted)" for f in fields}
