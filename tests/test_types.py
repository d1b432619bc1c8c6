"""mypy over the engine and the Kind contract ([tool.mypy] in pyproject.toml lists the
files) finds nothing: the typed contract of providers/base.py is what the engine is
written against, and a change that breaks it fails here, in the suite CI runs."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENGINE = {"model", "graph", "diffing", "planner", "applier", "runner", "planfile", "providers/base"}


def test_the_engine_is_listed_for_mypy():
    import tomllib

    files = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]["files"]
    assert {f"reconciler/{m}.py" for m in ENGINE} <= set(files)


def test_mypy_finds_no_error_in_the_engine(tmp_path):
    run = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "mypy-cache"),
                          "--no-error-summary", "--hide-error-context"],
                         cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert "No module named mypy" not in run.stderr, "mypy is in the `test` extra: pip install -e '.[test]'"
    assert run.returncode == 0, run.stdout + run.stderr
