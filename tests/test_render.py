"""Renderings of a plan with every action kind: golden text and Markdown, JSON against
schemas/plan.schema.json, secrets masked everywhere, Markdown cut under the limit.

UPDATE_GOLDEN=1 pytest tests/test_render.py rewrites the golden files."""
from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest

from reconciler.config.model import UNKNOWN
from reconciler.config.validation import load_schema
from reconciler.plan import planfile
from reconciler.plan.model import Action, ActionType, FieldChange, ItemChange, Plan
from reconciler.render import render
from reconciler.render.markdown import render_pages
from reconciler.render.markdown import render_plan as markdown

GOLDEN = Path(__file__).parent / "golden"
SECRET = "s3cr3t-value-that-must-not-leak"


LONG = "A description that goes on " * 10  # 270 characters: whole in every format
TAGS = [f"tag-{i:02d}" for i in range(40)]


def every_action_plan() -> Plan:
    return Plan(actions=[
        Action("valdi.ssh_key.deploy", "valdi.ssh_key", ActionType.CREATE, ["it is in the manifests but not in the live service"],
               [FieldChange("name", None, "deploy"), FieldChange("private_key", None, SECRET, sensitive=True)]),
        Action("codeocean.data_asset.docs", "codeocean.data_asset", ActionType.CREATE,
               ["it is in the manifests but not in the live service"], [FieldChange("description", None, LONG)]),
        Action("valdi.vm.trainer", "valdi.vm", ActionType.REPLACE,
               ["details.flavor_id cannot change in place: forces replacement"],
               [FieldChange("details.flavor_id", "94d7", "b1c2", forces_replacement=True),
                FieldChange("details.password", SECRET, "other-" + SECRET, sensitive=True),
                FieldChange("details.ssh_key_id", "k-1", UNKNOWN)],
               remote_id="vm-1", remote_name="vision-trainer", cost_before=1.2, cost_after=2.4, policy="delete"),
        Action("valdi.vm.notebook", "valdi.vm", ActionType.UPDATE, ["power changed", "will stop the VM"],
               [FieldChange("power", "running", "stopped")], remote_id="vm-2", remote_name="notebook",
               cost_before=1.2, cost_after=0.18),
        Action("codeocean.data_asset.raw", "codeocean.data_asset", ActionType.UPDATE, ["tags changed"],
               [FieldChange("tags", TAGS, TAGS + ["tag-new"], items=(ItemChange("add", "", None, "tag-new"),))],
               remote_id="a-7", remote_name="raw data"),
        Action("valohai.datum.model", "valohai.datum", ActionType.CREATE,
               ["already exists in the live service: adopt existing"], [FieldChange("tags", None, ["prod"])],
               remote_id="d-1", remote_name="model.pt", adopt=True),
        Action("valohai.datum.old", "valohai.datum", ActionType.RELEASE, ["it is no longer in the manifests"],
               remote_id="d-2", remote_name="old.csv", policy="release",
               effect="the properties, tags and alias reconciler set are removed; the datum and its file are kept"),
        Action("codeocean.data_asset.kept", "codeocean.data_asset", ActionType.ORPHAN,
               ["it is no longer in the manifests"], remote_id="a-1", remote_name="kept", policy="orphan",
               effect="reconciler stops managing it; the data asset stays"),
        Action("valdi.ssh_key.old", "valdi.ssh_key", ActionType.FORGET, ["it is no longer in the manifests"],
               remote_id="k-2", remote_name="old", policy="forget",
               effect="VALDI has no API to delete SSH keys: the key stays in your VALDI account; "
                      "only reconciler's state entry is removed"),
        Action("valdi.volume.scratch", "valdi.volume", ActionType.DELETE, ["destroy requested"],
               remote_id="v-1", remote_name="scratch", policy="delete",
               effect="the volume is deleted in VALDI, with every file in it"),
        Action("valdi.ssh_key.unchanged", "valdi.ssh_key", ActionType.NOOP, ["up to date"], remote_id="k-9"),
    ], warnings=["This plan is partial (--exclude valdi.vm.other): 1 pending change left out: valdi.vm.other."],
        manifest_digest="abc", state_lineage="lin", state_serial=3, fingerprints={"valdi.vm.trainer": "f1"},
        partial={"targets": [], "excludes": ["valdi.vm.other"], "left_out": ["valdi.vm.other"]},
        unpriced=["valdi.volume.scratch"])


@pytest.mark.parametrize("fmt, name", [("text", "plan_all_actions.txt"), ("markdown", "plan_all_actions.md")])
def test_golden(fmt, name):
    out = render(every_action_plan(), fmt)
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(out)
    assert out == path.read_text()


def test_text_counts_replace_as_add_and_destroy_and_forget_release_orphan_apart():
    out = render(every_action_plan(), "text")
    assert out.rstrip().endswith("Plan: 4 to add, 2 to change, 2 to destroy, 1 to forget, 1 to release, 1 to orphan.")
    assert "# forces replacement" in out and "(known after apply)" in out
    assert "  . valdi.ssh_key.old [id=k-2, name=\"old\"]" in out
    assert "  < valohai.datum.old [id=d-2" in out and "  o codeocean.data_asset.kept [id=a-1" in out
    assert "is already gone" not in out  # a key that exists is forgotten, not "already gone"


def test_opentofu_style_forget_summary():
    plan = Plan(actions=[Action("valdi.ssh_key.old", "valdi.ssh_key", ActionType.FORGET, ["gone from the manifests"],
                                remote_id="k-1", policy="forget")])
    assert render(plan, "text").rstrip().endswith("Plan: 0 to add, 0 to change, 0 to destroy, 1 to forget.")
    assert "**Plan: 0 to add, 0 to change, 0 to destroy, 1 to forget.**" in render(plan, "markdown")
    summary = json.loads(render(plan, "json"))["summary"]
    assert (summary["forget"], summary["destroy"]) == (1, 0)


def test_one_tag_added_to_forty_shows_one_item_in_every_format():
    plan = every_action_plan()
    text = render(plan, "text")
    assert '      ~ tags: 1 added\n          + "tag-new"\n' in text
    assert "tag-17" not in text  # the forty unchanged tags are not listed
    md = render(plan, "markdown")
    assert "tag-new" in md and "tag-17" not in md
    raw = next(r for r in json.loads(render(plan, "json"))["resource_changes"]
               if r["address"] == "codeocean.data_asset.raw")
    assert raw["changes"][0]["items"] == [{"op": "add", "path": "", "before": None, "after": "tag-new"}]


def test_long_create_value_whole_in_text_markdown_and_json():
    plan = every_action_plan()
    assert LONG in render(plan, "text") and "chars)" not in render(plan, "text")
    md = render(plan, "markdown")
    assert "<pre>" + LONG.strip() in md.replace('"', "")  # collapsed, whole
    doc = json.loads(render(plan, "json"))
    docs = next(r for r in doc["resource_changes"] if r["address"] == "codeocean.data_asset.docs")
    assert docs["changes"][0]["after"] == LONG


@pytest.mark.parametrize("address, rid, name", [("valdi.vm.trainer", "vm-1", "vision-trainer"),
                                                ("valdi.vm.notebook", "vm-2", "notebook"),
                                                ("valdi.volume.scratch", "v-1", "scratch")])
def test_updates_replaces_and_deletes_name_the_live_object(address, rid, name):
    plan = every_action_plan()
    assert f'{address} [id={rid}, name="{name}"]' in render(plan, "text")
    md = render(plan, "markdown")
    section = md[md.index(f"<summary><code>{address}"):]
    head = section.split("</summary>")[0]
    assert rid in head and name in head
    r = next(r for r in json.loads(render(plan, "json"))["resource_changes"] if r["address"] == address)
    assert r["remote"] == {"id": rid, "name": name}


def test_costs_hourly_and_monthly_and_unpriced_named_in_every_format():
    plan = every_action_plan()
    text = render(plan, "text")
    assert "cost: $1.20/h ($876.00/month) -> $2.40/h ($1,752.00/month)" in text
    assert "No price known for: valdi.volume.scratch" in text
    md = render(plan, "markdown")
    assert "$876.00/month" in md and "No price known for <code>valdi.volume.scratch</code>" in md
    doc = json.loads(render(plan, "json"))
    assert doc["summary"]["monthly_cost_change"] == pytest.approx((2.4 - 1.2 + 0.18 - 1.2) * 730, abs=0.01)
    assert doc["summary"]["unpriced"] == ["valdi.volume.scratch"]


def test_partial_plan_says_so_in_every_format():
    plan = every_action_plan()
    assert "This plan is partial" in render(plan, "text") and "This plan is partial" in render(plan, "markdown")
    assert json.loads(render(plan, "json"))["partial"]["left_out"] == ["valdi.vm.other"]


def test_markdown_escapes_every_value():
    hostile = "`x` <img src=x onerror=alert(1)> <!-- hidden --> @octocat | **bold**"
    plan = Plan(actions=[Action("codeocean.data_asset.evil", "codeocean.data_asset", ActionType.UPDATE,
                                [f"description changed: {hostile}"],
                                [FieldChange("description", hostile, hostile + "!"),
                                 FieldChange("tags", ["a"], ["a", hostile], items=(ItemChange("add", "", None, hostile),))],
                                remote_id="a-1", remote_name=hostile, warnings=[hostile])],
                warnings=[hostile])
    md = render(plan, "markdown")
    for raw in ("<img", "<!-- hidden", "`x`", "@octocat", "**bold**", "| **"):
        assert raw not in md
    assert md.count("<code>") == md.count("</code>")


def test_json_validates_against_the_published_schema():
    doc = json.loads(render(every_action_plan(), "json"))
    jsonschema.validate(doc, load_schema("plan.schema.json"))
    replace = next(r for r in doc["resource_changes"] if r["address"] == "valdi.vm.trainer")
    assert replace["actions"] == ["delete", "create"]
    assert doc["summary"]["hourly_cost_change"] == pytest.approx(1.2 - 1.02)
    kinds = {r["address"]: (r["actions"], r["adopt"]) for r in doc["resource_changes"]}
    assert kinds["valdi.ssh_key.old"] == (["forget"], False) and kinds["valohai.datum.old"] == (["release"], False)
    assert kinds["codeocean.data_asset.kept"] == (["orphan"], False) and kinds["valohai.datum.model"] == (["create"], True)


def test_no_rendering_and_no_plan_file_holds_a_secret(tmp_path):
    plan = every_action_plan()
    for fmt in ("text", "json", "markdown"):
        assert SECRET not in render(plan, fmt)
    planfile.save(plan, tmp_path / "plan.bin", manifest_paths=["x"], options={})
    assert SECRET not in (tmp_path / "plan.bin").read_text()
    loaded, meta = planfile.load(tmp_path / "plan.bin")
    assert [a.type for a in loaded.actions] == [a.type for a in plan.actions]
    assert planfile.same_actions(plan, loaded) == []


def test_markdown_of_2000_datums_splits_into_pages_that_name_every_resource():
    many = Plan(actions=[Action(f"valohai.datum.d{i}", "valohai.datum", ActionType.UPDATE, ["properties.x changed"],
                                [FieldChange("properties.x", i, i + 1)], remote_id=f"d-{i}") for i in range(2000)],
                warnings=["a warning"])
    pages = render_pages(many)
    assert len(pages) > 1 and all(len(p) <= 65536 for p in pages)
    assert "Plan: 0 to add, 2000 to change" in pages[0] and "a warning" in pages[0]
    assert not any("Plan:" in p or "a warning" in p for p in pages[1:])
    joined = "".join(pages)
    assert all(f"<code>valohai.datum.d{i}</code>" in joined for i in range(2000))
    single = markdown(many)
    assert len(single) <= 65536 and "more resources did not fit" in single and "--split" in single


def test_stale_reasons_say_what_moved():
    plan = every_action_plan()
    reasons = planfile.stale_reasons(plan, manifest_digest="other", state_lineage="lin", state_serial=4,
                                     fingerprints={"valdi.vm.trainer": "f2", "valdi.vm.new": "f3"})
    text = "\n".join(reasons)
    assert "manifests changed" in text and "serial 3 to 4" in text
    assert "valdi.vm.trainer changed" in text and "valdi.vm.new appeared" in text


def test_a_warning_on_every_one_of_3000_resources_keeps_every_page_under_the_limit():
    many = Plan(actions=[Action(f"valdi.volume.v{i}", "valdi.volume", ActionType.DELETE, ["destroy requested"],
                                remote_id=f"v-{i}", warnings=[f"files in v{i} are deleted with it"])
                         for i in range(3000)], unpriced=[f"valdi.volume.v{i}" for i in range(3000)])
    pages = render_pages(many)
    assert all(len(p) <= 65536 for p in pages)
    assert "more warnings are in their resources" in pages[0] and "and 2,950 more" in pages[0]
    assert "files in v2999 are deleted with it" in pages[-1]


def test_a_nested_value_shows_field_by_field_in_the_text_plan():
    details = {"flavor_id": "94d7", "vcpus": 8, "ram": 64, "storage": 200, "password": "(sensitive)",
               "sec_group_rules": [{"port": 22, "cidr": "10.0.0.0/8"}]}
    permissions = {"users": [{"email": f"user{i}@example.com", "role": "viewer"} for i in range(6)],
                   "everyone": "none"}
    plan = Plan(actions=[
        Action("valdi.vm.big", "valdi.vm", ActionType.CREATE, ["new"], [FieldChange("details", None, details)]),
        Action("codeocean.data_asset.a", "codeocean.data_asset", ActionType.UPDATE, ["permissions changed"],
               [FieldChange("permissions", {"everyone": "viewer"}, permissions)], remote_id="a-1")])
    out = render(plan, "text")
    for line in ('      + details = {', '          + vcpus           = 8', '          + storage         = 200',
                 '          + sec_group_rules = [', '                  + cidr = "10.0.0.0/8"',
                 '          + everyone = "none"', '                  + email = "user5@example.com"',
                 '          - everyone = "viewer"'):
        assert line in out.splitlines(), (line, out)
    assert "chars)" not in out and "..." not in out
