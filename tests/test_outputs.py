"""Top-level outputs end to end against the emulator: shown as changes in plans, computed
after apply and kept in the state, read back with `reconciler output`; outputs derived
from secrets masked unless asked for by name, and sealed in the state with the key."""
from __future__ import annotations

import json
import textwrap

import jsonschema
import pytest
from conftest import Infra, cli

from reconciler.config.validation import load_schema

MANIFEST = """
resources:
  - kind: valdi.volume
    name: data
    spec: {bucket_name: team-data}
  - kind: valohai.datum
    name: train
    spec: {store: sandbox-store, url: "s3://sandbox-bucket/data/train.csv"}
outputs:
  bucket: ${valdi.volume.data.bucket_name}
  train_id: ${valohai.datum.train.id}
  both: {bucket: "${valdi.volume.data.bucket_name}", train: "${valohai.datum.train.id}"}
  secret_key: ${valdi.volume.data.secret_access_key}
  described: {value: "s3://${valdi.volume.data.bucket_name}/x", description: a URL}
"""


@pytest.fixture
def infra(tmp_path, sandbox_env):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "main.yaml").write_text(textwrap.dedent(MANIFEST))
    return Infra(tmp_path / "m", "main.yaml")


def output(infra: Infra, *args: str) -> tuple[int, str]:
    return cli("--state", str(infra.path / "state.json"), "output", *args, str(infra.path))


def test_outputs_are_planned_recorded_and_printed(infra):
    code, out = infra.plan()
    assert code == 0, out
    assert "Changes to outputs:" in out
    assert "+ bucket = (known after apply)" in out
    assert "+ train_id = (known after apply)" in out
    assert "+ secret_key = (sensitive)" in out

    code, out = infra.apply()
    assert code == 0, out
    assert "Outputs:" in out and 'bucket     = "team-data"' in out
    state = infra.state()["outputs"]
    train_id = infra.state()["resources"]["valohai.datum.train"]["id"]
    assert state["train_id"] == {"value": train_id, "sensitive": False}
    assert state["secret_key"]["sensitive"] is True

    # one raw value, for scripts
    code, out = output(infra, "train_id")
    assert (code, out) == (0, train_id + "\n")
    code, out = output(infra, "both")
    assert json.loads(out) == {"bucket": "team-data", "train": train_id}
    # asked for by name, a secret is printed; in the table and --json it is masked
    code, secret = output(infra, "secret_key")
    secret = secret.strip()
    assert code == 0 and len(secret) > 8
    code, out = output(infra)
    assert "secret_key = (sensitive)" in out and secret not in out and 'described  = "s3://team-data/x"' in out
    code, out = output(infra, "--json")  # Terraform's shape; a secret is null, never a look-alike string
    body = json.loads(out)
    assert body["secret_key"] == {"value": None, "sensitive": True, "type": "string"}
    assert body["bucket"] == {"value": "team-data", "sensitive": False, "type": "string"}
    assert body["both"]["type"] == ["object", {"bucket": "string", "train": "string"}]
    assert secret not in out
    code, out = output(infra, "--json", "--show-sensitive")
    assert json.loads(out)["secret_key"]["value"] == secret
    code, out = output(infra, "both", "--json")
    assert json.loads(out) == {"bucket": "team-data", "train": train_id}

    code, out = output(infra, "nope")
    assert code == 1 and "no output 'nope' in the state" in out and "bucket" in out

    code, out = infra.plan("--detailed-exitcode")
    assert code == 0 and "Changes to outputs" not in out, out


def test_a_changed_output_shows_in_the_plan_and_removed_ones_leave_the_state(infra):
    assert infra.apply()[0] == 0
    infra.edit("  described: {value: \"s3://${valdi.volume.data.bucket_name}/x\", description: a URL}\n", "")
    infra.edit("bucket: ${valdi.volume.data.bucket_name}", "bucket: \"${valdi.volume.data.bucket_name}-v2\"")
    code, out = infra.plan("--format", "json")
    jsonschema.validate(json.loads(out), load_schema("plan.schema.json"))
    changes = {c["name"]: c for c in json.loads(out)["output_changes"]}
    assert changes["bucket"]["before"] == "team-data" and changes["bucket"]["after"] == "team-data-v2"
    assert changes["described"]["after"] is None
    code, out = infra.plan("--format", "markdown")
    assert "**Changes to outputs**" in out and "<code>bucket</code>" in out  # escaped like every Markdown value
    assert "No changes to resources" in out
    # only outputs change: a pipeline sees changes (2), and the plan does not claim "No changes."
    code, out = infra.plan("--detailed-exitcode")
    assert code == 2, out
    assert "No changes to resources. Apply to record the new output values." in out
    assert "No changes. Your infrastructure" not in out
    assert infra.apply()[0] == 0
    assert infra.plan("--detailed-exitcode")[0] == 0
    assert set(infra.state()["outputs"]) == {"bucket", "train_id", "both", "secret_key"}
    code, out = infra.destroy()
    assert code == 0, out
    assert "outputs" not in infra.state()


def test_sensitive_outputs_are_sealed_in_the_state_with_a_key(infra, monkeypatch):
    pytest.importorskip("cryptography")
    monkeypatch.setenv("RECONCILER_STATE_KEY", "k" * 32)
    assert infra.apply()[0] == 0
    code, secret = output(infra, "secret_key")
    assert code == 0
    raw = (infra.path / "state.json").read_text()
    assert secret.strip() not in raw
    assert "team-data" in raw  # plain outputs stay readable
