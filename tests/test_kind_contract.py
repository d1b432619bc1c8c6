"""The Kind contract of reconciler.providers.contract, held by the language: a kind that
leaves out a required call cannot be made; what only some kinds can do (batches, prices,
online checks) is a Protocol the engine asks with isinstance, so it follows the methods a
kind writes and no flag can say otherwise; `ctx.api` is typed by the kind's provider; and
secrets a kind returns travel in Live.secrets, sealed and masked whatever they are called."""
from __future__ import annotations

import json
import logging
import typing

import pytest
from memkind import MemoryApi, MemoryKind, MemoryProvider

from reconciler.config.model import Manifest, Position, Resource
from reconciler.config.validation import load_schema
from reconciler.engine.applier import Applier
from reconciler.engine.planner import PlanOptions
from reconciler.engine.runner import Workspace, plan
from reconciler.providers import load_providers
from reconciler.providers.contract import (
    CAPABILITIES,
    ChecksOnline,
    CreatesInBatches,
    Kind,
    Live,
    Priced,
    UpdatesInBatches,
)
from reconciler.render.text import render_plan
from reconciler.state.local import LocalStateStore

PROVIDERS = load_providers()
KINDS = [k for p in PROVIDERS.values() for k in p.kinds]
REQUIRED = {"observe", "diff", "create", "update", "delete"}


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


def test_the_required_calls_are_abstract_and_a_kind_missing_diff_cannot_be_made():
    assert Kind.__abstractmethods__ == REQUIRED

    class NoDiff(Kind):
        name = "test.nodiff"

        def observe(self, ctx, wanted):
            return {}

        create = update = delete = observe

    assert NoDiff.__abstractmethods__ == {"diff"}
    with pytest.raises(TypeError):
        NoDiff()


def _api_type(kind_class: type) -> object:
    """The X of the Kind[X] a kind class inherits (through any intermediate base)."""
    for cls in kind_class.__mro__:
        for base in getattr(cls, "__orig_bases__", ()):
            if typing.get_origin(base) is Kind:
                return typing.get_args(base)[0]
    return None


@pytest.mark.parametrize("provider", PROVIDERS.values(), ids=lambda p: p.name)
def test_ctx_api_is_typed_as_the_client_its_provider_connects(provider):
    client = typing.get_type_hints(type(provider).connect)["return"]
    assert {k.name: _api_type(type(k)) for k in provider.kinds} == {k.name: client for k in provider.kinds}


def _methods(protocol: type) -> set[str]:
    return {n for n, v in vars(protocol).items() if callable(v) and not n.startswith("_")}


@pytest.mark.parametrize("kind", [*KINDS, MemoryKind()], ids=lambda k: k.name)
def test_a_capability_is_all_of_its_methods_or_none(kind):
    """Writing half a capability (hourly_cost without cost_unknown) would leave it unused."""
    for capability in CAPABILITIES:
        written = {m for m in _methods(capability) if callable(getattr(kind, m, None))}
        assert written in (set(), _methods(capability)), f"{kind.name}: {capability.__name__} half written"
        assert isinstance(kind, capability) == bool(written)


def test_the_base_offers_no_capability_and_no_flag():
    assert not any(hasattr(Kind, m) for c in CAPABILITIES for m in _methods(c))
    assert not any(hasattr(Kind, f) for f in ("batches_creates", "batches_updates", "prices", "checks_online"))
    assert (isinstance(MemoryKind(), Priced), isinstance(MemoryKind(), ChecksOnline)) == (True, False)


class BatchKind(MemoryKind):
    """Writes create_many: one call for all its creates. A flag saying otherwise is ignored."""

    batches_creates = False  # the old override flag: a lie nothing reads any more

    def create_many(self, ctx, specs):
        ctx.api.log("create_many", len(specs))
        return [self.create(ctx, s) for s in specs]


class OptedOut(BatchKind):
    create_many = None  # how a subclass gives the capability up: the method is gone


def _apply(tmp_path, kind: Kind, names: list[str]) -> tuple[MemoryApi, str]:
    api = MemoryApi()
    provider = MemoryProvider(api)
    provider.kinds = [kind]
    resources = [Resource("test.item", n, {"name": n}, Position("m.yaml", i + 1, 1)) for i, n in enumerate(names)]
    ws = Workspace(manifest=Manifest(resources, {}, {}, {}, None, ["m.yaml"], "d", "."), providers={"test": provider})
    store = LocalStateStore(tmp_path / "state.json")
    state = store.read()
    result = plan(ws, state, PlanOptions())
    Applier(result, ws.kinds, lambda k: ws.context(k), store, state).run()
    return api, render_plan(result.plan)


@pytest.mark.parametrize("kind, batched", [(BatchKind(), True), (MemoryKind(), False), (OptedOut(), False)],
                         ids=["writes-create_many", "does-not", "gave-it-up"])
def test_the_engine_batches_creates_exactly_for_the_kinds_that_write_create_many(tmp_path, kind, batched):
    api, _ = _apply(tmp_path, kind, ["a", "b", "c"])
    assert isinstance(kind, CreatesInBatches) is batched and not isinstance(kind, UpdatesInBatches)
    assert (("create_many", 3) in api.calls) is batched
    assert sorted(c[1] for c in api.calls if c[0] == "create") == ["a", "b", "c"]


class OpaqueSecretKind(MemoryKind):
    """Returns a credential under a name no list of secret names knows."""

    def _live(self, id_, attrs):
        live = super()._live(id_, attrs)
        return Live(live.id, live.attrs, {**live.outputs, "endpoint": "https://h"},
                    secrets={"quux": f"k-{id_}-c0ffee-91aa"})


def test_a_secret_returned_in_live_secrets_is_sealed_and_masked_whatever_its_name(tmp_path, caplog):
    with caplog.at_level(logging.DEBUG):
        _, shown = _apply(tmp_path, OpaqueSecretKind(), ["a"])
    stored = json.loads((tmp_path / "state.json").read_text())["resources"]["test.item.a"]
    secret = f"k-{stored['id']}-c0ffee-91aa"
    assert stored["secrets"] == {"quux": secret} and stored["outputs"]["endpoint"] == "https://h"
    assert "quux" not in stored["outputs"]
    assert secret not in shown and secret not in caplog.text
