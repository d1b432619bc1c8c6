"""The VALDI client and kinds called directly against a live emulator: token refresh and
re-login, credentials never in errors, and what a crash in the middle of a create leaves
(a generated key's private key, a volume's access keys) said plainly, not hidden."""
from __future__ import annotations

import time

import pytest

from conftest import api_calls
from reconciler.emulator.core import SANDBOX
from reconciler.errors import AuthError
from reconciler.providers.base import KindContext, Wanted
from reconciler.providers.valdi import PROVIDER
from reconciler.providers.valdi.client import token_expiry
from reconciler.providers.valdi.ssh_key import SshKeyKind
from reconciler.providers.valdi.volume import VolumeKind


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
    assert made.outputs["private_key"].startswith("-----BEGIN")
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
    assert found is not None and found.outputs["secret_access_key"] is None
    assert not kind.diff(spec, found, None).changed  # no change it could never make
    assert any("returned only when it is created" in n for n in kind.plan_notes(spec, found, None))


def test_a_missing_credentials_file_is_rewritten_from_the_state(sandbox_env, tmp_path):
    kind = VolumeKind()
    spec = {"bucket_name": "keys", "credentials_file": "creds"}
    made = kind.create(KindContext(api=PROVIDER.connect({}), base_dir=tmp_path), spec)
    (tmp_path / "creds").unlink()
    secrets = {k: made.outputs[k] for k in ("access_key_id", "secret_access_key")}
    live = kind.observe(ctx(), [Wanted("valdi.volume.v", made.id, spec, spec, base_dir=str(tmp_path),
                                       secrets=secrets)])["valdi.volume.v"]
    diff = kind.diff(spec, live, spec)
    assert [c.path for c in diff.changes] == ["credentials_file"]
    kind.update(KindContext(api=PROVIDER.connect({}), base_dir=tmp_path), live, spec, diff)
    assert secrets["secret_access_key"] in (tmp_path / "creds").read_text()


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
