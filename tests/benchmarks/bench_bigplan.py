"""One no-op plan at scale, measured closely: wall, CPU and peak memory of the tool's own process.

Run: python tests/benchmarks/bench_bigplan.py big   [--n 100000] [--latency-ms 0]  [--runs 3] [--work DIR]
     python tests/benchmarks/bench_bigplan.py mixed [--n 10000]  [--latency-ms 50] [--runs 3] [--work DIR]

`big`: N adopted Valohai datums. `mixed`: N datums + N/10 Code Ocean assets + N/100 VALDI VMs
(bench_scale.py's mixed row). The set-up (the emulator's data, the state, the manifests) is
made once, without latency and with the emulator's bulk adopt, and kept in --work (default
/tmp/bench-bigplan-<row>-<N>) for the next run. Each run prints the wall seconds, the CPU
seconds of the tool's process (rusage user + sys: less sensitive to a shared machine's load
than the wall clock), its peak RSS, the emulator's request count and the 1-minute load
average, cold (manifest cache emptied first) and warm; then the medians.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import bench_scale  # noqa: E402  (the manifests and the tool's command line, shared)


def run_tool(admin, argv: list[str], env: dict) -> dict:
    admin.delete("/_emulator/requests")
    out = tempfile.TemporaryFile()
    t = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    code = os.waitstatus_to_exitcode(status)
    out.seek(0)
    text = out.read().decode(errors="replace")
    if code not in (0,):
        raise SystemExit(f"{' '.join(argv[3:])} exited {code}:\n{text[-3000:]}")
    counts = admin.get("/_emulator/requests").json()["counts"]
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss": usage.ru_maxrss / 1024,
            "requests": sum(counts.values()), "load": os.getloadavg()[0], "output": text}


def main() -> None:
    import httpx

    from reconciler.emulator import EmulatorConfig, EmulatorServer, valdi_catalog
    from reconciler.emulator.core import SANDBOX

    ap = argparse.ArgumentParser()
    ap.add_argument("row", choices=["big", "mixed"])
    ap.add_argument("--n", type=int)
    ap.add_argument("--latency-ms", type=float)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--work")
    ap.add_argument("--warm-only", action="store_true")
    ap.add_argument("--save-plan", help="write the warm plan's output here (to compare plans)")
    ap.add_argument("--against", metavar="SRC",
                    help="another checkout (e.g. main's): its warm plans interleaved with this one's, "
                         "so both see the same machine load")
    args = ap.parse_args()
    n = args.n or (100_000 if args.row == "big" else 10_000)
    latency = args.latency_ms if args.latency_ms is not None else (0.0 if args.row == "big" else 50.0)
    work = Path(args.work or f"/tmp/bench-bigplan-{args.row}-{n}")
    assets, vms = max(1, n // 10), max(1, n // 100)
    for item in valdi_catalog.CATALOG[bench_scale.PROVIDER_A]:  # room for the mixed row's VMs
        if item["flavor_id"] == bench_scale.FLAVOR:
            item["_capacity"] = max(item["_capacity"], vms + 20)
    bucket = SANDBOX["valohai_bucket"]
    fresh = not (work / "ready").exists()
    if fresh:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
    config = EmulatorConfig(vm_provision_delay=0.0, asset_ready_delay=0.0, latency_ms=0,
                            quirks=["valohai-adopt-bulk"])
    with EmulatorServer(data_dir=work / "emu", config=config) as server:
        env = {**os.environ, **server.env(), "NO_COLOR": "1"}
        admin = httpx.Client(base_url=server.url, timeout=600)
        folder, state = work / "manifests", work / "state.json"
        if fresh:
            for i in range(n):
                server.emulator.store.put_blob(f"{bucket}/bench/{i:06}.csv", f"{i}\n".encode())
            lines = bench_scale.datum_lines(n, 1, bucket)
            providers: tuple[str, ...] = ("valohai",)
            if args.row == "mixed":
                lines += bench_scale.asset_lines(assets) + bench_scale.vm_lines(vms)
                providers = ("valohai", "codeocean", "valdi")
            bench_scale.write_manifest(folder, lines, providers)
            t = time.perf_counter()
            r = run_tool(admin, bench_scale.tool(state, "apply", "--auto-approve", str(folder)), env)
            print(f"set-up apply: {time.perf_counter() - t:.1f} s, {r['requests']} requests", flush=True)
            (work / "ready").write_text("")
        server.config.latency_ms = latency
        argv = bench_scale.tool(state, "plan", "--detailed-exitcode", str(folder))
        print(f"{args.row} N={n} latency {latency:g} ms", flush=True)
        results: dict[str, list[dict]] = {"cold": [], "warm": [], "against": []}
        other = {**env, "PYTHONPATH": str(Path(args.against).resolve())} if args.against else None
        for mode in (["warm"] if args.warm_only else ["cold", "warm"]):
            if mode == "warm":
                run_tool(admin, argv, env)  # fills the cache
                if other:
                    run_tool(admin, argv, other)
            for _ in range(args.runs):
                if mode == "cold":
                    shutil.rmtree(folder / ".reconciler" / "cache", ignore_errors=True)
                for label, run_env in [(mode, env)] + ([("against", other)] if other and mode == "warm" else []):
                    r = run_tool(admin, argv, run_env)
                    results[label].append(r)
                    print(f"  {label}: {r['wall']:.2f} s wall, {r['cpu']:.2f} s CPU, {r['rss']:.0f} MiB peak, "
                          f"{r['requests']} requests, load {r['load']:.2f}", flush=True)
        if args.save_plan and results["warm"]:
            Path(args.save_plan).write_text(results["warm"][-1]["output"])
        for mode, runs in results.items():
            if runs:
                med = sorted(runs, key=lambda r: r["wall"])[len(runs) // 2]
                cpu = sorted(r["cpu"] for r in runs)[len(runs) // 2]
                print(f"median {mode}: {med['wall']:.2f} s wall, {cpu:.2f} s CPU, "
                      f"{max(r['rss'] for r in runs):.0f} MiB peak, {med['requests']} requests, "
                      f"load {med['load']:.2f}")
        admin.close()


if __name__ == "__main__":
    main()
