"""A small in-memory Kind for engine tests (not a user-facing kind).

Built from plain functions and dicts, no unittest.mock: the API is a dict of objects and
a list of calls, so tests can assert what the engine asked for.
"""
from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field

from reconciler.plan.diffing import left_diff
from reconciler.providers.contract import Diff, Kind, Live


@dataclass
class MemoryApi:
    objects: dict = field(default_factory=dict)  # id -> attrs
    calls: list = field(default_factory=list)  # ("create", name), ...
    fail: set = field(default_factory=set)  # names whose create/update/delete raise
    lock: threading.Lock = field(default_factory=threading.Lock)
    ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def log(self, *call):
        with self.lock:
            self.calls.append(call)


class MemoryKind(Kind):
    name = "test.item"
    schema = None  # no spec schema: the engine tests exercise planning, not validation
    sensitive = {"secret", "token"}
    outputs = {"id", "value", "token"}
    deletion_policies = ("delete", "orphan")

    def observe(self, ctx, wanted):
        ctx.api.log("observe", len(wanted))
        by_name = {o["name"]: (i, o) for i, o in ctx.api.objects.items()}
        out = {}
        for w in wanted:
            if w.id and w.id in ctx.api.objects:
                out[w.address] = self._live(w.id, ctx.api.objects[w.id])
            elif w.lookup and w.spec and w.spec.get("name") in by_name:
                i, o = by_name[w.spec["name"]]
                out[w.address] = self._live(i, o)
            else:
                out[w.address] = None
        return out

    def _live(self, id_, attrs):
        # the token is what an API returns as a credential: a secret, apart from the outputs
        return Live(id=id_, attrs=dict(attrs), outputs={"id": id_, "value": attrs.get("value")},
                    secrets={"token": f"tok-{id_}"})

    def diff(self, spec, live, last_applied):
        return Diff(left_diff(spec, live.attrs, last_applied, replace_on=["name", "shape"],
                              sensitive=self.sensitive))

    def create(self, ctx, spec):
        if spec.get("name") in ctx.api.fail:
            raise RuntimeError(f"create of {spec['name']} failed")
        id_ = f"obj-{next(ctx.api.ids)}"
        ctx.api.objects[id_] = dict(spec)
        ctx.api.log("create", spec.get("name"))
        return self._live(id_, spec)

    def update(self, ctx, live, spec, diff):
        if spec.get("name") in ctx.api.fail:
            raise RuntimeError(f"update of {spec['name']} failed")
        attrs = ctx.api.objects[live.id]
        for change in diff.changes:
            key = change.path.split(".")[0]
            if change.new is None:
                attrs.pop(key, None)
            else:
                attrs[key] = spec[key]
        ctx.api.log("update", attrs.get("name"))
        return self._live(live.id, attrs)

    def delete(self, ctx, live, policy, last_applied):
        name = live.attrs.get("name")
        if name in ctx.api.fail:
            raise RuntimeError(f"delete of {name} failed")
        ctx.api.log(policy, name)
        if policy == "delete":
            ctx.api.objects.pop(live.id, None)

    def hourly_cost(self, ctx, attrs):  # with cost_unknown, the Priced capability
        return float(attrs.get("size", 0)) * 0.5

    def cost_unknown(self, ctx, attrs):
        return None


class MemoryProvider:
    name = "test"

    def __init__(self, api: MemoryApi | None = None):
        self.api = api or MemoryApi()
        self.kinds = [MemoryKind()]

    def connect(self, config):
        return self.api
