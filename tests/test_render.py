"""Renderings of a plan with every action kind: golden text and Markdown, JSON against
schemas/plan.schema.json, secrets masked everywhere, Markdown cut under the limit.

UPDATE_GOLDEN=1 pytest tests/test_render.py rewrites the golden files."""
from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest

from reconciler import planfile
from reconciler.model import UNKNOWN, Action, ActionType, FieldChange, Plan
from reconciler.render import render
from reconciler.render.markdown import render_plan as markdown
from reconciler.validation import load_schema

GOLDEN = Path(__file__).parent / "golden"
SECRET = "s3cr3t-value-that-must-not-leak"


def every_action_plan() -> Plan:
    return Plan(actions=[
        Action("valdi.ssh_key.deploy", "valdi.ssh_key", ActionType.CREATE, ["it is in the manifests but not in the live service"],
               [FieldChange("name", None, "deploy"), FieldChange("private_key", None, SECRET, sensitive=True)]),
        Action("valdi.vm.trainer", "valdi.vm", ActionType.REPLACE,
               ["details.flavor_id cannot change in place: forces replacement"],
               [FieldChange("details.flavor_id", "94d7", "b1c2", forces_replacement=True),
                FieldChange("details.password", SECRET, "other-" + SECRET, sensitive=True),
                FieldChange("details.ssh_key_id", "k-1", UNKNOWN)],
               remote_id="vm-1", cost_before=1.2, cost_after=2.4),
        Action("valdi.vm.notebook", "valdi.vm", ActionType.UPDATE, ["power changed", "will stop the VM"],
               [FieldChange("power", "running", "stopped")], remote_id="vm-2", cost_before=1.2, cost_after=0.18),
        Action("valohai.datum.model", "valohai.datum", ActionType.CREATE,
               ["already exists in the live service: adopt existing"], [FieldChange("tags", None, ["prod"])],
               remote_id="d-1", mode="adopt"),
        Action("valohai.datum.old", "valohai.datum", ActionType.DELETE, ["it is no longer in the manifests"],
               remote_id="d-2", mode="release"),
        Action("codeocean.data_asset.raw", "codeocean.data_asset", ActionType.DELETE,
               ["it is no longer in the manifests"], remote_id="a-1", mode="orphan"),
        Action("valdi.volume.scratch", "valdi.volume", ActionType.DELETE, ["destroy requested"],
               remote_id="v-1", mode="delete", warnings=["files in it are deleted with it"]),
        Action("valdi.ssh_key.unchanged", "valdi.ssh_key", ActionType.NOOP, ["up to date"], remote_id="k-9"),
    ], warnings=["valdi.ssh_key.old left the manifests: VALDI has no API to delete SSH keys; it stays in your account"],
        manifest_digest="abc", state_lineage="lin", state_serial=3, fingerprints={"valdi.vm.trainer": "f1"})


@pytest.mark.parametrize("fmt, name", [("text", "plan_all_actions.txt"), ("markdown", "plan_all_actions.md")])
def test_golden(fmt, name):
    out = render(every_action_plan(), fmt)
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(out)
    assert out == path.read_text()


def test_text_counts_replace_as_add_and_destroy():
    out = render(every_action_plan(), "text")
    assert out.rstrip().endswith("Plan: 3 to add, 1 to change, 4 to destroy.")
    assert "# forces replacement" in out and "(known after apply)" in out


def test_json_validates_against_the_published_schema():
    doc = json.loads(render(every_action_plan(), "json"))
    jsonschema.validate(doc, load_schema("plan.schema.json"))
    replace = next(r for r in doc["resource_changes"] if r["address"] == "valdi.vm.trainer")
    assert replace["actions"] == ["delete", "create"]
    assert doc["summary"]["hourly_cost_change"] == pytest.approx(1.2 - 1.02)


def test_no_rendering_and_no_plan_file_holds_a_secret(tmp_path):
    plan = every_action_plan()
    for fmt in ("text", "json", "markdown"):
        assert SECRET not in render(plan, fmt)
    planfile.save(plan, tmp_path / "plan.bin", manifest_paths=["x"], options={})
    assert SECRET not in (tmp_path / "plan.bin").read_text()
    loaded, meta = planfile.load(tmp_path / "plan.bin")
    assert [a.type for a in loaded.actions] == [a.type for a in plan.actions]
    assert planfile.same_actions(plan, loaded) == []


def test_markdown_is_cut_under_the_limit_with_a_note():
    many = Plan(actions=[Action(f"valohai.datum.d{i}", "valohai.datum", ActionType.UPDATE, ["properties.x changed"],
                                [FieldChange("properties.x", i, i + 1)]) for i in range(2000)])
    out = markdown(many)
    assert len(out) < 65000
    assert "more resources are not shown" in out


def test_stale_reasons_say_what_moved():
    plan = every_action_plan()
    reasons = planfile.stale_reasons(plan, manifest_digest="other", state_lineage="lin", state_serial=4,
                                     fingerprints={"valdi.vm.trainer": "f2", "valdi.vm.new": "f3"})
    text = "\n".join(reasons)
    assert "manifests changed" in text and "serial 3 to 4" in text
    assert "valdi.vm.trainer changed" in text and "valdi.vm.new appeared" in text
