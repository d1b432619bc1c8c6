"""Applies needed to converge under injected faults: the three example manifests in one
folder, a fresh emulator data set per round, `apply` repeated until it exits 0.

Run: python tests/benchmarks/bench_faults.py [ROUNDS] [RATE ...]   (default 10 rounds, 0.2 0.5)
Prints per rate: applies per round (max, mean), requests, faults injected, duplicates
(objects sharing a natural key, from tests/crash_harness.py), and whether a plan after
the last apply shows no change.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import httpx
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from crash_harness import copy_example, duplicates  # noqa: E402

from reconciler.cli import main as cli  # noqa: E402
from reconciler.emulator import EmulatorConfig, EmulatorServer  # noqa: E402

PATTERN = "^(GET|POST|PUT|PATCH|DELETE) /(api|v1|volume|sshkeys|account|gateway)"
EXAMPLES = ("valdi.yaml", "valohai.yaml", "codeocean.yaml")


def run(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(cli, ["--no-color", *args], catch_exceptions=False)
    return r.exit_code, r.output


def one_round(admin: httpx.Client, folder: Path, state: Path, rate: float, limit: int = 6) -> dict:
    admin.post("/_emulator/reset")
    admin.delete("/_emulator/requests")
    admin.post("/_emulator/faults", json={"pattern": PATTERN, "rate": rate, "kinds": [429, 500, "drop"],
                                          "retry_after": 0.01})
    applies, code, out, failures = 0, 1, "", []
    while code != 0 and applies < limit:
        code, out = run("--state", str(state), "apply", str(folder), "--auto-approve")
        applies += 1
        if code:
            tail = out[out.find("Error:"):] if "Error:" in out else out[-600:]
            failures.append(" | ".join(line.strip() for line in tail.splitlines()[:4]))
    log = admin.get("/_emulator/requests", params={"full": "1"}).json()["log"]
    admin.delete("/_emulator/faults")
    plan_code, _ = run("--state", str(state), "plan", str(folder), "--detailed-exitcode")
    return {"applies": applies, "converged": code == 0 and plan_code == 0, "requests": len(log),
            "faults": sum(1 for e in log if e["fault"]), "duplicates": duplicates(admin), "failures": failures}


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    rates = [float(x) for x in sys.argv[2:]] or [0.2, 0.5]
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        server = EmulatorServer(data_dir=tmp_path / "emu",
                                config=EmulatorConfig(vm_provision_delay=0.2, asset_ready_delay=0.1)).start()
        os.environ.update(server.env())
        folder = tmp_path / "m"
        folder.mkdir()
        for name in EXAMPLES:
            copy_example(name, folder)
        try:
            with httpx.Client(base_url=server.url, timeout=30) as admin:
                for rate in rates:
                    results = []
                    for i in range(rounds):
                        for f in (folder / ".secrets").glob("*") if (folder / ".secrets").exists() else []:
                            f.unlink()
                        r = one_round(admin, folder, tmp_path / f"state-{rate}-{i}.json", rate)
                        results.append(r)
                        print(f"rate {rate} round {i}: {r}", flush=True)
                    applies = [r["applies"] for r in results]
                    print(f"== rate {rate}: {rounds} rounds, applies max {max(applies)} mean "
                          f"{sum(applies) / len(applies):.2f}, converged {sum(r['converged'] for r in results)}"
                          f"/{rounds}, requests {sum(r['requests'] for r in results)}, faults "
                          f"{sum(r['faults'] for r in results)}, duplicates {sum(r['duplicates'] for r in results)}",
                          flush=True)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
