"""Memory of the first apply of many new Valohai datums (issue 28: under 768 MiB at 100,000).

Run: python tests/benchmarks/bench_big_apply.py [N] [--latency-ms 0] [--per-url]
     [--trace FILE]
     N datums (default 100000). The emulator runs in this process; by default it takes
     the bulk adopt form (quirk `valohai-adopt-bulk`, 500 urls a call) so the run is about
     the tool's memory, not 100,000 adopt round trips; --per-url keeps the documented one
     `url` a call (at 100,000 that is over 40 minutes here: the in-process emulator
     answered some 36 adopts a second at that size). The tool runs as its own process; printed: wall seconds, CPU seconds
     (user + sys of the child, wait4 rusage), peak RSS (ru_maxrss of the child), the
     request count, and the 1-minute load average beside them (the machine is shared).

--trace FILE runs the child under tracemalloc instead and writes the allocation sites
alive near its traced peak to FILE (very slow: 3,000 datums take about 2 minutes; for
finding what to cut at a small N, not for the figures).
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_scale import TOOL, datum_lines, load_average, tool, write_manifest  # noqa: E402

# the tool under tracemalloc: a thread snapshots whenever the traced total passes its last
# high mark by 16 MiB, so the last snapshot written is the one nearest the peak
TRACED = r"""
import os, sys, threading, time, tracemalloc, atexit
out = os.environ["BENCH_TRACE_FILE"]
tracemalloc.start(12)
best = [0, None]
def watch():
    while True:
        time.sleep(0.5)
        current, _ = tracemalloc.get_traced_memory()
        if current > best[0] + (16 << 20):
            best[0], best[1] = current, tracemalloc.take_snapshot()
threading.Thread(target=watch, daemon=True).start()
def dump():
    snap = best[1]
    if snap is None:
        return
    snap = snap.filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
    with open(out, "w") as f:
        f.write(f"traced at the snapshot: {best[0] / 2**20:.0f} MiB; peak {tracemalloc.get_traced_memory()[1] / 2**20:.0f} MiB\n\n")
        for stat in snap.statistics("lineno")[:40]:
            f.write(f"{stat.size / 2**20:8.1f} MiB {stat.count:9} {stat.traceback[0]}\n")
        f.write("\n-- by traceback --\n")
        for stat in snap.statistics("traceback")[:25]:
            f.write(f"\n{stat.size / 2**20:8.1f} MiB {stat.count:9}\n")
            for line in stat.traceback.format()[-16:]:
                f.write(line + "\n")
atexit.register(dump)
sys.argv[0] = "reconciler"
from reconciler.cli import main
main()
"""


def main(n: int, latency_ms: float, bulk: bool, trace: str | None) -> None:
    import httpx

    from reconciler.emulator import EmulatorConfig, EmulatorServer
    from reconciler.emulator.core import SANDBOX

    quirks = ["valohai-adopt-bulk"] if bulk else []
    config = EmulatorConfig(vm_provision_delay=0.0, asset_ready_delay=0.0, latency_ms=latency_ms, quirks=quirks)
    with tempfile.TemporaryDirectory() as tmp, EmulatorServer(data_dir=Path(tmp) / "emu", config=config) as server:
        work = Path(tmp)
        env = {**os.environ, **server.env(), "NO_COLOR": "1"}
        bucket = SANDBOX["valohai_bucket"]
        for i in range(n):
            server.emulator.store.put_blob(f"{bucket}/bench/{i:06}.csv", f"{i}\n".encode())
        folder = write_manifest(work / "big", datum_lines(n, 1, bucket), ("valohai",))
        state = work / "big.json"
        argv = tool(state, "apply", "--auto-approve", str(folder))
        if trace:
            argv = [sys.executable, "-c", TRACED, *argv[len(TOOL):]]
            env["BENCH_TRACE_FILE"] = str(Path(trace).resolve())
        with httpx.Client(base_url=server.url, timeout=600) as admin:
            admin.delete("/_emulator/requests")
            before = load_average()
            out = tempfile.TemporaryFile()
            t = time.perf_counter()
            proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
            _, status, usage = os.wait4(proc.pid, 0)
            seconds = time.perf_counter() - t
            code = os.waitstatus_to_exitcode(status)
            out.seek(0)
            if code:
                raise SystemExit(f"apply exited {code}:\n{out.read().decode(errors='replace')[-3000:]}")
            counts = admin.get("/_emulator/requests").json()["counts"]
        size = state.stat().st_size
    print(f"apply of {n:,} new datums ({'bulk adopt quirk' if bulk else 'one url an adopt'}, "
          f"latency {latency_ms:g} ms{', under tracemalloc' if trace else ''}): {seconds:.1f} s wall, "
          f"{usage.ru_utime + usage.ru_stime:.1f} s CPU, {usage.ru_maxrss / 1024:.0f} MiB peak RSS, "
          f"{sum(counts.values())} requests; state {size / 2**20:.0f} MiB; {before} before, {load_average()} after")


if __name__ == "__main__":
    args = sys.argv[1:]
    latency = 0.0
    trace_file = None
    if "--latency-ms" in args:
        i = args.index("--latency-ms")
        latency = float(args[i + 1])
        del args[i:i + 2]
    if "--trace" in args:
        i = args.index("--trace")
        trace_file = args[i + 1]
        del args[i:i + 2]
    per_url = "--per-url" in args
    args = [a for a in args if not a.startswith("--")]
    main(int(args[0]) if args else 100_000, latency, not per_url, trace_file)
