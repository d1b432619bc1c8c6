"""With the emulator failing 20% of API requests (429 with Retry-After, 500, dropped
connections), the examples apply and converge with no duplicate."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from crash_harness import copy_example, duplicates

from reconciler.cli import main

ROOT = Path(__file__).resolve().parent.parent


def run(*args):
    r = CliRunner().invoke(main, ["--no-color", *args], catch_exceptions=False)
    return r.exit_code, r.output


EXAMPLES = [pytest.param(n, marks=pytest.mark.skipif(not (ROOT / "examples" / n).exists(),
                                                     reason=f"examples/{n} does not exist yet"))
            for n in ("valohai.yaml", "valdi.yaml", "codeocean.yaml")]
ROUNDS = 5  # fresh emulator data each round: enough requests that 20% faults surely strike


@pytest.mark.parametrize("example", EXAMPLES)
def test_apply_converges_under_20_percent_faults(example, tmp_path, sandbox_env, admin):
    manifests = tmp_path / "m"
    manifests.mkdir()
    copy_example(example, manifests)
    totals = {"requests": 0, "injected": 0, "applies": 0}
    for round_ in range(ROUNDS):
        admin.post("/_emulator/reset")
        state = str(tmp_path / f"state{round_}.json")
        admin.post("/_emulator/faults", json={"pattern": "^(GET|POST|PUT|PATCH|DELETE) /(api|v1|volume|sshkeys|account|gateway)",
                                              "rate": 0.2, "kinds": [429, 500, "drop"], "retry_after": 0.01})
        applies = 0
        code = 1
        while code != 0 and applies < 4:  # an in-doubt create may end one apply; the next converges
            code, out = run("--state", state, "apply", str(manifests), "--auto-approve")
            applies += 1
        assert code == 0, out
        log = admin.get("/_emulator/requests", params={"full": "1"}).json()["log"]
        injected = sum(1 for e in log if e["fault"])
        admin.delete("/_emulator/faults")
        code, out = run("--state", state, "plan", str(manifests), "--detailed-exitcode")
        assert code == 0, out
        assert duplicates(admin) == 0
        print(f"\n{example} round {round_}: {len(log)} requests, {injected} faults injected (each one retried), "
              f"converged after {applies} apply run(s)")
        totals["requests"] += len(log)
        totals["injected"] += injected
        totals["applies"] += applies
    print(f"{example}: {ROUNDS} rounds, {totals['requests']} requests, {totals['injected']} faults injected and "
          f"retried, {totals['applies']} apply runs, 0 duplicates, every round converged")
    assert totals["injected"] > 0


def test_a_seed_makes_the_fault_sequence_reproducible(emulator, admin):
    import httpx
    def pattern():
        admin.delete("/_emulator/requests")
        admin.post("/_emulator/config", json={"fault_rate": 0.5, "seed": 1234})
        with httpx.Client(base_url=emulator.url) as c:
            for _ in range(20):
                try:
                    c.get("/api/v0/projects/")
                except httpx.TransportError:
                    pass
        admin.post("/_emulator/config", json={"fault_rate": 0.0})
        return [e["fault"] for e in admin.get("/_emulator/requests", params={"full": "1"}).json()["log"]
                if e["path"].startswith("/api/")]
    first = pattern()
    assert any(first) and first == pattern()


ALL_EXAMPLES = ("valdi.yaml", "valohai.yaml", "codeocean.yaml")
FAULTS = "^(GET|POST|PUT|PATCH|DELETE) /(api|v1|volume|sshkeys|account|gateway)"


@pytest.mark.skipif(not all((ROOT / "examples" / n).exists() for n in ALL_EXAMPLES), reason="examples missing")
def test_one_apply_of_all_examples_succeeds_under_20_percent_faults(tmp_path, sandbox_env, admin):
    """A POST answered 500 or cut off is resolved inside the run (lookup, then create):
    the first apply exits 0. The full 10-round figures: tests/benchmarks/bench_faults.py."""
    manifests = tmp_path / "m"
    manifests.mkdir()
    for name in ALL_EXAMPLES:
        copy_example(name, manifests)
    for round_ in range(2):
        admin.post("/_emulator/reset")
        admin.delete("/_emulator/requests")
        state = str(tmp_path / f"state{round_}.json")
        shutil.rmtree(manifests / ".secrets", ignore_errors=True)
        admin.post("/_emulator/faults", json={"pattern": FAULTS, "rate": 0.2, "kinds": [429, 500, "drop"],
                                              "retry_after": 0.01})
        code, out = run("--state", state, "apply", str(manifests), "--auto-approve")
        admin.delete("/_emulator/faults")
        assert code == 0, out
        assert duplicates(admin) == 0
        code, out = run("--state", state, "plan", str(manifests), "--detailed-exitcode")
        assert code == 0, out


@pytest.mark.parametrize("endpoint", ["POST /volume$", "POST /v1/vm/provision", "POST /sshkeys",
                                      "POST /api/v1/data_assets$"])
def test_a_create_whose_answer_is_lost_after_it_acted_is_found_not_made_twice(endpoint, tmp_path, sandbox_env,
                                                                              admin):
    """drop_after: the service made the object, the client never heard. The same run looks
    it up by natural key and records it: no duplicate, exit 0, nothing left to do."""
    manifests = tmp_path / "m"
    manifests.mkdir()
    for name in ("valdi.yaml", "codeocean.yaml"):
        copy_example(name, manifests)
    admin.post("/_emulator/faults", json={"pattern": f"^{endpoint}", "rate": 1.0, "kinds": ["drop_after"],
                                          "times": 1})
    state = str(tmp_path / "state.json")
    code, out = run("--state", state, "apply", str(manifests), "--auto-approve")
    hits = admin.get("/_emulator/faults").json()["faults"][0]["hits"]
    admin.delete("/_emulator/faults")
    assert hits == 1, f"the fault on {endpoint} never fired"
    assert duplicates(admin) == 0
    if endpoint != "POST /sshkeys":  # a generated key's private key left with the lost answer
        assert code == 0, out
    code, out = run("--state", state, "plan", str(manifests), "--detailed-exitcode")
    assert duplicates(admin) == 0
    if endpoint != "POST /sshkeys":
        assert code == 0, out
