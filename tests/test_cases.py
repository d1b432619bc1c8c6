"""Plan cases as data (after pyinfra's tests/operations): tests/cases/<kind>/<case>.yaml.

Each case gives what the planner sees for one resource of a real kind -- the manifest's
spec (absent: the resource left the manifests), the live object (null: not in the
service) and the state entry (absent: never applied) -- and what the plan must say: the
action, adoption, the live object's id and name, the fields that changed (and the items
inside them), values every format (text, JSON, Markdown) must show or must not (`shows`,
`hides`), and words the text and Markdown plans say (`says`, `text_hides`).
One parametrized test runs them all; the case's `why` is its reason.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from reconciler.config.model import Position, Resource
from reconciler.engine.planner import make_plan
from reconciler.plan.model import ActionType
from reconciler.providers import load_providers
from reconciler.providers.contract import KindContext, Live
from reconciler.render import render
from reconciler.render.markdown import escape
from reconciler.state.base import ResourceState, StateDoc

CASES = Path(__file__).parent / "cases"
ADDRESS_NAME = "case"


def load_cases():
    for path in sorted(CASES.glob("*/*.yaml")):
        case = yaml.safe_load(path.read_text())
        yield pytest.param(path.parent.name, case, id=f"{path.parent.name}/{path.stem}")


def kinds():
    return {k.name: k for p in load_providers().values() for k in p.kinds}


def plan_case(kind_name: str, case: dict):
    address = f"{kind_name}.{ADDRESS_NAME}"
    desired = []
    if case.get("spec") is not None:
        desired.append(Resource(kind_name, ADDRESS_NAME, case["spec"], Position(f"{kind_name}.yaml", 1, 1),
                                deletion_policy=case.get("deletion_policy")))
    state = StateDoc(lineage="case", serial=1)
    if case.get("state"):
        state.resources[address] = ResourceState(kind=kind_name, **case["state"])
    live = case.get("live")
    lives = {address: None if live is None else Live(live["id"], live.get("attrs", {}), live.get("outputs", {}),
                                                     local=live.get("local", {}))}
    result = make_plan(desired, state, lives, kinds(), lambda k: KindContext(api=None))
    assert not result.errors, result.errors
    (action,) = [a for a in result.plan.actions if a.address == address]
    return result.plan, action


@pytest.mark.parametrize("kind_name, case", list(load_cases()))
def test_case(kind_name, case):
    assert case.get("why"), "every case says why"
    plan, action = plan_case(kind_name, case)
    want = case["expect"]
    assert action.type is ActionType[want["action"].upper()], action.reasons
    assert action.adopt is bool(want.get("adopt", False))
    if "remote" in want:
        assert (action.remote_id, action.remote_name) == (want["remote"].get("id"), want["remote"].get("name"))
    if "changes" in want:
        got = []
        for c in action.changes:
            entry = {"path": c.path}
            if c.items:
                entry["items"] = [{k: v for k, v in {"op": i.op, "path": i.path, "old": i.old,
                                                      "new": i.new}.items() if v not in (None, "")}
                                  for i in c.items]
            got.append(entry)
        assert got == want["changes"]
    outputs = {fmt: render(plan, fmt) for fmt in ("text", "json", "markdown")}
    json.loads(outputs["json"])
    for words in want.get("shows", []):
        for fmt, out in outputs.items():
            shown = escape(words) if fmt == "markdown" else words
            assert shown in out, f"{fmt} does not show {words!r}"
    for words in want.get("says", []):  # the human renderings' words
        assert words in outputs["text"] and escape(words) in outputs["markdown"], words
    for words in want.get("hides", []):
        for fmt, out in outputs.items():
            assert words not in out, f"{fmt} shows {words!r}"
    for words in want.get("text_hides", []):  # JSON keeps values whole: text and Markdown show what changed
        assert words not in outputs["text"] and escape(words) not in outputs["markdown"], words
    for words in want.get("markdown_hides", []):
        assert words not in outputs["markdown"], f"markdown shows {words!r} raw"
    if "whole" in want:  # never cut: whole in every format
        assert want["whole"] in outputs["text"]
        assert want["whole"] in outputs["json"] and escape(want["whole"]) in outputs["markdown"]
    if "summary" in want:
        assert want["summary"] in outputs["text"]


def test_every_kind_has_cases():
    assert {p.name for p in CASES.iterdir() if p.is_dir()} == set(kinds())
