"""Saved plans cannot be forged: a plan file is signed (HMAC-SHA256) with a key that is
never in the file; `apply PLANFILE` and `show` check the signature before reading
anything else and refuse an unsigned, edited or foreign-keyed file with one line and no
API call. Secret values are pinned only under a configured key; the files are 0600."""
from __future__ import annotations

import hashlib
import hmac
import json
import stat

import pytest
from conftest import api_calls, cli
from test_variables import SECRET, infra  # noqa: F401 - the fixture: a sensitive variable in a datum


@pytest.fixture(autouse=True)
def plan_key(monkeypatch):
    monkeypatch.setenv("RECONCILER_PLAN_KEY", "the-ci-secret-0123456789")


def saved_plan(infra, tmp_path):
    plan = tmp_path / "p.plan"
    code, out = infra.plan("--var", "owner=ml", "-o", str(plan))
    assert code == 0, out
    return plan


def apply(infra, plan) -> tuple[int, str]:
    return cli("--state", str(infra.path / "state.json"), "apply", str(plan))


def test_a_plan_file_is_private_signed_and_applies(infra, tmp_path):
    plan = saved_plan(infra, tmp_path)
    assert stat.S_IMODE(plan.stat().st_mode) == 0o600
    text = plan.read_text()
    assert text.startswith("reconciler-plan 2 key=RECONCILER_PLAN_KEY hmac-sha256=")
    assert SECRET not in text and "the-ci-secret" not in text
    code, out = apply(infra, plan)
    assert code == 0, out


def forge_owner(text: str) -> str:
    """What the issue's attacker did: change a recorded value in the body, keep the header."""
    header, body = text.split("\n", 1)
    doc = json.loads(body)
    doc["options"]["variables"]["owner"] = "EVIL-full-tamper"
    return header + "\n" + json.dumps(doc, indent=1, sort_keys=True) + "\n"


@pytest.mark.parametrize("damage, fragment", [
    (forge_owner, "signature does not match (it was changed after it was made"),
    (lambda text: text.split("\n", 1)[1], "the plan file is not signed"),
    (lambda text: "reconciler-plan 2 key=RECONCILER_PLAN_KEY sha1=00\n" + text.split("\n", 1)[1],
     "not a reconciler plan file"),
], ids=["edited-body", "unsigned", "bad-header"])
def test_a_forged_or_unsigned_plan_is_refused_in_one_line_before_any_call(infra, tmp_path, admin, damage, fragment):
    plan = saved_plan(infra, tmp_path)
    plan.write_text(damage(plan.read_text()))
    before = api_calls(admin)
    for command in ("apply", "show"):
        code, out = cli("--state", str(infra.path / "state.json"), command, str(plan))
        assert code == 1, out
        assert len(out.strip().splitlines()) == 1 and str(plan) in out and fragment in out, out
        assert "Traceback" not in out and "EVIL" not in out
    assert api_calls(admin) == before


def test_a_plan_signed_with_another_key_is_refused_naming_the_key(infra, tmp_path, monkeypatch, admin):
    plan = saved_plan(infra, tmp_path)
    monkeypatch.setenv("RECONCILER_PLAN_KEY", "another-key-entirely-000")
    before = api_calls(admin)
    code, out = apply(infra, plan)
    assert code == 1 and "signature does not match" in out and "RECONCILER_PLAN_KEY" in out, out
    assert api_calls(admin) == before


def test_the_key_can_come_from_the_state_key(infra, tmp_path, monkeypatch):
    monkeypatch.delenv("RECONCILER_PLAN_KEY")
    monkeypatch.setenv("RECONCILER_STATE_KEY", "state-key-for-ci-0123456789")
    plan = saved_plan(infra, tmp_path)
    assert "key=RECONCILER_STATE_KEY " in plan.read_text().splitlines()[0]
    assert "state-key-for-ci" not in plan.read_text()
    code, out = apply(infra, plan)
    assert code == 0, out


def test_secret_pins_cannot_be_guessed_from_the_file(infra, tmp_path):
    """The old pins were HMAC(salt stored beside them, value): a word list found the secret."""
    plan = saved_plan(infra, tmp_path)
    body = json.loads(plan.read_text().split("\n", 1)[1])
    nonce = body["inputs"]["salt"]
    words = ["password", "hunter2", SECRET, "letmein"]
    guesses = {hmac.new(bytes.fromhex(nonce), json.dumps(w).encode(), hashlib.sha256).hexdigest()[:32]
               for w in words} | {hashlib.sha256(json.dumps(w).encode()).hexdigest()[:32] for w in words}
    pins = set(body["inputs"]["pins"].values()) | {json.dumps(v) for v in body["options"]["variables"].values()}
    assert body["inputs"]["pins"] and not any(g in p for g in guesses for p in pins)
    assert "$salt" not in plan.read_text()


def test_without_a_configured_key_secrets_are_not_pinned_and_plan_and_show_say_so(infra, tmp_path, monkeypatch):
    monkeypatch.delenv("RECONCILER_PLAN_KEY")
    plan = saved_plan(infra, tmp_path)
    body = json.loads(plan.read_text().split("\n", 1)[1])
    assert body["options"]["variables"]["token"] == {"$unpinned": True}
    assert not [k for k in body["inputs"]["pins"] if "ingest_ref" in k]
    assert plan.read_text().startswith("reconciler-plan 2 key=machine ")  # still signed: this machine's key
    code, out = cli("show", str(plan))
    assert code == 0 and "a secret changed before apply will not be detected" in out, out
    code, out = infra.plan("--var", "owner=ml", "-o", str(tmp_path / "again.plan"))
    assert "a secret changed before apply will not be detected" in out
    code, out = apply(infra, plan)
    assert code == 0, out


def test_a_plan_file_that_cannot_be_written_is_one_line(infra, tmp_path):
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where a folder should be")
    code, out = infra.plan("--var", "owner=ml", "-o", str(blocked / "p.plan"))
    assert code == 1 and "cannot write the plan file" in out.strip().splitlines()[-1], out
    assert "internal error" not in out
