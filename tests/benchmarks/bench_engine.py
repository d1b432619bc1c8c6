"""Engine overhead on a large no-op plan: 10,000 resources of the in-memory test kind.

Run: python tests/benchmarks/bench_engine.py [N]
Prints the time of each phase and the share the diff takes; the point is that a no-op
plan costs a few microseconds per resource beyond parsing (see bench_manifest.py).
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from memkind import MemoryApi, MemoryProvider  # noqa: E402

from reconciler.config.model import Manifest, Position, Resource  # noqa: E402
from reconciler.engine.applier import Applier  # noqa: E402
from reconciler.engine.planner import PlanOptions  # noqa: E402
from reconciler.engine.runner import Workspace, plan  # noqa: E402
from reconciler.state.local import LocalStateStore  # noqa: E402


def main(n: int) -> None:
    resources = [Resource("test.item", f"r{i}", {"name": f"r{i}", "value": i, "size": 1,
                                                  "tags": ["a", "b"], "props": {"x": i, "y": "z"}},
                          Position("m.yaml", i + 1, 1)) for i in range(n)]
    manifest = Manifest(resources, {}, {}, {}, None, ["m.yaml"], "d", ".")
    api = MemoryApi()
    ws = Workspace(manifest=manifest, providers={"test": MemoryProvider(api)})
    with tempfile.TemporaryDirectory() as tmp:
        store = LocalStateStore(Path(tmp) / "state.json")
        state = store.read()
        t = time.perf_counter()
        result = plan(ws, state, PlanOptions())
        t_plan_create = time.perf_counter() - t
        t = time.perf_counter()
        Applier(result, ws.kinds, lambda k: ws.context(k), store, state, parallelism=8).run()
        t_apply = time.perf_counter() - t
        state = store.read()
        t = time.perf_counter()
        noop = plan(ws, state, PlanOptions())
        t_noop = time.perf_counter() - t
        size = (Path(tmp) / "state.json").stat().st_size
    assert not noop.plan.has_changes
    writes = sum(1 for c in api.calls if c[0] == "create")
    print(f"resources: {n}")
    print(f"plan (all create): {t_plan_create:.2f}s")
    print(f"apply:             {t_apply:.2f}s  ({writes} creates, state {size / 1e6:.1f} MB)")
    print(f"no-op plan:        {t_noop:.2f}s  ({t_noop / n * 1e6:.0f} us per resource)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
