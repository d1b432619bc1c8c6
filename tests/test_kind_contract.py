"""Every registered kind keeps the typed contract of reconciler.providers.contract.Kind: it
inherits the base (so the engine can call every hook and read every attribute without
getattr), names itself, and ships the JSON schema its manifests are checked against."""
from __future__ import annotations

import pytest

from reconciler.config.validation import load_schema
from reconciler.providers import load_providers
from reconciler.providers.contract import Kind, KindContext

KINDS = [k for p in load_providers().values() for k in p.kinds]


def test_the_three_providers_register_kinds():
    assert {k.name.split(".")[0] for k in KINDS} == {"valdi", "valohai", "codeocean"}


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
def test_kind_inherits_the_contract_and_ships_its_schema(kind):
    assert isinstance(kind, Kind)
    assert kind.schema == f"{kind.name}.schema.json"
    schema = load_schema(kind.schema)  # installed with the package
    assert schema.get("type") == "object"
    assert "id" in kind.outputs
    assert kind.deletion_policies, "the first policy is the default"
    for name in ("observe", "diff", "create", "update", "delete"):  # the five calls are its own
        assert getattr(type(kind), name) is not getattr(Kind, name), f"{kind.name} does not write {name}"


class Bare(Kind):
    name = "test.bare"


class Batching(Bare):
    def create_many(self, ctx, specs):
        return []

    def hourly_cost(self, ctx, attrs):
        return 1.0


def test_optional_hooks_are_no_ops_and_overrides_are_recorded():
    bare, ctx = Bare(), KindContext(api=None)
    assert bare.check(ctx, []) == [] and bare.check_offline([]) == []
    assert bare.hourly_cost(ctx, {}) is None and bare.cost_unknown(ctx, {}) is None
    assert bare.plan_notes(None, None, None) == []
    assert (bare.batches_creates, bare.batches_updates, bare.prices, bare.checks_online) == (False,) * 4
    assert (Batching.batches_creates, Batching.batches_updates, Batching.prices) == (True, False, True)


def test_default_batch_calls_answer_each_item_even_when_one_fails():
    class Flaky(Bare):
        def create(self, ctx, spec):
            if spec.get("bad"):
                raise RuntimeError("refused")
            return spec["name"]

    made = Flaky().create_many(KindContext(api=None), [{"name": "a"}, {"bad": True}, {"name": "c"}])
    assert made[0] == "a" and isinstance(made[1], RuntimeError) and made[2] == "c"
