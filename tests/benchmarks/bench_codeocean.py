"""Code Ocean reads at scale: a plan over N data assets through the real engine and the
emulator, counting API calls from the emulator's request log.

Run: python tests/benchmarks/bench_codeocean.py [N]
The N assets are made straight in the emulator's store (creating them through the API
would measure the emulator's draft -> ready delay, not us), then recorded in the state,
so the plan is the steady-state one a scheduled drift job makes. Baseline: one GET per
asset, as a naive provider (or the SDK's get_data_asset in a loop) would make.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from click.testing import CliRunner

from reconciler.cli import main as cli
from reconciler.emulator import EmulatorServer
from reconciler.emulator import codeocean_model as co
from reconciler.emulator.core import SANDBOX


def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, EmulatorServer(data_dir=Path(tmp) / "emu") as server:
        os.environ.update(server.env())
        store = server.emulator.store
        user = co.user_by_token(store, SANDBOX["codeocean_token"])
        lines = ["resources:"]
        resources = {}
        now = time.time()
        for i in range(n):
            doc = co.create_asset(store, user, {"name": f"asset {i}", "mount": f"a{i}", "tags": ["bench"],
                                                "source": {"aws": {"bucket": "sandbox-bucket", "prefix": "data/"}}},
                                  now=now)
            lines.append(f"  - {{kind: codeocean.data_asset, name: a{i:05}, spec: {{name: 'asset {i}', "
                         f"mount: a{i}, tags: [bench], source: {{aws: {{bucket: sandbox-bucket, prefix: data/}}}}}}}}")
            resources[f"codeocean.data_asset.a{i:05}"] = {
                "kind": "codeocean.data_asset", "id": doc["id"],
                "last_applied": {"name": f"asset {i}", "mount": f"a{i}", "tags": ["bench"],
                                 "source": {"aws": {"bucket": "sandbox-bucket", "prefix": "data/"}}}}
        work = Path(tmp) / "m"
        work.mkdir()
        (work / "bench.yaml").write_text("\n".join(lines) + "\n")
        state = Path(tmp) / "state.json"
        state.write_text(json.dumps({"version": 1, "lineage": str(uuid.uuid4()), "serial": 1,
                                     "resources": resources, "pending": {}}))
        admin = httpx.Client(base_url=server.url, timeout=60)
        admin.delete("/_emulator/requests")
        t = time.perf_counter()
        result = CliRunner().invoke(cli, ["--no-color", "--state", str(state), "plan", str(work),
                                          "--detailed-exitcode"], catch_exceptions=False)
        seconds = time.perf_counter() - t
        assert result.exit_code == 0, result.output[-2000:]
        counts = admin.get("/_emulator/requests").json()["counts"]
        total = sum(counts.values())
        print(f"data assets: {n}; no-op plan: {total} API calls ({total / n:.4f} per asset; "
              f"baseline 1 GET each = {n}; ratio {n / total:.0f}x fewer)  {seconds:.1f}s")
        for endpoint, count in sorted(counts.items()):
            print(f"    {count:5d}  {endpoint}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3000)
