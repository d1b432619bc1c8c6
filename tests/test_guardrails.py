"""Guardrails (issue 29) through the CLI against the emulator, with an injected clock:
every policy kind denies (exit 3) and warns (exit 0) in text, JSON and Markdown; a denied
plan applies nothing, saved or not; an override is recorded with who, which and why; an
expiry is carried out by `watch --once --auto-apply`; a power-schedule window covering
now stops the VM with no drift; bad policy input is one line."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from conftest import Infra, api_calls, cli

from reconciler.cli import common
from reconciler.render.values import code as md_code

KEY = (Path(__file__).resolve().parent.parent / "examples" / "keys" / "deploy.pub").read_text()
START = datetime(2026, 12, 3, 12, 0, tzinfo=timezone.utc)  # a Thursday, 14:00 in Helsinki


class Clock:
    """The injected clock: tests move it; nothing reads the wall clock."""

    def __init__(self, now: datetime = START):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


def manifest(policies: str = "", vm_extra: str = "", power: str = "running") -> str:
    return f"""
providers:
  valdi: {{email: "${{env.VALDI_EMAIL}}", password: "${{env.VALDI_PASSWORD}}"}}
{policies}
resources:
  - kind: valdi.ssh_key
    name: deploy
    spec: {{name: deploy, public_key_file: deploy.pub}}
  - kind: valdi.vm
    name: trainer
    spec:
      name: trainer
      provider_id: a45088e0-1681-446e-9a3e-3ed9dfc3d57e
      details: {{flavor_id: 94d76997-44ec-4f1e-8291-231de42b6030, ssh_key_id: "${{valdi.ssh_key.deploy.id}}"}}
      power: {power}
{vm_extra}"""


@pytest.fixture
def clock(monkeypatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(common, "clock", c)
    return c


@pytest.fixture
def infra(tmp_path, sandbox_env, clock):
    d = tmp_path / "infra"
    d.mkdir()
    (d / "deploy.pub").write_text(KEY)

    def make(text: str) -> Infra:
        (d / "m.yaml").write_text(text)
        return Infra(d, "m.yaml")
    return make


def vms(admin) -> list[dict]:
    return admin.get("/_emulator/docs/valdi_vm").json()["items"]


# -- every policy kind, deny and warn, three formats ---------------------------------------
# (rule, what makes the one VM fail it, a word of the message)
RULES = [
    ("budget", "budget: {max_hourly_usd: 0.5}", "over the $0.50/hour budget"),
    ("gpus", "gpus: {allowed: [a100-pcie-80gb]}", "RTX A6000 48GB is not allowed"),
    ("require", "require: {kind: valdi.vm, fields: [details.ipv4]}", "missing fields details.ipv4"),
    ("deny_if", "kind: valdi.vm\n    deny_if: \"action == 'create' && cost.after > 0.5\"", "deny_if matched"),
    ("ttl", "ttl: {kind: valdi.vm, max: 24h}", "no expires:"),
]


@pytest.mark.parametrize("enforcement", ["deny", "warn"])
@pytest.mark.parametrize("rule,body,said", RULES, ids=[r[0] for r in RULES])
def test_each_policy_kind_denies_or_warns_in_text_json_and_markdown(infra, tmp_path, rule, body, said, enforcement):
    work = infra(manifest(f"policies:\n  - name: the-{rule}\n    enforcement: {enforcement}\n    {body}\n"))
    code, text = work.plan("-o", str(tmp_path / "p.bin"))
    assert code == (3 if enforcement == "deny" else 0), text
    mark = "DENY" if enforcement == "deny" else "WARN"
    assert f"[{mark}] the-{rule}" in text and said in text, text
    # the Policies section is above the actions
    assert text.index("Policies:") < text.index("Reconciler will perform these actions")
    assert ("Denied by policy: the-" in text) is (enforcement == "deny")
    code, out = cli("show", str(tmp_path / "p.bin"), "--format", "json")
    body_ = json.loads(out)
    (result,) = [r for r in body_["policy_results"] if r["name"] == f"the-{rule}"][:1]
    assert result["passed"] is False and result["enforcement"] == enforcement and said in result["message"]
    assert body_["denied"] is (enforcement == "deny")
    code, md = cli("show", str(tmp_path / "p.bin"), "--format", "markdown")
    assert f"| {mark} | {md_code(f'the-{rule}')}" in md
    assert md.index("**Policies**") < md.index("Plan:") if "Plan:" in md else True


def test_require_properties_and_tags_read_the_spec_after_the_change():
    from reconciler.config.model import Position, Resource
    from reconciler.config.policies import Policy
    from reconciler.engine import policies
    from reconciler.engine.planner import PlanResult, Step
    from reconciler.plan.model import Action, ActionType, Plan

    def step(address: str, spec: dict) -> Step:
        return Step(Action(address, "valohai.datum", ActionType.CREATE, []),
                    Resource("valohai.datum", address.rsplit(".", 1)[1], spec, Position("m", 1, 1)), None, None,
                    spec=spec)
    steps = {"valohai.datum.a": step("valohai.datum.a", {"properties": {"owner": "x", "cost_center": "7"},
                                                           "tags": ["team"]}),
             "valohai.datum.b": step("valohai.datum.b", {"properties": {"owner": ""}})}
    result = PlanResult(Plan(actions=[s.action for s in steps.values()]), steps, {})
    facts = policies.Facts(result, {}, lambda k: None, START, {}, {})
    rule = Policy("owners", "require", {"kind": "valohai.datum", "properties": ["owner", "cost_center"],
                                        "tags": ["team"]}, Position("p", 1, 1), enforcement="warn")
    (failed,) = policies.evaluate([rule], facts)
    assert failed.address == "valohai.datum.b" and not failed.passed and failed.enforcement == "warn"
    assert failed.values["missing"] == {"properties": ["owner", "cost_center"], "tags": ["team"]}


def test_protect_denies_a_destroy_and_warns_when_asked(infra, admin):
    work = infra(manifest())
    assert work.apply()[0] == 0
    for enforcement, expected in (("deny", 3), ("warn", 0)):
        work.manifest.write_text(manifest(f"policies:\n  - name: keep-vms\n    enforcement: {enforcement}\n"
                                          "    protect: {kind: valdi.vm}\n"))
        code, out = work._run("plan", "--destroy", "--format", "json")
        assert code == expected, out
        body = json.loads(out)
        (r,) = [r for r in body["policy_results"] if r["name"] == "keep-vms"]
        assert r["address"] == "valdi.vm.trainer" and r["values"] == {"action": "delete"}
    code, out = work._run("destroy", "--auto-approve")
    assert code == 0 and len(vms(admin)) == 0, out  # warn: never changes the outcome



def test_protect_naming_no_resource_is_said_and_blocks_nothing(infra, admin):
    """A typo in protect's address protected nothing in silence; now the plan says so (a
    warning with the closest address), and the exit code is the plan's own."""
    work = infra(manifest("policies:\n  - name: keep-trainer\n    protect: {address: valdi.vm.trainr}\n"))
    code, out = work.plan("--detailed-exitcode")
    assert code == 2, out  # changes to make; not denied (3)
    assert "valdi.vm.trainr is neither in the manifests nor in the state: this protects nothing; " \
           "did you mean valdi.vm.trainer?" in out, out
    assert work.apply()[0] == 0
    work.manifest.write_text(manifest("policies:\n  - name: keep-trainer\n    protect: {address: valdi.vm.trainer}\n"))
    code, out = work._run("plan", "--format", "json")
    (r,) = [r for r in json.loads(out)["policy_results"] if r["name"] == "keep-trainer"]
    assert r["passed"], r  # the right address: no warning

# -- a denied plan applies nothing; an override is recorded ---------------------------------
BUDGET = "policies:\n  - name: gpu-budget\n    budget: {max_hourly_usd: 0.5, max_monthly_increase_usd: 100}\n"


def test_a_denied_plan_exits_3_and_applies_nothing_saved_or_not(infra, admin, tmp_path):
    work = infra(manifest(BUDGET))
    code, out = work.apply()
    assert code == 3 and "Denied by policy: gpu-budget" in out and "Nothing was applied" in out, out
    code, out = work.plan("-o", str(tmp_path / "p.bin"))
    assert code == 3
    admin.delete("/_emulator/requests")
    code, out = cli("--state", str(work.path / "state.json"), "apply", str(tmp_path / "p.bin"))
    assert code == 3 and "gpu-budget" in out, out
    assert vms(admin) == [] and not any(k.startswith("POST /v1") or k.startswith("POST /sshkeys")
                                        for k in api_calls(admin)), api_calls(admin)
    assert not (work.path / "state.json").exists() or work.state()["resources"] == {}


def test_an_override_applies_and_records_who_which_and_why(infra, admin, tmp_path):
    work = infra(manifest(BUDGET))
    code, out = work.apply("--override-policy", "gpu-nudget", "--reason", "x")
    assert code == 1 and "no such policy" in out  # a typo never passes silently
    code, out = work.apply("--override-policy", "gpu-budget")
    assert code == 1 and "--reason" in out
    code, out = work.apply("--override-policy", "gpu-budget", "--reason", "the quarterly training run")
    assert code == 0 and "[OVERRIDDEN] gpu-budget" in out, out
    assert len(vms(admin)) == 1
    (event,) = [e for e in work.state()["events"] if e["event"] == "policy_override"]
    assert event["policies"] == ["gpu-budget"] and event["reason"] == "the quarterly training run"
    assert "@" in event["overridden_by"] and event["at"] == "2026-12-03T12:00:00Z"
    code, out = cli("--state", str(work.path / "state.json"), "state", "events", str(work.path))
    assert code == 0 and "policy_override" in out and "reason=the quarterly training run" in out, out


def test_an_override_given_with_the_plan_is_kept_in_the_plan_file_and_honoured(infra, admin, tmp_path):
    work = infra(manifest(BUDGET))
    plan_file = tmp_path / "p.bin"
    code, out = work.plan("-o", str(plan_file), "--override-policy", "gpu-budget", "--reason", "approved in #42")
    assert code == 0, out
    (saved,) = json.loads(plan_file.read_text().split("\n", 1)[1])["overrides"]  # after the signed header
    assert saved["policies"] == ["gpu-budget"] and saved["reason"] == "approved in #42" and saved["who"]
    code, out = cli("--state", str(work.path / "state.json"), "apply", str(plan_file))
    assert code == 0 and len(vms(admin)) == 1, out
    assert [e["reason"] for e in work.state()["events"] if e["event"] == "policy_override"] == ["approved in #42"]


# -- expiry ---------------------------------------------------------------------------------
def test_a_5_second_expiry_is_carried_out_by_watch_once_auto_apply(infra, admin, clock):
    work = infra(manifest(vm_extra="    expires: {after: 5s}\n"))
    code, out = work.plan()
    assert code == 0 and "valdi.vm.trainer: expires in 5s (at 2026-12-03T12:00:05Z; then destroy)" in out, out
    assert work.apply()[0] == 0 and len(vms(admin)) == 1
    assert work.state()["resources"]["valdi.vm.trainer"]["expires_at"] == "2026-12-03T12:00:05Z"
    watch = ("--state", str(work.path / "state.json"), "watch", str(work.path), "--once", "--auto-apply")
    code, out = cli(*watch)
    assert code == 0 and len(vms(admin)) == 1, out  # not yet
    clock.advance(seconds=6)
    code, out = cli(*watch, "--log-format", "json")
    assert code == 0, out
    assert vms(admin) == []
    state = work.state()
    assert "valdi.vm.trainer" not in state["resources"] and "valdi.vm.trainer" in state["expired"]
    code, out = work.plan("--detailed-exitcode")  # not made again until extended
    assert code == 0 and "expired and destroyed at 2026-12-03T12:00:06Z" in out, out
    code, out = cli("--state", str(work.path / "state.json"), "extend", "valdi.vm.trainer", "1h", str(work.path))
    assert code == 0, out
    code, out = work.plan("--detailed-exitcode")
    assert code == 2 and "valdi.vm.trainer will be created" in out


def test_a_failed_expiry_teardown_is_reported_kept_and_carried_out_by_the_next_run(infra, admin, clock,
                                                                                     monkeypatch):
    """VALDI answers the destroy with 500s until the retry budget is spent: the watch run
    says which resource failed and exits 1, the VM stays managed (not marked expired), and
    the next run carries the teardown out."""
    from reconciler.providers import budget

    slept: list[float] = []
    monkeypatch.setattr(budget, "sleep", slept.append)  # the backoff is taken, not waited
    work = infra(manifest(vm_extra="    expires: {after: 5s}\n"))
    assert work.apply()[0] == 0 and len(vms(admin)) == 1
    clock.advance(seconds=6)
    admin.post("/_emulator/faults", json={"pattern": "POST /v1/vm/destroy/", "kinds": [500], "times": 50})
    watch = ("--state", str(work.path / "state.json"), "watch", str(work.path), "--once", "--auto-apply",
             "--log-format", "json")
    code, out = cli(*watch)
    assert code == 1, out
    failed = [json.loads(line) for line in out.splitlines() if line.startswith("{") and "valdi.vm.trainer" in line
              and "fail" in line]
    assert failed, out
    assert len(vms(admin)) == 1 and "valdi.vm.trainer" in work.state()["resources"]
    destroys = api_calls(admin)["POST /v1/vm/destroy/{id}"]
    assert 1 < destroys <= 8 and len(slept) >= destroys - 1, (destroys, slept)  # retried within one budget, backed off
    admin.delete("/_emulator/faults")
    code, out = cli(*watch)
    assert code == 0, out
    assert vms(admin) == [] and "valdi.vm.trainer" in work.state()["expired"]


def test_extend_moves_the_deadline_and_watch_gives_notices_before_it(infra, admin, clock):
    work = infra(manifest(vm_extra="    expires: {after: 3h, action: stop}\n"))
    assert work.apply()[0] == 0
    state = ("--state", str(work.path / "state.json"))
    code, out = cli(*state, "extend", "valdi.vm.trainer", "1h", str(work.path))
    assert code == 0 and "2026-12-03T16:00:00Z" in out, out
    (event,) = [e for e in work.state()["events"] if e["event"] == "extend"]
    assert event["before"] == "2026-12-03T15:00:00Z" and event["after"] == "2026-12-03T16:00:00Z"
    def notices() -> list[dict]:
        code, out = cli(*state, "watch", str(work.path), "--once", "--interval", "5m", "--log-format", "json")
        assert code == 0, out
        return [json.loads(line) for line in out.splitlines() if '"expiry_notice"' in line]
    clock.advance(hours=1, minutes=50)  # 2 h 10 min left
    assert notices() == []
    clock.advance(minutes=13)  # 1 h 57 min left: the 2 h notice, from the run in the 5 min after it
    assert [n["address"] for n in notices()] == ["valdi.vm.trainer"]
    clock.advance(minutes=5)  # the next cron run says nothing more
    assert notices() == []
    clock.advance(minutes=85)  # 27 min left: the 30 min notice
    assert len(notices()) == 1
    clock.advance(hours=1)  # past the deadline: action stop, not destroy
    assert cli(*state, "watch", str(work.path), "--once", "--auto-apply")[0] == 0
    (vm,) = vms(admin)
    assert vm["state"] == "stopped"
    code, out = cli(*state, "drift", str(work.path))
    assert code == 0, out


def test_prevent_destroy_keeps_an_expired_resource(infra, admin, clock):
    work = infra(manifest(vm_extra="    expires: {after: 1h}\n    lifecycle: {prevent_destroy: true}\n"))
    assert work.apply()[0] == 0
    clock.advance(hours=2)
    code, out = cli("--state", str(work.path / "state.json"), "watch", str(work.path), "--once", "--auto-apply")
    assert code == 0 and len(vms(admin)) == 1, out
    code, out = work.plan("--detailed-exitcode")
    assert code == 0 and "prevent_destroy keeps it" in out, out


# -- power schedules ------------------------------------------------------------------------
NIGHTS = "    schedule: [{power: stopped, cron: \"0 20 * * 1-5\", duration: 12h, timezone: Europe/Helsinki}]\n"


def test_a_schedule_window_covering_now_stops_the_vm_and_that_is_no_drift(infra, admin, clock):
    clock.now = datetime(2026, 12, 3, 19, 0, tzinfo=timezone.utc)  # Thursday 21:00 in Helsinki
    work = infra(manifest(vm_extra=NIGHTS))
    code, out = work._run("plan", "--format", "json")
    (note,) = json.loads(out)["time_notes"]
    assert note["values"]["power"] == "stopped" and note["values"]["next_change"] == "2026-12-04T06:00:00Z"
    # 60 of 168 hours stopped: $0.66 running, $0.10 stopped
    assert note["values"]["monthly_saved"] == pytest.approx((0.66 - 0.10) * 60 / 168 * 730, abs=0.01)
    assert work.apply()[0] == 0
    (vm,) = vms(admin)
    assert vm["state"] == "stopped"
    code, out = work._run("drift")
    assert code == 0, out
    code, out = work.plan("--detailed-exitcode")
    assert code == 0 and "schedule: stopped (window stopped from cron '0 20 * * 1-5' for 12h" in out, out
    clock.advance(hours=12)  # Friday 09:00 in Helsinki: outside the window, the spec's power
    code, out = work.plan("--detailed-exitcode")
    assert code == 2 and "power" in out and "the VM will be started" in out, out
    assert cli("--state", str(work.path / "state.json"), "watch", str(work.path), "--once", "--auto-apply")[0] == 0
    assert vms(admin)[0]["state"] == "running"


def test_budget_counts_only_the_hours_a_scheduled_vm_runs(infra, clock):
    budget = "policies:\n  - name: b\n    budget: {max_hourly_usd: 0.5}\n"
    assert infra(manifest(budget))._run("plan")[0] == 3  # $0.66 running all week
    code, out = infra(manifest(budget, vm_extra=NIGHTS))._run("plan")
    assert code == 0 and "[ok] b: within budget: $0.46/hour" in out, out


# -- bad input: one line, exit 1, no API call -----------------------------------------------
BAD = [
    ("policies:\n  - name: x\n    deny_if: \"after.name ==\"\n", "3:5", "does not compile"),
    ("policies:\n  - name: x\n    deny_if: \"spec.name == 'a'\"\n", "3:5", "names spec"),
    ("policies:\n  - name: x\n    require: {kind: valdi.vmm, fields: [name]}\n", "2:5", "unknown kind 'valdi.vmm'"),
    ("policies:\n  - name: x\n    budget: {max_hourly: 3}\n", "3:14", "max_hourly"),
    ("policies:\n  - name: x\n    budget: {max_hourly_usd: 3}\n    ttl: {kind: valdi.vm, max: 1h}\n", "2:5",
     "exactly one rule"),
    ("policies: [\n", "", "policies"),
    # a kind of a service the manifests do not use is still checked (codeocean's kinds are loaded)
    ("policies:\n  - name: x\n    protect: {kind: codeocean.data_aset}\n", "2:5",
     "unknown kind 'codeocean.data_aset'; did you mean 'codeocean.data_asset'"),
    # policies: must be a list: a mapping, a string or nothing is no policy at all
    ("policies: {name: x, protect: {kind: valdi.vm}}\n", "1:", "policies: expected a list of policies"),
    ("policies: protect everything\n", "1:", "policies: expected a list of policies"),
    ("policies:\n", "1:", "policies: expected a list of policies"),
    # a function this CEL lacks: at load, not as a deny when a change is evaluated
    ("policies:\n  - name: x\n    deny_if: \"after.name.lowerAscii() == 'a'\"\n", "3:5",
     "calls lowerAscii(), which CEL here does not have"),
    ("policies:\n  - name: x\n    require: {kind: valdi.vm}\n", "3:5", "require needs at least one of"),
    ("policies:\n  - name: x\n    ttl: {kind: valdi.vm, max: 99999999999999999d}\n", "3:", "over the limit"),
    # an address's kind is a kind named: with a typo it protected nothing
    ("policies:\n  - name: x\n    protect: {address: valdi.vn.x}\n", "2:5",
     "unknown kind 'valdi.vn'; did you mean 'valdi.vm'?"),
    ("policies:\n  - name: x\n    protect: {address: 'valdi.vn.x[k]'}\n", "2:5", "unknown kind 'valdi.vn'"),
    # an error past column 65,535 made the CEL library panic: a traceback
    ("policies:\n  - name: x\n    deny_if: \"" + "x" * 70000 + " ==\"\n", "3:5",
     "a CEL expression of 70,003 characters; the limit is 10,000"),
    # 100 parentheses pass the library's nesting limit: one short line, not the whole expression
    ("policies:\n  - name: x\n    deny_if: \"" + "(" * 100 + "true" + ")" * 100 + "\"\n", "3:5",
     "does not compile: Failed to parse expression '((((("),
]


@pytest.mark.parametrize("text,where,said", BAD, ids=["cel", "cel-name", "kind", "field", "two-rules", "yaml",
                                                      "kind-of-unused-service", "policies-mapping",
                                                      "policies-string", "policies-empty", "cel-function",
                                                      "require-nothing", "ttl-huge", "protect-address-kind",
                                                      "protect-instance-address-kind", "cel-long", "cel-deep"])
def test_bad_policy_input_is_one_line_with_file_and_line(infra, admin, tmp_path, text, where, said):
    work = infra(manifest())
    bad = tmp_path / "org-policies.yaml"
    bad.write_text(text)
    admin.delete("/_emulator/requests")
    code, out = work.plan("--policy-file", str(bad))
    lines = out.strip().splitlines()
    assert code == 1 and len(lines) == 1 and lines[0].startswith(f"Error: {bad}:{where}"), out
    assert said in lines[0] or (said == "policies" and "org-policies.yaml" in lines[0]), out
    assert len(lines[0]) < 500, out
    assert api_calls(admin) == {}


def test_a_policy_file_naming_kinds_of_services_the_manifests_do_not_use_is_accepted(infra, admin, tmp_path,
                                                                                      monkeypatch):
    # an organisation's file covers every service; this folder uses VALDI only, and has no
    # Code Ocean or Valohai credentials
    for name in [k for k in sandbox_names() if k.startswith(("CODEOCEAN", "VALOHAI"))]:
        monkeypatch.delenv(name, raising=False)
    org = tmp_path / "org.yaml"
    org.write_text("policies:\n  - name: keep-capsules\n    protect: {kind: codeocean.data_asset}\n"
                   "  - name: datum-owner\n    require: {kind: valohai.datum, properties: [owner]}\n"
                   "  - name: no-datum-deletes\n    kind: valohai.datum\n    deny_if: \"action == 'delete'\"\n")
    code, out = infra(manifest()).plan("--policy-file", str(org))
    assert code == 0, out
    assert "[ok] keep-capsules" in out and "[ok] datum-owner" in out and "[ok] no-datum-deletes" in out, out
    # only VALDI was asked anything (its routes live under /api/ and /account/ in the emulator)
    assert not [route for route in api_calls(admin) if "codeocean" in route.lower() or "valohai" in route.lower()
                or "/api/v1/" in route or "/api/v0/" in route], api_calls(admin)


def sandbox_names() -> list[str]:
    from reconciler.emulator.server import sandbox_env

    return list(sandbox_env("http://127.0.0.1:1"))


@pytest.mark.parametrize("expression,said", [("after.name", "a string"), ("cost.after", "a number"),
                                               ("before", "null")])
def test_a_deny_if_that_is_not_a_boolean_denies(infra, expression, said):
    # fail closed: a guardrail that cannot say yes or no stops the plan, saying why
    work = infra(manifest(f"policies:\n  - name: odd\n    kind: valdi.vm\n    deny_if: \"{expression}\"\n"))
    code, out = work.plan()
    assert code == 3, out
    assert "[DENY] odd" in out and f"deny_if gave {said}, not a boolean" in out, out


def test_extending_a_deadline_past_the_calendar_is_a_state_error_not_an_overflow():
    from reconciler.config import durations
    from reconciler.engine import expiry
    from reconciler.errors import StateError
    from reconciler.state.base import ResourceState, StateDoc

    state = StateDoc(resources={"valdi.vm.a": ResourceState("valdi.vm", "1", expires_at="9990-01-01T00:00:00Z")})
    with pytest.raises(StateError, match="past the end of the calendar"):
        expiry.extend(state, "valdi.vm.a", durations.MAX, START)


# -- CEL: a macro binds its variable; every function CEL_FUNCTIONS lists evaluates -------------
CHANGE = {"action": "create", "kind": "valdi.vm", "address": "valdi.vm.a", "before": None,
          "after": {"name": "a", "details": {"flavor_id": "f", "ipv4": True}}, "cost": {"before": None, "after": 0.5}}
MACROS = [
    "after.details.exists(k, k == 'flavor_id')",
    "after.details.all(k, k != 'gpu')",
    "after.details.exists_one(k, k == 'flavor_id')",
    "after.details.map(k, k + '!').size() == 2",
    "after.details.filter(k, k.startsWith('f')).size() == 1",
    "[1, 2].all(action, action > 0) && action == 'create'",  # a macro's variable may hide a change's name
    "after.details.all(k, after.details.exists(j, j == k))",  # nested
    "after.details.exists(k, k == 'f(x, y)') || 'k.all(z, z)' != '' && type(after.name) == string",
    # a comment is no code: names in it are not read (this was refused: 'names k')
    "after.details.exists(k, k == 'flavor_id') // k is each key; don't (\n && action == 'create'",
    # the iterated name may be the variable: the range is read outside the macro, the body
    # sees each item, and the change's `after` is back after the macro (CEL's scoping)
    "after.details.all(after, after != 'gpu') && after.name == 'a'",
]


@pytest.mark.parametrize("text", MACROS)
def test_a_macro_variable_is_bound_not_an_unknown_name(text):
    from reconciler.config.celcheck import compile_cel

    program, why = compile_cel(text)
    assert why is None and program.execute(CHANGE) is True


T = "timestamp('2026-03-04T05:06:07.008Z')"
FUNCTIONS = {
    "size": "size('ab') == 2", "contains": "'abc'.contains('b')", "startsWith": "'abc'.startsWith('a')",
    "endsWith": "'abc'.endsWith('c')", "matches": "'abc'.matches('^a.c$')", "int": "int('1') == 1",
    "uint": "uint(1) == 1u", "double": "double(1) == 1.0", "string": "string(1) == '1'", "bytes": "bytes('a') == b'a'",
    "dyn": "dyn(1) == 1", "type": "type(1) == int", "duration": "duration('1h') == duration('60m')",
    "timestamp": f"{T} < timestamp('2027-01-01T00:00:00Z')", "getFullYear": f"{T}.getFullYear() == 2026",
    "getMonth": f"{T}.getMonth() == 2", "getDayOfYear": f"{T}.getDayOfYear() == 62",
    "getDayOfMonth": f"{T}.getDayOfMonth() == 3", "getDate": f"{T}.getDate() == 4",
    "getDayOfWeek": f"{T}.getDayOfWeek() == 3", "getHours": f"{T}.getHours() == 5",
    "getMinutes": f"{T}.getMinutes() == 6", "getSeconds": f"{T}.getSeconds() == 7",
    "getMilliseconds": f"{T}.getMilliseconds() == 8",
}


def test_every_cel_function_the_check_accepts_evaluates_in_the_installed_package():
    """CEL_FUNCTIONS is this package version's (pyproject pins it): a newer one that drops or
    renames a function fails here, not in a user's plan."""
    from reconciler.config.celcheck import CEL_FUNCTIONS, compile_cel

    assert set(FUNCTIONS) == CEL_FUNCTIONS
    for name, text in FUNCTIONS.items():
        program, why = compile_cel(text)
        assert why is None and program.execute(CHANGE) is True, name


def test_policies_come_from_the_environment_too(infra, tmp_path, monkeypatch):
    org = tmp_path / "org.yaml"
    org.write_text("policies:\n  - name: org-ttl\n    ttl: {kind: valdi.vm, max: 8h}\n")
    monkeypatch.setenv("RECONCILER_POLICY_FILE", str(org))
    code, out = infra(manifest(vm_extra="    expires: {after: 12h}\n")).plan()
    assert code == 3 and "[DENY] org-ttl valdi.vm.trainer: it expires in 12h, later than the 8h allowed" in out


def test_a_saved_plan_keeps_the_policy_files_it_was_made_under(infra, admin, tmp_path):
    org = tmp_path / "org.yaml"
    org.write_text(BUDGET)
    work = infra(manifest())
    state = ("--state", str(work.path / "state.json"))
    code, out = work.plan("--policy-file", str(org), "-o", str(tmp_path / "p.bin"))
    assert code == 3, out
    code, out = cli(*state, "apply", str(tmp_path / "p.bin"))  # without the flag: still denied
    assert code == 3 and vms(admin) == [], out
    org.write_text(BUDGET.replace("0.5", "5"))  # the file got laxer: what was reviewed stays denied
    code, out = cli(*state, "apply", str(tmp_path / "p.bin"))
    assert code == 3 and vms(admin) == [], out
    code, out = cli(*state, "apply", str(tmp_path / "p.bin"), "--override-policy", "gpu-budget", "--reason", "ok")
    assert code == 0 and len(vms(admin)) == 1, out
    (kept,) = json.loads((tmp_path / "p.bin").read_text().split("\n", 1)[1])["overrides"]  # in the plan file and the state
    assert kept["reason"] == "ok" and kept["policies"] == ["gpu-budget"] and kept["at"] == "2026-12-03T12:00:00Z"
    assert [e["reason"] for e in work.state()["events"] if e["event"] == "policy_override"] == ["ok"]


def test_a_price_the_catalogue_leaves_out_is_never_counted_as_zero():
    from reconciler.config.model import Position, Resource
    from reconciler.config.policies import Policy
    from reconciler.engine import policies
    from reconciler.engine.planner import PlanResult, Step
    from memkind import MemoryKind

    from reconciler.plan.model import Action, ActionType, Plan

    class Volume(MemoryKind):
        name = "valdi.volume"
        unpriced = True  # costs money, no published price

    action = Action("valdi.volume.data", "valdi.volume", ActionType.CREATE, [])
    steps = {action.address: Step(action, Resource("valdi.volume", "data", {}, Position("m", 1, 1)), None, None,
                                  spec={})}
    facts = policies.Facts(PlanResult(Plan(actions=[action]), steps, {}), {"valdi.volume": Volume()},
                           lambda k: None, START, {}, {})
    for how, expected in (("deny", ["deny"]), ("warn", ["warn"]), ("ignore", [])):
        rule = Policy("b", "budget", {"max_hourly_usd": 10, "unknown_price": how}, Position("p", 1, 1))
        failed = [r for r in policies.evaluate([rule], facts) if not r.passed]
        assert [r.enforcement for r in failed] == expected
        assert all(r.address == "valdi.volume.data" for r in failed)


def test_state_events_show_a_reason_with_control_characters_escaped(infra, admin):
    """An override's reason is anyone's text (and a state anyone could edit): listed back,
    an escape sequence in it is shown, never run by the terminal."""
    work = infra(manifest(BUDGET))
    code, out = work.apply("--override-policy", "gpu-budget", "--reason", "ok \x1b]0;owned\x07 \u202eexe")
    assert code == 0 and "\x1b" not in out and "\u202e" not in out, repr(out)
    for extra in ((), ("--json",)):
        code, out = cli("--state", str(work.path / "state.json"), "state", "events", *extra, str(work.path))
        assert code == 0 and "policy_override" in out, out
        assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out, repr(out)


def test_watch_with_a_policy_file_reads_its_policies_once_per_run(infra, tmp_path):
    """The first load's manifest is kept in memory for the next run: the policy file's
    policies are added to each run's copy, never to the kept one (no 'defined twice')."""
    org = tmp_path / "org.yaml"
    org.write_text("policies:\n  - name: org-ttl\n    ttl: {kind: valdi.vm, max: 8h}\n")
    work = infra(manifest(vm_extra="    expires: {after: 12h}\n"))
    code, out = cli("--state", str(work.path / "state.json"), "watch", str(work.path), "--once",
                    "--policy-file", str(org))
    assert code == 3 and "org-ttl" in out and "defined twice" not in out, out  # denied by the file's policy
