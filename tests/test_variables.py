"""Variables from outside the manifest: precedence (manifest < RECONCILER_VAR_ < var files
< --var), YAML values, type checks, sensitive masking, and saved plans that carry their
values (sensitive ones only as salted digests)."""
from __future__ import annotations

import json
import textwrap

import pytest
from conftest import Infra, cli

from reconciler.config.manifest import load_manifest
from reconciler.config.variables import Inputs
from reconciler.errors import ManifestError

DECLARED = """
variables:
  team: vision
  shards: [p0]
  size: {type: number, default: 1}
  label: {type: string, default: x}
resources:
  - kind: t.k
    name: a
    spec: {team: "${var.team}", shards: "${var.shards}", size: "${var.size}", label: "${var.label}"}
"""


def write(tmp_path, name: str, text: str):
    f = tmp_path / name
    f.write_text(textwrap.dedent(text))
    return f


def spec(tmp_path, env=None, **inputs) -> dict:
    f = write(tmp_path, "m.yaml", DECLARED)
    return load_manifest([f], env or {}, Inputs(**inputs)).resources[0].spec


@pytest.mark.parametrize("env, files, args, expected", [
    ({}, [], [], {"team": "vision", "shards": ["p0"], "size": 1}),
    ({"RECONCILER_VAR_team": "env"}, [], [], {"team": "env"}),
    ({"RECONCILER_VAR_team": "env"}, ["team: file1\n"], [], {"team": "file1"}),
    ({"RECONCILER_VAR_team": "env"}, ["team: file1\n", "team: file2\n"], [], {"team": "file2"}),
    ({"RECONCILER_VAR_team": "env"}, ["team: file1\n"], ["team=cli1", "team=cli2"], {"team": "cli2"}),
    ({"RECONCILER_VAR_shards": "[a, b]"}, [], ["size=4"], {"shards": ["a", "b"], "size": 4}),
    ({}, [], ["label=007"], {"label": "007"}),  # a string variable keeps the text as written
], ids=["manifest", "env-over-manifest", "file-over-env", "later-file-wins", "cli-over-all-last-wins",
        "yaml-values", "string-keeps-text"])
def test_precedence_and_parsing(tmp_path, env, files, args, expected):
    paths = []
    for i, text in enumerate(files):
        paths.append(str(write(tmp_path, f"vars{i}.yml", text)))
    got = spec(tmp_path, env, var_files=paths, var_args=args)
    assert {k: got[k] for k in expected} == expected


@pytest.mark.parametrize("args, env, fragment", [
    (["size=big"], {}, "--var size: variables.size: expected a number, got a string 'big'"),
    ([], {"RECONCILER_VAR_size": "[1]"}, "RECONCILER_VAR_size: variables.size: expected a number, got a list"),
    (["tem=x"], {}, "--var: tem: no variable 'tem' is declared under variables:; did you mean 'team'?"),
    (["team"], {}, "--var: team: expected NAME=VALUE"),
], ids=["cli-type", "env-type", "cli-unknown", "cli-no-equals"])
def test_bad_values_from_outside_name_where_they_came_from(tmp_path, args, env, fragment):
    with pytest.raises(ManifestError) as info:
        spec(tmp_path, env, var_args=args)
    assert fragment in str(info.value)


def test_a_var_file_problem_has_file_line_col(tmp_path):
    vars_file = write(tmp_path, "vars.yaml", "team: a\nsize: nine\nteem: b\n")
    with pytest.raises(ManifestError) as info:
        spec(tmp_path, var_files=[str(vars_file)])
    lines = str(info.value).splitlines()
    assert f"{vars_file}:2:1: variables.size: expected a number, got a string 'nine'" in lines
    assert f"{vars_file}:3:1: teem: no variable 'teem' is declared under variables:; did you mean 'team'?" in lines


@pytest.mark.parametrize("name, flag", [("prod.yaml", True), ("prod.vars.yaml", False), ("prod.vars.yml", True)],
                         ids=["named-by-flag", "by-convention", "both"])
def test_a_var_file_beside_the_manifests_is_never_read_as_one(tmp_path, name, flag):
    write(tmp_path, "m.yaml", DECLARED)
    vars_file = write(tmp_path, name, "team: prod\n")
    m = load_manifest([tmp_path], {}, Inputs(var_files=[str(vars_file)] if flag else []))
    assert [f.rsplit("/", 1)[-1] for f in m.files] == ["m.yaml"]
    assert m.resources[0].spec["team"] == ("prod" if flag else "vision")


def test_an_unused_env_var_for_another_manifest_is_ignored(tmp_path):
    assert spec(tmp_path, {"RECONCILER_VAR_other": "x"})["team"] == "vision"


# -- end to end: sensitive variables and saved plans ------------------------------------------------
SENSITIVE = """
variables:
  owner: {type: string, description: who answers for it}
  token: {type: string, sensitive: true}
resources:
  - kind: valohai.datum
    name: train
    spec:
      store: sandbox-store
      url: s3://sandbox-bucket/data/train.csv
      properties: {owner: "${var.owner}", ingest_ref: "${var.token}"}
outputs:
  owner: ${var.owner}
  token: ${var.token}
"""
SECRET = "tok-9f8e7d6c5b4a"


@pytest.fixture
def infra(tmp_path, sandbox_env, monkeypatch):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "main.yaml").write_text(textwrap.dedent(SENSITIVE))
    monkeypatch.setenv("RECONCILER_VAR_token", SECRET)
    return Infra(tmp_path / "m", "main.yaml")


def test_a_variable_with_no_value_is_named_and_nothing_is_called(infra, monkeypatch, admin):
    before = admin.get("/_emulator/requests").json()["counts"]
    code, out = infra.plan()
    assert code == 1
    assert "main.yaml:3:3: variables.owner: variable 'owner' has no value: set it with --var owner=" in out
    assert admin.get("/_emulator/requests").json()["counts"] == before


def test_sensitive_values_are_masked_in_every_plan_format_and_the_plan_file(infra, tmp_path, monkeypatch):
    monkeypatch.setenv("RECONCILER_PLAN_KEY", "k" * 32)
    for fmt in ("text", "json", "markdown"):
        code, out = infra.plan("--var", "owner=ml", "--format", fmt)
        assert code == 0, out
        assert SECRET not in out, fmt
        assert "ml" in out
    code, out = infra.plan("--var", "owner=ml", "-o", str(tmp_path / "p.plan"))
    assert code == 0, out
    saved = (tmp_path / "p.plan").read_text()
    assert SECRET not in saved
    recorded = json.loads(saved.split("\n", 1)[1])["options"]["variables"]  # after the signed header line
    assert recorded["owner"] == "ml" and set(recorded["token"]) == {"$pin"}


def test_a_saved_plan_applies_with_no_variables_given_again_and_refuses_a_changed_secret(
        infra, tmp_path, monkeypatch):
    monkeypatch.setenv("RECONCILER_PLAN_KEY", "k" * 32)  # secrets are pinned only under a configured key
    plan = str(tmp_path / "p.plan")
    assert infra.plan("--var", "owner=ml", "-o", plan)[0] == 0
    state = str(infra.path / "state.json")
    # a different secret: refused before any change
    monkeypatch.setenv("RECONCILER_VAR_token", "another")
    code, out = cli("--state", state, "apply", plan)
    assert code == 1 and "sensitive variable 'token' is not the value the saved plan was made with" in out
    assert "another" not in out
    code, out = cli("--state", state, "apply", plan, "--var", "owner=x")
    assert code == 1 and "a saved plan carries the variable values" in out
    # the same secret, no --var owner: the plan's recorded value is used
    monkeypatch.setenv("RECONCILER_VAR_token", SECRET)
    code, out = cli("--state", state, "apply", plan)
    assert code == 0, out
    assert "owner = \"ml\"" in out and "token = (sensitive)" in out and SECRET not in out
    assert infra.state()["outputs"]["owner"] == {"value": "ml", "sensitive": False}


def test_a_variable_read_by_a_providers_block_is_recorded_only_as_a_digest(tmp_path, sandbox_env):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "main.yaml").write_text(textwrap.dedent("""
        variables:
          vh: "${env.VALOHAI_TOKEN}"
        providers:
          valohai: {token: "${var.vh}"}
        resources:
          - kind: valohai.datum
            name: train
            spec: {store: sandbox-store, url: "s3://sandbox-bucket/data/train.csv"}
        """))
    infra = Infra(tmp_path / "m", "main.yaml")
    plan = tmp_path / "p.plan"
    code, out = infra.plan("-o", str(plan))
    assert code == 0, out
    assert sandbox_env["VALOHAI_TOKEN"] not in plan.read_text()
    # no plan key configured: the secret is not pinned, and the plan says so
    assert json.loads(plan.read_text().split("\n", 1)[1])["options"]["variables"]["vh"] == {"$unpinned": True}
    assert "a secret changed before apply will not be detected" in out
    code, out = cli("--state", str(infra.path / "state.json"), "apply", str(plan))
    assert code == 0, out  # the token comes from the environment again and matches the digest


def test_a_sensitive_value_is_not_in_debug_logs(infra, caplog):
    import logging

    with caplog.at_level(logging.DEBUG):
        code, out = cli("--debug", "--state", str(infra.path / "state.json"), "apply", str(infra.path),
                        "--auto-approve", "--var", "owner=ml")
    assert code == 0, out
    assert "metadata" in caplog.text  # the request bodies were logged...
    assert SECRET not in caplog.text and SECRET not in out  # ...with the sensitive value taken out
