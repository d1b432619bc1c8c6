"""Planner and applier against the in-memory test kind (tests/memkind.py)."""
from __future__ import annotations

import pytest
from memkind import MemoryApi, MemoryProvider

from reconciler.config.model import (
    UNKNOWN,
    Lifecycle,
    Manifest,
    Position,
    Ref,
    Resource,
)
from reconciler.engine.applier import Applier
from reconciler.engine.planner import PlanOptions
from reconciler.engine.runner import Workspace, plan
from reconciler.errors import ApplyError, LockError, PlanError
from reconciler.plan.model import ActionType
from reconciler.state.local import LocalStateStore


def res(name, deletion_policy=None, lifecycle=None, **spec):
    spec.setdefault("name", name)
    return Resource(kind="test.item", name=name, spec=spec, position=Position("m.yaml", 1, 1),
                    lifecycle=lifecycle or Lifecycle(), deletion_policy=deletion_policy)


class World:
    def __init__(self, tmp_path):
        self.api = MemoryApi()
        self.store = LocalStateStore(tmp_path / "state.json")

    def ws(self, resources):
        manifest = Manifest(resources=resources, providers={}, provider_problems={}, variables={},
                            backend=None, files=["m.yaml"], digest="d", root=".")
        return Workspace(manifest=manifest, providers={"test": MemoryProvider(self.api)})

    def plan(self, resources, **options):
        ws = self.ws(resources)
        state = self.store.read()
        return ws, state, plan(ws, state, PlanOptions(**options))

    def apply(self, resources, **options):
        ws, state, result = self.plan(resources, **options)
        Applier(result, ws.kinds, lambda k: ws.context(k), self.store, state).run()
        return result.plan

    def types(self, resources, **options):
        return {a.address: a.type for a in self.plan(resources, **options)[2].plan.actions}


@pytest.fixture
def world(tmp_path):
    return World(tmp_path)


def test_apply_then_plan_shows_no_changes(world):
    first = world.apply([res("a", value=1), res("b", value=2)])
    assert first.count(ActionType.CREATE) == 2
    again = world.plan([res("a", value=1), res("b", value=2)])[2].plan
    assert not again.has_changes
    assert all(a.reasons == ["up to date"] for a in again.actions)


def test_editing_one_field_updates_just_that_field(world):
    world.apply([res("a", value=1, size=2)])
    p = world.plan([res("a", value=5, size=2)])[2].plan
    (action,) = p.actions
    assert action.type is ActionType.UPDATE
    assert [(c.path, c.old, c.new) for c in action.changes] == [("value", 1, 5)]


def test_field_that_cannot_change_in_place_forces_replacement(world):
    world.apply([res("a", shape="small")])
    (action,) = world.plan([res("a", shape="big")])[2].plan.actions
    assert action.type is ActionType.REPLACE
    assert action.changes[0].forces_replacement and "shape" in action.reasons[0]
    world.apply([res("a", shape="big")])
    assert [c[0] for c in world.api.calls if c[0] != "observe"] == ["create", "delete", "create"]


def test_a_replace_forcing_field_moved_only_in_the_service_is_drift_never_a_replace(world):
    """The service normalised `shape` (the manifest and the last apply agree): the plan
    names the field as drift and a warning, replaces nothing; --replace still forces it."""
    world.apply([res("a", shape="small", value=1)])
    (obj,) = world.api.objects.values()
    obj["shape"] = "SMALL"
    p = world.plan([res("a", shape="small", value=1)])[2].plan
    assert not p.has_changes and p.actions[0].type is ActionType.NOOP
    assert [(c.path, c.old, c.new) for d in p.drift for c in d.changes] == [("shape", "small", "SMALL")]
    assert any("shape" in w and "--replace test.item.a" in w for w in p.warnings)
    # an edit of the manifest is the user's change: it replaces
    assert world.types([res("a", shape="big", value=1)]) == {"test.item.a": ActionType.REPLACE}
    assert world.types([res("a", shape="small", value=1)], replace=("test.item.a",)) == \
        {"test.item.a": ActionType.REPLACE}
    world.apply([res("a", shape="small", value=2)])  # an update elsewhere leaves the object in place
    assert [c[0] for c in world.api.calls if c[0] not in ("observe",)] == ["create", "update"]


def test_removed_resource_is_destroyed_and_orphan_policy_keeps_object(world):
    world.apply([res("a"), res("b", deletion_policy="orphan")])
    world.apply([])
    assert world.api.calls[-2:] in ([("delete", "a"), ("orphan", "b")], [("orphan", "b"), ("delete", "a")])
    assert [o["name"] for o in world.api.objects.values()] == ["b"]
    assert world.store.read().resources == {}


def test_references_order_creates_and_show_known_after_apply(world):
    resources = [res("b", value=Ref("test.item.a", "id")), res("a", value=1)]
    _, _, result = world.plan(resources)
    b = next(a for a in result.plan.actions if a.address == "test.item.b")
    assert [c.new for c in b.changes if c.path == "value"] == [UNKNOWN]
    world.apply(resources)
    creates = [c[1] for c in world.api.calls if c[0] == "create"]
    assert creates == ["a", "b"]
    state = world.store.read()
    assert world.api.objects[state.resources["test.item.b"].id]["value"] == state.resources["test.item.a"].id
    assert not world.plan(resources)[2].plan.has_changes


def test_replacing_what_a_replaced_resource_uses_deletes_the_user_first(world):
    """b is built from a's id (a combined asset from its parts): replacing a replaces b,
    and old b must go before old a (the API refuses to delete a part in use)."""
    world.apply([res("a", shape="small"), res("b", shape=Ref("test.item.a", "id"))])
    world.api.calls.clear()
    resources = [res("a", shape="big"), res("b", shape=Ref("test.item.a", "id"))]
    types = world.types(resources)
    assert types == {"test.item.a": ActionType.REPLACE, "test.item.b": ActionType.REPLACE}
    world.apply(resources)
    assert [c for c in world.api.calls if c[0] != "observe"] == [
        ("delete", "b"), ("delete", "a"), ("create", "a"), ("create", "b")]
    assert not world.plan(resources)[2].plan.has_changes


def test_a_failed_delete_in_a_replaced_chain_keeps_what_it_uses(world):
    world.apply([res("a", shape="small"), res("b", shape=Ref("test.item.a", "id"))])
    world.api.calls.clear()
    world.api.fail.add("b")
    with pytest.raises(ApplyError):
        world.apply([res("a", shape="big"), res("b", shape=Ref("test.item.a", "id"))])
    assert not [c for c in world.api.calls if c[0] in ("delete", "create")]  # a was left alone
    assert len(world.api.objects) == 2


def test_destroy_goes_in_reverse_dependency_order(world):
    resources = [res("a"), res("b", value=Ref("test.item.a", "id")), res("c", value=Ref("test.item.b", "id"))]
    world.apply(resources)
    world.apply(resources, destroy=True)
    deletes = [c[1] for c in world.api.calls if c[0] == "delete"]
    assert deletes == ["c", "b", "a"]


def test_prevent_destroy_blocks_and_is_remembered_after_the_block_is_removed(world):
    protected = res("a", lifecycle=Lifecycle(prevent_destroy=True))
    world.apply([protected])
    with pytest.raises(PlanError, match="protected by prevent_destroy"):
        world.plan([])
    with pytest.raises(PlanError, match="prevent_destroy"):
        world.plan([protected], destroy=True)
    assert len(world.api.objects) == 1


def test_failure_skips_dependants_but_independent_branches_finish(world):
    world.api.fail.add("a")
    resources = [res("a"), res("b", value=Ref("test.item.a", "id")), res("c")]
    with pytest.raises(ApplyError) as err:
        world.apply(resources)
    assert "test.item.a" in err.value.failures
    assert "skipped" in str(err.value) and "test.item.b" in str(err.value)
    state = world.store.read()
    assert set(state.resources) == {"test.item.c"}
    # the failed create stays journaled: the next plan looks it up before creating again
    assert set(state.pending) == {"test.item.a"}
    world.api.fail.clear()
    world.apply(resources)  # a second apply converges
    assert sorted(o["name"] for o in world.api.objects.values()) == ["a", "b", "c"]
    assert not world.store.read().pending
    assert not world.plan(resources)[2].plan.has_changes


def test_interrupted_create_is_found_not_duplicated(world):
    """A journaled create whose object exists (the crash came after the API call)."""
    world.apply([res("a")])
    state = world.store.read()
    rs = state.resources.pop("test.item.a")
    state.pending["test.item.a"] = {"kind": "test.item", "spec": rs.last_applied, "started_at": 0}
    world.store.write(state)
    world.apply([res("a")])
    assert len(world.api.objects) == 1
    assert world.store.read().resources["test.item.a"].id == rs.id
    assert not world.store.read().pending


def test_three_way_merge_resets_only_fields_we_set(world):
    world.apply([res("a", value=1, size=3)])
    obj = next(iter(world.api.objects.values()))
    obj["others"] = "set by someone else"
    (action,) = world.plan([res("a", value=1)])[2].plan.actions
    assert [(c.path, c.new) for c in action.changes] == [("size", None)]


def test_ignore_changes(world):
    world.apply([res("a", value=1)])
    ignoring = res("a", value=2, lifecycle=Lifecycle(ignore_changes=("value",)))
    assert not world.plan([ignoring])[2].plan.has_changes


def test_target_includes_dependencies_and_exclude_drops_dependants(world):
    resources = [res("a"), res("b", value=Ref("test.item.a", "id")), res("c")]
    assert set(world.types(resources, targets=("test.item.b",))) == {"test.item.a", "test.item.b"}
    assert set(world.types(resources, excludes=("test.item.a",))) == {"test.item.c"}


def test_sensitive_fields_are_flagged_and_outputs_kept_as_secrets(world):
    _, _, result = world.plan([res("a", secret="hunter2")])
    change = next(c for c in result.plan.actions[0].changes if c.path == "secret")
    assert change.sensitive
    world.apply([res("a", secret="hunter2")])
    rs = world.store.read().resources["test.item.a"]
    assert "token" not in rs.outputs and rs.secrets["token"] == f"tok-{rs.id}"
    assert rs.outputs["id"] == rs.id


def test_cost_before_and_after(world):
    world.apply([res("a", size=2)])
    (action,) = world.plan([res("a", size=4)])[2].plan.actions
    assert (action.cost_before, action.cost_after) == (1.0, 2.0)


def test_second_lock_fails_at_once_naming_the_holder(world):
    with world.store.lock("apply"):
        with pytest.raises(LockError, match=r"held by .*pid \d+.*apply"):
            with world.store.lock("apply"):
                pass


def test_state_file_is_private_and_serial_moves(world, tmp_path):
    world.apply([res("a")])
    path = tmp_path / "state.json"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert world.store.read().serial >= 2
