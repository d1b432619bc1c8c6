"""for_each at scale: a block of N datums against N written-out blocks, and the requests
a plan over N instances makes through the emulator.

    python tests/benchmarks/bench_for_each.py [N]

Prints: manifest size and load+validate time for both forms (they give the same
resources), then an apply and a no-op plan of the for_each form in the sandbox with the
emulator's request counts (one paged listing per kind, not a request per instance).
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import httpx
from click.testing import CliRunner

from reconciler.cli import main as cli_main
from reconciler.emulator import EmulatorConfig, EmulatorServer
from reconciler.emulator.core import SANDBOX
from reconciler.engine.runner import load_workspace
from reconciler.providers import load_providers

SPEC = """    spec:
      store: sandbox-store
      url: s3://sandbox-bucket/bench/{url}.csv
      properties: {{shard: "{key}", owner: ml-team}}
      tags: [bench]
"""


def for_each_form(n: int) -> str:
    keys = "\n".join(f"    - s{i}" for i in range(n))
    return (f"variables:\n  shards:\n{keys}\nresources:\n  - kind: valohai.datum\n    name: shard\n"
            "    for_each: ${var.shards}\n" + SPEC.format(url="${each.value}", key="${each.key}"))


def written_form(n: int) -> str:
    return "resources:\n" + "".join(f"  - kind: valohai.datum\n    name: shard-{i}\n"
                                     + SPEC.format(url=f"s{i}", key=f"s{i}") for i in range(n))


def load(folder: Path) -> tuple[int, float]:
    start = time.perf_counter()
    ws = load_workspace([str(folder)], load_providers())
    return len(ws.manifest.resources), time.perf_counter() - start


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name, text in (("for_each", for_each_form(n)), ("written", written_form(n))):
            (tmp / name).mkdir()
            (tmp / name / "m.yaml").write_text(text)
            count, seconds = load(tmp / name)
            print(f"{name:<9} {len(text) / 1024:8.0f} KB  {count:6,} resources  load+validate {seconds:6.2f} s")
        server = EmulatorServer(data_dir=tmp / "emu", config=EmulatorConfig()).start()
        try:
            with httpx.Client(base_url=server.url) as admin:
                for i in range(n):
                    admin.put(f"/_emulator/s3/{SANDBOX['valohai_bucket']}/bench/s{i}.csv", content=b"x\n")
                env = server.env()
                runner = CliRunner(env=env)
                state = str(tmp / "state.json")
                for label, args in (("apply", ["apply", "--auto-approve"]), ("no-op plan", ["plan"])):
                    admin.delete("/_emulator/requests")
                    start = time.perf_counter()
                    result = runner.invoke(cli_main, ["--no-color", "--state", state, *args, str(tmp / "for_each")])
                    seconds = time.perf_counter() - start
                    assert result.exit_code == 0, result.output[-2000:]
                    counts = admin.get("/_emulator/requests").json()["counts"]
                    print(f"{label:<11} {sum(counts.values()):6,} requests for {n:,} instances "
                          f"({seconds:.1f} s): {counts}")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
