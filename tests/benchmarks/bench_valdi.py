"""VALDI requests at scale: N SSH keys, N volumes and a few VMs through the real engine
and the emulator, counting API calls from the emulator's request log.

Run: python tests/benchmarks/bench_valdi.py [N]
Prints, for the apply and the no-op plan after it, the API calls per endpoint and the
ratio to a per-resource baseline (one GET per resource, as a naive provider would read).
"""
from __future__ import annotations

import base64
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx
from click.testing import CliRunner

from reconciler.cli import main as cli
from reconciler.emulator import EmulatorConfig, EmulatorServer

FLAVOR = "94d76997-44ec-4f1e-8291-231de42b6030"
PROVIDER_A = "a45088e0-1681-446e-9a3e-3ed9dfc3d57e"
VMS = 10  # the emulated flavor has room for 20


def public_key(i: int) -> str:
    blob = b"\0\0\0\x0bssh-ed25519\0\0\0 " + i.to_bytes(32, "big")
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} k{i}"


def manifest(n: int) -> str:
    lines = ["resources:"]
    for i in range(n):
        lines.append(f"  - {{kind: valdi.ssh_key, name: k{i:05}, spec: {{name: k{i:05}, "
                     f"public_key: '{public_key(i)}'}}}}")
        lines.append(f"  - {{kind: valdi.volume, name: v{i:05}, spec: {{bucket_name: v{i:05}}}}}")
    for i in range(VMS):
        lines.append(f"  - {{kind: valdi.vm, name: vm{i}, spec: {{name: vm{i}, provider_id: {PROVIDER_A}, "
                     f"details: {{flavor_id: {FLAVOR}, ssh_key_id: '${{valdi.ssh_key.k00000.id}}'}}}}}}")
    return "\n".join(lines) + "\n"


def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, \
            EmulatorServer(data_dir=Path(tmp) / "emu", config=EmulatorConfig(vm_provision_delay=0.2)) as server:
        os.environ.update(server.env())
        work = Path(tmp)
        (work / "m").mkdir()
        (work / "m" / "bench.yaml").write_text(manifest(n))
        admin = httpx.Client(base_url=server.url, timeout=60)
        resources = 2 * n + VMS
        print(f"resources: {n} keys, {n} volumes, {VMS} VMs")
        for label, args in (("apply", ("apply", "--auto-approve")), ("no-op plan", ("plan",))):
            admin.delete("/_emulator/requests")
            t = time.perf_counter()
            result = CliRunner().invoke(cli, ["--no-color", "--state", str(work / "state.json"), *args,
                                              str(work / "m")], catch_exceptions=False)
            seconds = time.perf_counter() - t
            assert result.exit_code == 0, result.output[-2000:]
            counts = admin.get("/_emulator/requests").json()["counts"]
            reads = sum(c for k, c in counts.items() if k.startswith("GET"))
            total = sum(counts.values())
            print(f"{label:11s} {total:5d} calls, {reads} reads ({reads / resources:.4f} reads per resource; "
                  f"baseline 1.0)  {seconds:.1f}s")
            for endpoint, count in sorted(counts.items()):
                print(f"    {count:5d}  {endpoint}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 500)
