"""Scale, side by side with a per-resource peer, on one emulator answering with 50 ms latency.

Run: python tests/benchmarks/bench_scale.py [N] [--big] [--latency-ms 50] [--runs 3]
     (N datums, default 10000; N/10 Code Ocean assets and N/100 VALDI VMs for the mixed
     row; --big adds the 100,000-datum rows, which take minutes; each plan figure is the
     median of --runs runs, cold (manifest cache emptied first) and warm; the 1-minute
     load average is printed beside each row)

The tool runs as its own process (`reconciler ...`, as a user runs it), so its time
includes interpreter start and imports, and its peak memory is its own (wait4 rusage).
The peer is the per-resource model (Terraform's refresh): one GET per resource, 10 in
flight, also its own process, against the same emulator. The emulator runs in this
process (its latency is an asyncio sleep, so concurrent requests overlap as they would on
a real service). Request counts come from the emulator's request log.

Absolute seconds depend on the machine and its load; the ratios and request counts are
the numbers to compare.
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

TOOL = [sys.executable, "-c", "import sys; sys.argv[0] = 'reconciler'; from reconciler.cli import main; main()"]
PEER_PARALLELISM = 10  # Terraform's default -parallelism
FLAVOR = "94d76997-44ec-4f1e-8291-231de42b6030"
PROVIDER_A = "a45088e0-1681-446e-9a3e-3ed9dfc3d57e"


# -- the peer: one GET per resource, 10 in flight (run as a child process) -----------------
def peer(job_file: str) -> None:
    import httpx

    job = json.loads(Path(job_file).read_text())
    base = job["base"]
    limits = httpx.Limits(max_connections=PEER_PARALLELISM, max_keepalive_connections=PEER_PARALLELISM)
    with httpx.Client(base_url=base, timeout=60, limits=limits) as client:
        headers = {"valohai": {"Authorization": f"Token {job['valohai_token']}"},
                   "codeocean": {}, "valdi": {}}
        if any(api == "valdi" for api, _ in job["gets"]):
            body = client.post("/account/login", json=job["valdi_login"]).json()
            headers["valdi"] = {"Authorization": f"Bearer {body['access_token']}"}
        auth = {"codeocean": (job["codeocean_token"], "")}

        def get(item: list[str]) -> int:
            api, path = item
            return client.get(path, headers=headers[api], auth=auth.get(api)).status_code

        with ThreadPoolExecutor(PEER_PARALLELISM) as pool:
            statuses = list(pool.map(get, job["gets"]))
    bad = [s for s in statuses if s != 200]
    if bad:
        raise SystemExit(f"peer: {len(bad)} GETs failed (first status {bad[0]})")


# -- the watch's idle runs (run as a child process) ------------------------------------------
def watch_idle(folder: str, state: str, runs: str) -> None:
    """CPU seconds of each of `runs` watch runs over an unchanged folder (the first one
    fills the cache), as `reconciler watch` runs them; printed as JSON."""
    from reconciler.cli.common import providers
    from reconciler.config.cache import ManifestCache
    from reconciler.engine.runner import load_workspace
    from reconciler.state.local import LocalStateStore
    from reconciler.watch.eventlog import EventLog
    from reconciler.watch.loop import Watch, WatchConfig

    kinds = providers()
    cache = ManifestCache.beside([folder], memory=True)
    w = Watch(WatchConfig(interval=3600), lambda: load_workspace([folder], kinds, cache=cache),
              lambda ws: LocalStateStore(Path(state)), EventLog("text", open(os.devnull, "w")))
    cpu = []
    for _ in range(int(runs)):
        t = time.process_time()
        outcome = w.run_once()
        cpu.append(time.process_time() - t)
        if outcome.result != "ok" or outcome.drift or outcome.pending:
            raise SystemExit(f"watch run: {outcome}")
    print(json.dumps(cpu))


# -- measuring a child process ----------------------------------------------------------
RUNS = 3  # each figure is the median of this many runs (--runs N)


def load_average() -> str:
    return "load %.2f" % os.getloadavg()[0]


def median_run(runs: list["Run"]) -> "Run":
    return sorted(runs, key=lambda r: r.seconds)[len(runs) // 2]


class Run:
    def __init__(self, seconds: float, peak_mib: float, requests: int, counts: dict, output: str):
        self.seconds, self.peak_mib, self.requests, self.counts, self.output = \
            seconds, peak_mib, requests, counts, output


def measure(admin, argv: list[str], env: dict, ok=(0,)) -> Run:
    admin.delete("/_emulator/requests")
    out = tempfile.TemporaryFile()
    t = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    out.seek(0)
    text = out.read().decode(errors="replace")
    if proc.returncode not in ok:
        raise SystemExit(f"{' '.join(argv[3:])} exited {proc.returncode}:\n{text[-3000:]}")
    counts = admin.get("/_emulator/requests").json()["counts"]
    return Run(seconds, usage.ru_maxrss / 1024, sum(counts.values()), counts, text)


# -- manifests -----------------------------------------------------------------------------
def datum_lines(n: int, version: int, bucket: str) -> list[str]:
    return [f"  - {{kind: valohai.datum, name: f{i:06}, spec: {{store: sandbox-store, url: "
            f"'s3://{bucket}/bench/{i:06}.csv', tags: [bench], properties: {{index: {i}, version: {version}}}}}}}"
            for i in range(n)]


def asset_lines(n: int) -> list[str]:
    return [f"  - {{kind: codeocean.data_asset, name: a{i:05}, spec: {{name: 'asset {i}', mount: a{i}, "
            f"tags: [bench], source: {{aws: {{bucket: sandbox-bucket, prefix: data/}}}}}}}}" for i in range(n)]


def vm_lines(n: int) -> list[str]:
    blob = b"\0\0\0\x0bssh-ed25519\0\0\0 " + bytes(range(32))
    key = f"ssh-ed25519 {base64.b64encode(blob).decode()} bench"
    return [f"  - {{kind: valdi.ssh_key, name: bench, spec: {{name: bench, public_key: '{key}'}}}}"] + [
        f"  - {{kind: valdi.vm, name: vm{i:03}, spec: {{name: vm{i:03}, provider_id: {PROVIDER_A}, "
        f"details: {{flavor_id: {FLAVOR}, ssh_key_id: '${{valdi.ssh_key.bench.id}}'}}}}}}" for i in range(n)]


def write_manifest(folder: Path, lines: list[str], providers: tuple[str, ...]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    header = ["providers:"]
    if "valohai" in providers:
        header.append('  valohai: {token: "${env.VALOHAI_TOKEN}", project: "${env.VALOHAI_PROJECT}"}')
    if "codeocean" in providers:
        header.append('  codeocean: {domain: "${env.CODEOCEAN_DOMAIN}", token: "${env.CODEOCEAN_TOKEN}"}')
    if "valdi" in providers:
        header.append('  valdi: {email: "${env.VALDI_EMAIL}", password: "${env.VALDI_PASSWORD}"}')
    for old in folder.glob("*.yaml"):
        old.unlink()
    per_file = 20_000  # files stay under the 10 MB limit
    for n, i in enumerate(range(0, max(1, len(lines)), per_file)):
        top = header if n == 0 else []
        (folder / f"bench{n:02}.yaml").write_text("\n".join(top + ["resources:"] + lines[i:i + per_file]) + "\n")
    return folder


def tool(state: Path, *args: str) -> list[str]:
    return [*TOOL, "--no-color", "--state", str(state), *args]


def peer_run(admin, env: dict, work: Path, state: Path, sandbox: dict, url: str) -> Run:
    doc = json.loads(state.read_text())
    paths = {"valohai.datum": ("valohai", "/api/v0/data/{}/"),
             "codeocean.data_asset": ("codeocean", "/api/v1/data_assets/{}"),
             "valdi.vm": ("valdi", "/v1/vm/{}"), "valdi.ssh_key": ("valdi", "/sshkeys")}  # no GET of one key
    gets = [[paths[r["kind"]][0], paths[r["kind"]][1].format(r["id"])] for r in doc["resources"].values()]
    job = work / "peer.json"
    job.write_text(json.dumps({"base": url, "gets": gets, "valohai_token": sandbox["valohai_token"],
                               "codeocean_token": sandbox["codeocean_token"],
                               "valdi_login": {"email": sandbox["valdi_email"],
                                               "password": sandbox["valdi_password"]}}))
    return measure(admin, [sys.executable, __file__, "--peer", str(job)], env)


def import_seconds(env: dict, manifest: Path, state: Path) -> float:
    """Seconds of imports in a plan over a one-provider manifest (python -X importtime)."""
    argv = [sys.executable, "-X", "importtime", *TOOL[1:], "--no-color", "--state", str(state), "plan", str(manifest)]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True)
    if proc.returncode not in (0, 2):
        raise SystemExit(proc.stdout[-2000:] + proc.stderr[-2000:])
    total = 0
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _self, cumulative, name = line[len("import time:"):].split("|")
        if not name.startswith("  "):  # top level: its cumulative time includes everything below
            total += int(cumulative)
    return total / 1e6


# -- the table --------------------------------------------------------------------------
def main(n: int, big: bool, latency_ms: float) -> None:
    import httpx

    from reconciler.emulator import EmulatorConfig, EmulatorServer, valdi_catalog
    from reconciler.emulator.core import SANDBOX

    assets, vms = max(1, n // 10), max(1, n // 100)
    for item in valdi_catalog.CATALOG[PROVIDER_A]:  # room for the mixed row's VMs
        if item["flavor_id"] == FLAVOR:
            item["_capacity"] = max(item["_capacity"], vms + 20)
    rows: list[tuple[str, str, str, str, str]] = []
    notes: list[str] = []
    config = EmulatorConfig(vm_provision_delay=0.0, asset_ready_delay=0.0, latency_ms=latency_ms)
    with tempfile.TemporaryDirectory() as tmp, EmulatorServer(data_dir=Path(tmp) / "emu", config=config) as server:
        work = Path(tmp)
        env = {**os.environ, **server.env(), "NO_COLOR": "1"}
        admin = httpx.Client(base_url=server.url, timeout=600)
        bucket = SANDBOX["valohai_bucket"]
        sizes = [n] + ([100_000] if big and n < 100_000 else [])
        for size in sizes:
            for i in range(size):
                server.emulator.store.put_blob(f"{bucket}/bench/{i:06}.csv", f"{i}\n".encode())
        print(f"emulator latency {latency_ms:g} ms; peer: one GET per resource, {PEER_PARALLELISM} in flight",
              flush=True)

        # 1. apply of N new datums (also the set-up of the plans below)
        datums = write_manifest(work / "datums", datum_lines(n, 1, bucket), ("valohai",))
        state = work / "datums.json"
        r = measure(admin, tool(state, "apply", "--auto-approve", str(datums)), env)
        rows.append((f"apply of {n:,} new datums", f"{r.seconds:.1f} s, {r.requests} requests, "
                     f"{r.peak_mib:.0f} MiB peak", "-", "", load_average()))

        # 2. no-op plan over the N adopted datums, and the peer over the same objects
        argv = tool(state, "plan", "--detailed-exitcode", str(datums))
        cold, warm, load = plans(admin, argv, env, datums)
        p = median_run([peer_run(admin, env, work, state, SANDBOX, server.url) for _ in range(RUNS)])
        rows.append((f"no-op plan, {n:,} adopted datums", both(cold, warm),
                     f"{p.seconds:.1f} s, {p.requests} requests",
                     f"{p.seconds / cold.seconds:.1f}x cold, {p.seconds / warm.seconds:.1f}x warm", load))
        print_counts("no-op plan, datums", warm.counts)

        # 3. no-op plan over datums + assets + VMs (the extra objects applied without latency)
        mixed = write_manifest(work / "mixed", datum_lines(n, 1, bucket) + asset_lines(assets) + vm_lines(vms),
                               ("valohai", "codeocean", "valdi"))
        mixed_state = work / "mixed.json"
        mixed_state.write_text(state.read_text())
        server.config.latency_ms = 0
        measure(admin, tool(mixed_state, "apply", "--auto-approve", str(mixed)), env)
        server.config.latency_ms = latency_ms
        cold, warm, load = plans(admin, tool(mixed_state, "plan", "--detailed-exitcode", str(mixed)), env, mixed)
        p = median_run([peer_run(admin, env, work, mixed_state, SANDBOX, server.url) for _ in range(RUNS)])
        rows.append((f"no-op plan, {n:,} datums + {assets:,} assets + {vms} VMs", both(cold, warm),
                     f"{p.seconds:.1f} s, {p.requests} requests",
                     f"{p.seconds / cold.seconds:.1f}x cold, {p.seconds / warm.seconds:.1f}x warm", load))
        print_counts("no-op plan, mixed", warm.counts)

        # 4. watch: CPU of an idle run (nothing changed) after the first
        out = subprocess.run([sys.executable, __file__, "--watch-idle", str(datums), str(state), str(RUNS + 1)],
                             env=env, capture_output=True, text=True)
        if out.returncode:
            raise SystemExit(out.stdout[-2000:] + out.stderr[-2000:])
        cpu = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append((f"watch over {n:,} datums: an idle run after the first",
                     f"{sorted(cpu[1:])[len(cpu[1:]) // 2]:.2f} s CPU (first {cpu[0]:.2f} s)", "-", "",
                     load_average()))

        # 5. one property changed on every datum
        write_manifest(work / "datums", datum_lines(n, 2, bucket), ("valohai",))
        r = measure(admin, tool(state, "apply", "--auto-approve", str(datums)), env)
        rows.append((f"one property changed on all {n:,} datums: apply",
                     f"{r.seconds:.1f} s, {r.requests} requests", "-", "", load_average()))
        print_counts("apply, one property changed", r.counts)

        # 6. start-up: imports of a plan over a one-provider manifest
        one = write_manifest(work / "one", datum_lines(1, 1, bucket), ("valohai",))
        seconds = sorted(import_seconds(env, one, work / "one.json") for _ in range(RUNS))[RUNS // 2]
        rows.append(("start-up of a plan over a one-provider manifest", f"{seconds:.2f} s of imports", "-", "",
                     load_average()))

        # 7. 100,000 datums: apply, then a no-op plan
        if big:
            big_n = 100_000
            folder = write_manifest(work / "big", datum_lines(big_n, 1, bucket), ("valohai",))
            big_state = work / "big.json"
            server.config.latency_ms = latency_ms
            r = measure(admin, tool(big_state, "apply", "--auto-approve", str(folder)), env)
            rows.append((f"apply of {big_n:,} new datums", f"{r.seconds:.0f} s, {r.requests} requests, "
                         f"{r.peak_mib:.0f} MiB peak", "-", "", load_average()))
            cold, warm, load = plans(admin, tool(big_state, "plan", "--detailed-exitcode", str(folder)), env, folder)
            rows.append((f"no-op plan, {big_n:,} datums", both(cold, warm), "-", "", load))
        admin.close()

    print()
    print(f"median of {RUNS} runs; cold: the manifest cache emptied before each run")
    print("| work | reconciler | per-resource peer | ratio | load (1 min) |")
    print("|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    for note in notes:
        print(note)


def plans(admin, argv: list[str], env: dict, folder: Path) -> tuple[Run, Run, str]:
    """Median runs of a plan: cold (the manifest cache emptied first), then warm."""
    cold = []
    for _ in range(RUNS):
        shutil.rmtree(folder / ".reconciler" / "cache", ignore_errors=True)
        cold.append(measure(admin, argv, env))
    warm = [measure(admin, argv, env) for _ in range(RUNS)]
    return median_run(cold), median_run(warm), load_average()


def both(cold: Run, warm: Run) -> str:
    return (f"{cold.seconds:.2f} s cold, {warm.seconds:.2f} s warm; {warm.requests} requests, "
            f"{max(cold.peak_mib, warm.peak_mib):.0f} MiB peak")


def print_counts(label: str, counts: dict) -> None:
    print(f"{label}:", ", ".join(f"{c} {e}" for e, c in sorted(counts.items())), flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--peer":
        peer(sys.argv[2])
        sys.exit(0)
    if len(sys.argv) > 4 and sys.argv[1] == "--watch-idle":
        watch_idle(*sys.argv[2:5])
        sys.exit(0)
    if "--runs" in sys.argv:
        RUNS = int(sys.argv[sys.argv.index("--runs") + 1])
        sys.argv[sys.argv.index("--runs"):sys.argv.index("--runs") + 2] = []
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    latency = 50.0
    if "--latency-ms" in sys.argv:
        latency = float(sys.argv[sys.argv.index("--latency-ms") + 1])
        args = [a for a in args if a != sys.argv[sys.argv.index("--latency-ms") + 1]]
    main(int(args[0]) if args else 10_000, "--big" in sys.argv, latency)
