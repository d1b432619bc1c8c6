"""`reconciler doctor`: read-only checks of each configured service, against the emulator
over loopback HTTP: clean by default, each detectable quirk named, refused credentials one
line and exit 1, and not one write call (the emulator's request log says so)."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import httpx
import pytest
from conftest import FAST, cli

from reconciler.emulator import EmulatorConfig, EmulatorServer
from reconciler.emulator.core import SANDBOX

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
# the only POSTs doctor may send: they log in or search, and change nothing
READ_ONLY_POSTS = {"/account/login", "/account/refresh_token", "/api/v1/data_assets/search"}
SEEN_READ_ONLY = {  # quirks a read-only look can recognise (the others are about writes)
    "valohai-metadata-list", "valohai-metadata-absent", "valohai-stores-bare-list", "valdi-vm-status-case",
    "valdi-contents-s3-style", "valdi-contents-no-etag", "valdi-contents-plain", "valdi-catalog-no-unit-costs",
    "codeocean-no-archived", "valdi-contents-toplevel", "valdi-contents-object", "valdi-vm-listing-seed-fields",
    "valohai-tags-objects", "codeocean-no-external"}


@pytest.fixture(scope="module")
def applied(tmp_path_factory):
    """One emulator holding what the examples make, so every listing has items to check."""
    root = tmp_path_factory.mktemp("doctor")
    work = root / "examples"
    shutil.copytree(EXAMPLES, work, ignore=shutil.ignore_patterns(".reconciler", ".secrets"))
    server = EmulatorServer(data_dir=root / "emulator", config=EmulatorConfig(**FAST)).start()
    with pytest.MonkeyPatch.context() as mp:
        for key, value in server.env().items():
            mp.setenv(key, value)
        code, out = cli("--state", str(root / "state.json"), "apply", str(work), "--auto-approve")
        assert code == 0, out
    try:
        yield server, work
    finally:
        server.stop()


@pytest.fixture
def env(applied, monkeypatch):
    server, work = applied
    for key, value in server.env().items():
        monkeypatch.setenv(key, value)
    with httpx.Client(base_url=server.url, timeout=30) as admin:
        admin.post("/_emulator/config", json={"quirks": []}).raise_for_status()
        admin.delete("/_emulator/requests").raise_for_status()
        yield admin, work
        admin.post("/_emulator/config", json={"quirks": []})


def writes(admin: httpx.Client) -> list[str]:
    log = admin.get("/_emulator/requests", params={"full": "1"}).json()["log"]
    return [f"{e['method']} {e['path']}" for e in log
            if e["method"] not in ("GET", "HEAD") and e["path"] not in READ_ONLY_POSTS]


def test_doctor_is_clean_against_the_emulator_and_makes_no_write_call(env):
    admin, work = env
    code, out = cli("doctor", str(work))
    assert code == 0, out
    assert "All checks passed." in out and "problem" not in out
    assert {"valdi", "valohai", "codeocean"} <= set(re.findall(r"^ok: (\w+):", out, re.M))
    counts = admin.get("/_emulator/requests").json()["counts"]
    assert counts.get("POST /account/refresh_token") == 1  # refresh is checked, not only login
    assert counts.get("GET /volume/{id}") == 1  # a volume's contents are looked at
    assert writes(admin) == []


@pytest.mark.parametrize("quirk", sorted(SEEN_READ_ONLY))
def test_doctor_names_the_quirk_a_shape_matches(env, quirk):
    admin, work = env
    admin.post("/_emulator/config", json={"quirks": [quirk]}).raise_for_status()
    code, out = cli("doctor", str(work), "--format", "json")
    report = json.loads(out)
    assert code == 0 and report["ok"] is True, out  # the providers read every one of these shapes
    assert report["quirks_seen"] == [quirk]
    assert writes(admin) == []


def test_refused_credentials_are_one_line_and_exit_1(env, monkeypatch):
    _, work = env
    monkeypatch.setenv("VALDI_PASSWORD", "not-the-password-1234")
    monkeypatch.setenv("VALOHAI_TOKEN", "not-a-token-98765")
    code, out = cli("doctor", str(work))
    assert code == 1, out
    problems = [line for line in out.splitlines() if line.startswith("problem: ")]
    assert [p.split(":")[1].strip() for p in problems] == ["valdi", "valohai"]  # one line each
    assert "not-the-password-1234" not in out and "not-a-token-98765" not in out
    assert "ok: codeocean" in out


def test_the_json_report_carries_no_ids_and_no_secrets(env, monkeypatch):
    admin, work = env
    admin.post("/_emulator/config", json={"quirks": ["valdi-contents-plain"]}).raise_for_status()
    monkeypatch.setenv("VALOHAI_TOKEN", "vh-wrong-token-abcdef")
    code, out = cli("doctor", str(work), "--format", "json")
    assert code == 1
    report = json.loads(out)
    assert report["services"]["valohai"]["ok"] is False and report["services"]["valdi"]["ok"] is True
    assert not re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-", out)  # no uuid
    for secret in ("vh-wrong-token-abcdef", SANDBOX["valdi_password"], SANDBOX["valdi_email"],
                   SANDBOX["codeocean_token"], SANDBOX["codeocean_email"], "127.0.0.1"):
        assert secret not in out


def test_doctor_names_a_vm_state_it_does_not_know(env):
    """A VM being provisioned under a word the documents do not list (`pending`): a note
    naming the shape, not "All checks passed" and not a problem."""
    admin, work = env
    admin.post("/_emulator/config", json={"quirks": ["valdi-vm-state-unrecognised"],
                                          "vm_provision_delay": 600}).raise_for_status()
    valdi = httpx.Client(base_url=admin.base_url, timeout=30)
    token = valdi.post("/account/login", json={"email": SANDBOX["valdi_email"],
                                               "password": SANDBOX["valdi_password"]}).json()["access_token"]
    valdi.headers["Authorization"] = f"Bearer {token}"
    key = valdi.get("/sshkeys").json()["ssh_keys"][0]["ssh_key_id"]
    server = valdi.post("/v1/vm/provision", json={
        "provider_id": "a45088e0-1681-446e-9a3e-3ed9dfc3d57e", "user_provided_name": "doctor-pending",
        "details": {"flavor_id": "94d76997-44ec-4f1e-8291-231de42b6030", "ssh_key_id": key}}).json()["server"]
    try:
        code, out = cli("doctor", str(work), "--format", "json")
        report = json.loads(out)
        assert code == 0 and report["ok"] is True, out
        assert report["quirks_seen"] == ["valdi-vm-state-unrecognised"], out
    finally:
        admin.post("/_emulator/config", json={"quirks": [], "vm_provision_delay": FAST["vm_provision_delay"]})
        valdi.post(f"/v1/vm/destroy/{server}")
        valdi.close()
