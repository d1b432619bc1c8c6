"""Valohai requests at scale: N adopted and tagged datums through the real engine and the
emulator, counting API calls from the emulator's request log.

Run: python tests/benchmarks/bench_valohai.py [N]
Prints, for the apply, the no-op plan after it, and a one-property change on every datum,
the API calls made and the ratio to a per-resource baseline (one call per datum).
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import httpx
from click.testing import CliRunner

from reconciler.cli import main as cli
from reconciler.emulator import EmulatorServer
from reconciler.emulator.core import SANDBOX


def run(workdir: Path, *args: str) -> None:
    result = CliRunner().invoke(cli, ["--no-color", "--state", str(workdir / "state.json"), *args,
                                      str(workdir / "m")], catch_exceptions=False)
    assert result.exit_code in (0, 2), result.output[-2000:]


def manifest(n: int, version: int) -> str:
    lines = ["providers:", '  valohai: {token: "${env.VALOHAI_TOKEN}", project: "${env.VALOHAI_PROJECT}"}',
             "resources:"]
    for i in range(n):
        lines.append(f"  - {{kind: valohai.datum, name: f{i:05}, spec: {{store: sandbox-store, url: "
                     f"'s3://{SANDBOX['valohai_bucket']}/bench/{i:05}.csv', tags: [bench], "
                     f"properties: {{index: {i}, version: {version}}}}}}}")
    return "\n".join(lines) + "\n"


def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, EmulatorServer(data_dir=Path(tmp) / "emu") as server:
        os.environ.update(server.env())
        for i in range(n):
            server.emulator.store.put_blob(f"{SANDBOX['valohai_bucket']}/bench/{i:05}.csv", f"{i}\n".encode())
        work = Path(tmp)
        (work / "m").mkdir()
        admin = httpx.Client(base_url=server.url, timeout=60)
        print(f"datums: {n}")
        for label, version, args in (("apply (adopt + properties + tags)", 1, ("apply", "--auto-approve")),
                                     ("no-op plan", 1, ("plan",)),
                                     ("apply: one property changed on each", 2, ("apply", "--auto-approve"))):
            (work / "m" / "bench.yaml").write_text(manifest(n, version))
            admin.delete("/_emulator/requests")
            t = time.perf_counter()
            run(work, *args)
            seconds = time.perf_counter() - t
            counts = admin.get("/_emulator/requests").json()["counts"]
            total = sum(counts.values())
            print(f"{label:38s} {total:4d} calls ({total / n:.4f} per datum; baseline 1.0)  {seconds:.1f}s")
            for endpoint, count in sorted(counts.items()):
                print(f"    {count:5d}  {endpoint}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5000)
