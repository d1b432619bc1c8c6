"""kill -9 of `apply` at every mutating request, then apply again: no duplicate, nothing
lost, and a following plan shows no changes (tests/crash_harness.py)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from crash_harness import (
    KillResult,
    copy_example,
    duplicates,
    kill_at,
    mutating_requests,
    unkeyed_kinds,
)

from reconciler.cli import main

ROOT = Path(__file__).resolve().parent.parent
# every provider's example; one that has not landed yet is skipped with the reason
EXAMPLES = [pytest.param(n, marks=pytest.mark.skipif(not (ROOT / "examples" / n).exists(),
                                                     reason=f"examples/{n} does not exist yet"))
            for n in ("valohai.yaml", "valdi.yaml", "codeocean.yaml")]


def run(*args):
    r = CliRunner().invoke(main, ["--no-color", *args], catch_exceptions=False)
    return r.exit_code, r.output


@pytest.mark.parametrize("mode", ["stall_after", "stall"])  # killed after / before the API acted
@pytest.mark.parametrize("example", EXAMPLES)
def test_kill_9_at_every_mutating_request_converges(example, mode, tmp_path, sandbox_env, admin):
    manifests = tmp_path / "m"
    manifests.mkdir()
    copy_example(example, manifests)
    env = {**os.environ, **sandbox_env}
    # a clean run tells how many mutating requests an apply makes
    assert run("--state", str(tmp_path / "clean.json"), "apply", str(manifests), "--auto-approve")[0] == 0
    clean = mutating_requests(admin)  # the k-th of these is the request kill point k stops at
    points = len(clean)
    assert points >= 2
    assert not unkeyed_kinds(admin), f"add natural keys to crash_harness.NATURAL_KEYS for {unkeyed_kinds(admin)}"
    if points > 12:  # a spread of kill points keeps CI within minutes
        chosen = sorted({round(i * (points - 1) / 9) for i in range(10)})
    else:
        chosen = list(range(points))
    results = []
    for point in chosen:
        admin.post("/_emulator/reset")
        work = tmp_path / f"kill{point}"
        work.mkdir()
        killed_at, state = kill_at(point, manifests, work, admin, env, mode=mode)
        code, out = run("--state", str(state), "apply", str(manifests), "--auto-approve")
        assert code == 0, out
        code, _ = run("--state", str(state), "plan", str(manifests), "--detailed-exitcode")
        doc = json.loads(state.read_text())
        wanted = {f"{r.kind}.{r.name}" for r in _resources(manifests)}
        lost = len(wanted - set(doc["resources"]))
        results.append(KillResult(point, clean[point] if killed_at else "(finished first)", duplicates(admin), lost, code == 0))
    print(f"\n{example} ({mode}): {len(chosen)} of {points} kill points")
    for r in results:
        print(f"  point {r.point}: killed at {r.killed_at:<55} duplicates={r.duplicates} lost={r.lost} "
              f"converged={r.converged}")
    assert all(r.duplicates == 0 and r.lost == 0 and r.converged for r in results)
    assert sum(1 for r in results if r.killed_at != "(finished first)") >= len(chosen) - 1


def _resources(manifests: Path):
    from reconciler.config.manifest import load_manifest
    return load_manifest([str(manifests)]).resources
