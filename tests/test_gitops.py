"""Pull-request flow: the commands of examples/ci/github-actions.yml run in the sandbox;
a saved plan made stale by a change in the live service is refused; a fresh one applies
exactly what it showed."""
from __future__ import annotations

import json
import shlex
from pathlib import Path

import httpx
import pytest
import yaml
from click.testing import CliRunner
from crash_harness import copy_example

from reconciler.cli import main

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / "examples" / "ci" / "github-actions.yml"


def run(*args):
    result = CliRunner().invoke(main, ["--no-color", *args], catch_exceptions=False)
    return result.exit_code, result.output


@pytest.fixture
def infra(tmp_path, sandbox_env, monkeypatch):
    (tmp_path / "infra").mkdir()
    for example in ("valohai.yaml", "valdi.yaml", "codeocean.yaml"):  # every provider in one pull request
        copy_example(example, tmp_path / "infra")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RECONCILER_STATE", str(tmp_path / "state.json"))
    monkeypatch.setenv("RECONCILER_PLAN_KEY", PLAN_KEY)  # as the CI examples set it, from a CI secret
    return tmp_path


PLAN_KEY = "ci-secret-plan-key-0123456789abcdef"


def resign(path: Path, body: dict) -> None:
    """A damaged body signed with the right key: what the checks after the signature see."""
    from reconciler.plan.signing import PLAN_ENV, Key
    text = json.dumps(body)
    path.write_text(f"reconciler-plan 2 key={PLAN_ENV} hmac-sha256={Key(PLAN_KEY.encode(), PLAN_ENV).sign(text.encode())}\n"
                    + text)


def workflow_commands() -> list[str]:
    """The `reconciler` lines a reviewed change goes through: the plan job, then the apply
    job's step that applies the reviewed plan (the re-plan steps run only when it is stale)."""
    jobs = yaml.safe_load(WORKFLOW.read_text())["jobs"]
    steps = jobs["plan"]["steps"] + [s for s in jobs["apply"]["steps"] if s.get("id") == "apply"]
    lines = []
    for step in steps:
        for line in step.get("run", "").splitlines():
            if line.strip().startswith("reconciler "):
                lines.append(line.strip())
    return lines


def stale_phrase() -> str:
    """The words the CI examples grep an apply's output for: the plan was refused as stale."""
    import re
    phrases = set(re.findall(r'grep -q "([^"]+)" apply.log', WORKFLOW.read_text()))
    assert len(phrases) == 1, phrases
    return phrases.pop()


def run_shell_line(line: str) -> int:
    """Enough of a shell for the workflow's lines: `|| test $? -eq 2` and `> file`."""
    allowed = {0}
    line = line.split(" 2>&1 | tee ")[0]
    if "|| test $? -eq 2" in line:
        line, allowed = line.split("||")[0], {0, 2}
    target = None
    if ">" in line:
        line, target = (s.strip() for s in line.split(">", 1))
    code, out = run(*shlex.split(line, comments=True)[1:])
    assert code in allowed, f"{line}: exit {code}\n{out}"
    if target:
        Path(target).write_text(out)
    return code


def test_workflow_commands_run_in_the_sandbox(infra):
    commands = workflow_commands()
    assert [c.split()[1] for c in commands] == ["validate", "plan", "show", "apply"]
    for line in commands:
        run_shell_line(line)
    pages = sorted((infra / "plan-pages").glob("*.md"))
    comment = pages[0].read_text()
    assert pages[0].name == "001.md" and all(len(p.read_text()) <= 65536 for p in pages)
    assert "<!-- reconciler-plan -->" in comment and "| add | change |" in comment
    code, out = run("plan", "infra/", "--detailed-exitcode")
    assert code == 0, out


def test_stale_plan_is_refused_and_fresh_plan_applies_as_shown(infra, sandbox_env):
    assert run("apply", "infra/", "--auto-approve")[0] == 0
    manifest = infra / "infra" / "valohai.yaml"
    manifest.write_text(manifest.read_text().replace("candidate", "candidate-2", 1))
    code, shown = run("plan", "infra/", "-o", "plan.bin")
    assert code == 0 and "to change" in shown
    # someone changes a datum we manage, straight in the service
    state = json.loads((infra / "state.json").read_text())
    address, entry = next((a, r) for a, r in state["resources"].items() if a.startswith("valohai.datum."))
    headers = {"Authorization": f"Token {sandbox_env['VALOHAI_TOKEN']}"}
    r = httpx.post(f"{sandbox_env['VALOHAI_HOST']}/api/v0/data/{entry['id']}/metadata/",
                   json={"valohai.tags": ["changed-by-hand"]}, headers=headers)
    assert r.status_code < 300
    code, out = run("apply", "plan.bin")
    assert code == 1
    assert f"{address} changed in the live service" in out
    assert stale_phrase() in out  # what the CI examples look for to re-plan and show why
    # a fresh plan of the same change applies exactly what it showed
    code, shown = run("plan", "infra/", "-o", "plan2.bin")
    code, applied = run("apply", "plan2.bin")
    assert code == 0, applied
    code, shown_again = run("show", "plan2.bin")
    assert shown_again == shown.split("Saved the plan")[0] or shown_again in shown
    assert run("plan", "infra/", "--detailed-exitcode")[0] == 0


def test_a_vm_stopped_by_hand_is_drift_and_makes_a_saved_plan_stale(infra, sandbox_env):
    assert run("apply", "infra/", "--auto-approve")[0] == 0
    code, out = run("plan", "infra/", "-o", "plan.bin", "--detailed-exitcode")
    assert code == 0
    vm_id = json.loads((infra / "state.json").read_text())["resources"]["valdi.vm.trainer"]["id"]
    base = sandbox_env["VALDI_ENDPOINT"]
    token = httpx.post(f"{base}/account/login", json={"email": sandbox_env["VALDI_EMAIL"],
                                                      "password": sandbox_env["VALDI_PASSWORD"]}).json()["access_token"]
    assert httpx.post(f"{base}/v1/vm/stop/{vm_id}", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    code, out = run("drift", "infra/")
    # drift is last applied -> live, with the VM named by its id
    assert code == 2 and f"valdi.vm.trainer [id={vm_id}" in out and 'power: "running" -> "stopped"' in out, out
    code, out = run("apply", "plan.bin")
    assert code == 1 and "valdi.vm.trainer changed in the live service" in out
    assert run("apply", "infra/", "--auto-approve")[0] == 0  # starts it again
    assert run("drift", "infra/")[0] == 0


def test_the_json_plan_of_every_example_validates_and_carries_vm_costs(infra):
    import jsonschema

    from reconciler.config.validation import load_schema
    code, out = run("plan", "infra/", "--format", "json")
    assert code == 0, out
    doc = json.loads(out)
    jsonschema.validate(doc, load_schema("plan.schema.json"))
    vm = next(a for a in doc["resource_changes"] if a["address"] == "valdi.vm.trainer")
    assert vm["cost"] == {"hourly_before": None, "hourly_after": 0.66, "monthly_before": None,
                          "monthly_after": 481.8}
    assert doc["summary"]["hourly_cost_change"] == 0.66
    kinds = {a["kind"] for a in doc["resource_changes"]}
    assert {"valdi.ssh_key", "valdi.vm", "valdi.volume", "valohai.datum", "codeocean.data_asset"} <= kinds


ENV_MANIFEST = """
providers:
  valohai: {token: "${env.VALOHAI_TOKEN}", project: "${env.VALOHAI_PROJECT}"}
resources:
  - kind: valohai.datum
    name: d
    spec:
      store: sandbox-store
      url: s3://sandbox-bucket/data/train.csv
      properties: {note: "${env.PF_DESC}"}
"""


def test_a_saved_plan_refuses_an_env_value_nobody_reviewed(tmp_path, sandbox_env, monkeypatch):
    """The YAML is the same, ${env.PF_DESC} is not: the plan pinned the resolved value."""
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "main.yaml").write_text(ENV_MANIFEST)
    monkeypatch.setenv("RECONCILER_STATE", str(tmp_path / "state.json"))
    monkeypatch.setenv("PF_DESC", "reviewed")
    assert run("plan", str(tmp_path / "m"), "-o", str(tmp_path / "plan.bin"))[0] == 0
    monkeypatch.setenv("PF_DESC", "not-reviewed")
    code, out = run("apply", str(tmp_path / "plan.bin"))
    assert code == 1 and "valohai.datum.d.spec.properties.note" in out, out
    monkeypatch.setenv("PF_DESC", "reviewed")
    code, out = run("apply", str(tmp_path / "plan.bin"))
    assert code == 0, out


def test_a_saved_plan_refuses_a_local_file_edited_after_it(infra):
    """files[].source edited between plan and apply: the edited bytes are not uploaded."""
    assert run("plan", "infra", "-o", "plan.bin")[0] == 0
    source = infra / "infra" / "files" / "train-config.json"
    source.write_text(source.read_text() + "\n")
    code, out = run("apply", "plan.bin")
    assert code == 1 and "files[0].source: the file changed since the plan was made" in out, out
    assert "Apply complete" not in out


@pytest.mark.parametrize("damage, field", [
    (lambda b: b["actions"][0].update(type="EXPLODE"), "actions[0].type"),
    (lambda b: b["actions"][0].pop("address"), "actions[0].address"),
    (lambda b: b.update(state_serial="many"), "state_serial"),
    (lambda b: b.update(actions={}), "actions"),
    (lambda b: b["actions"][0].update(changes=[{"path": 3}]), "actions[0].changes[0].path"),
])
def test_a_damaged_plan_file_is_one_line_naming_the_field(infra, damage, field):
    assert run("plan", "infra", "-o", "plan.bin")[0] == 0
    body = json.loads(Path("plan.bin").read_text().split("\n", 1)[1])
    damage(body)
    resign(Path("plan.bin"), body)
    code, out = run("apply", "plan.bin")
    assert code == 1 and f"plan.bin: {field}:" in out, out
    assert "internal error" not in out and "Traceback" not in out
    code, out = run("show", "plan.bin")
    assert code == 1 and f"plan.bin: {field}:" in out, out


def _comment_script() -> str:
    steps = yaml.safe_load(WORKFLOW.read_text())["jobs"]["plan"]["steps"]
    return next(s["with"]["script"] for s in steps if "github-script" in s.get("uses", ""))


FAKE_GITHUB = """
const fs = require('fs');
const store = JSON.parse(fs.readFileSync(process.env.COMMENTS, 'utf8'));
let next = store.reduce((m, c) => Math.max(m, c.id), 0) + 1;
const github = {paginate: async (fn, args) => fn(args), rest: {issues: {
  listComments: () => store,
  createComment: async ({body}) => { store.push({id: next++, body, user: {login: 'github-actions[bot]'}}); },
  updateComment: async ({comment_id, body}) => { store.find(c => c.id === comment_id).body = body; },
  deleteComment: async ({comment_id}) => { store.splice(store.findIndex(c => c.id === comment_id), 1); },
}}};
const context = {repo: {owner: 'o', repo: 'r'}, issue: {number: 1}, payload: {pull_request: {number: 1}}};
const core = {notice: () => {}};
(async () => { SCRIPT
  fs.writeFileSync(process.env.COMMENTS, JSON.stringify(store)); })();
"""


def test_the_workflow_posts_every_page_and_updates_them_on_the_next_push(tmp_path, monkeypatch):
    """The workflow's github-script, run by node against an in-memory GitHub: a plan of
    three pages makes three comments; a push with a one-page plan updates the first and
    deletes the other two; someone's comment quoting the marker is never touched."""
    import shutil
    import subprocess

    from reconciler.plan.model import Action, ActionType, FieldChange, Plan
    from reconciler.render.markdown import write_pages

    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    script = tmp_path / "post.js"
    script.write_text(FAKE_GITHUB.replace("SCRIPT", _comment_script()))
    comments = tmp_path / "comments.json"
    spoof = {"id": 1, "body": "<!-- reconciler-plan page 1/1 --> not ours", "user": {"login": "someone"}}
    comments.write_text(json.dumps([spoof]))
    monkeypatch.chdir(tmp_path)

    def post(n_resources: int) -> list[dict]:
        plan = Plan(actions=[Action(f"valohai.datum.d{i}", "valohai.datum", ActionType.UPDATE, ["x changed"],
                                    [FieldChange("properties.x", "a" * 100, "b" * 100)]) for i in range(n_resources)])
        write_pages(plan, tmp_path / "plan-pages")
        subprocess.run(["node", str(script)], check=True, env={"COMMENTS": str(comments), "PATH": "/usr/bin:/bin"},
                       timeout=60)
        return json.loads(comments.read_text())

    first = post(400)
    ours = [c for c in first if c["user"]["login"] == "github-actions[bot]"]
    assert len(ours) == len(list((tmp_path / "plan-pages").glob("*.md"))) >= 3
    assert [f"page {i}/{len(ours)}" in c["body"] for i, c in enumerate(ours, 1)] == [True] * len(ours)
    second = post(3)
    ours_now = [c for c in second if c["user"]["login"] == "github-actions[bot]"]
    assert [c["id"] for c in ours_now] == [ours[0]["id"]] and "page 1/1" in ours_now[0]["body"]
    assert spoof in second
