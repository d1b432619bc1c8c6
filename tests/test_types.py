"""mypy over the tool ([tool.mypy] in pyproject.toml lists its packages) finds nothing: the
typed contract of providers/contract.py is what the engine is written against, and a
change that breaks it fails here, in the suite CI runs."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"cli", "watch", "engine", "render", "providers", "plan", "state", "config", "emulator"}


def test_every_package_of_the_tool_is_listed_for_mypy():
    import tomllib

    files = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]["files"]
    assert {f"reconciler/{p}" for p in PACKAGES} <= set(files)


def test_mypy_finds_no_error_in_the_engine(tmp_path):
    run = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "mypy-cache"),
                          "--no-error-summary", "--hide-error-context"],
                         cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert "No module named mypy" not in run.stderr, "mypy is in the `test` extra: pip install -e '.[test]'"
    assert run.returncode == 0, run.stdout + run.stderr
