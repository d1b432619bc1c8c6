"""Copy what the repository tracks, never what a user's run left beside it.

The README's quick start writes examples/.reconciler/ (sandbox data and state) and
examples/.secrets/ (keys the sandbox returned); a test that copied them would start
from someone else's objects. So tests copy the files git tracks, and, where there is
no git (an unpacked source archive), everything but the ignored run outputs."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

RUN_OUTPUTS = (".reconciler", ".secrets", "__pycache__", "*.pyc", "plan.bin", "*.plan")


def tracked_files(src: Path) -> list[Path] | None:
    """The files under src that git tracks (relative to src), or None without git."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--", "."], cwd=src, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return [Path(p) for p in out.decode().split("\0") if p]


def copy_tracked(src: Path, dest: Path) -> Path:
    """src (a file or a folder) copied to dest as the repository has it."""
    src = Path(src)
    if src.is_file():
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, dest)
        return dest
    files = tracked_files(src)
    if files is None:
        shutil.copytree(src, dest, ignore=shutil.ignore_patterns(*RUN_OUTPUTS))
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    for rel in files:
        if (src / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src / rel, dest / rel)
    return dest
