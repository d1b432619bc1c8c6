"""Kill `reconciler apply` with SIGKILL at chosen API requests, apply again, and check
that nothing was duplicated or lost.

How a kill point works: the emulator is told to hold back the answer of the k-th
mutating request ("stall_after": the request is carried out at once, the answer is
delayed), the harness waits until that request has arrived, then kills the apply
process. The object exists; the dead process never learned its id. The next apply must
find it (the journaled intent + a lookup by natural key) instead of making another.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx
from tracked import copy_tracked

# requests that change something, not logins or searches
MUTATING = r"^(POST|PUT|PATCH|DELETE) (?!/account/|/api/v0/get-token/|/api/v1/data_assets/search)"

# emulator document kind -> the natural key a duplicate would share
NATURAL_KEYS = {
    "vh_datum": lambda d: None if d.get("purged") or d.get("deleted") else d.get("uri"),
    # VALDI allows repeated names, so a blind retry would make a second key or VM
    "valdi_sshkey": lambda d: (d.get("user_id"), d.get("name")),
    "valdi_vm": lambda d: (d.get("user_id"), d.get("user_provided_name")),
    "valdi_volume": lambda d: (d.get("user_id"), d.get("bucket_name")),
    # Code Ocean allows repeated asset names too
    "co_asset": lambda d: (d.get("owner"), d.get("name")),
}


@dataclass
class KillResult:
    point: int
    killed_at: str
    duplicates: int
    lost: int
    converged: bool


EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
EXAMPLE_FILES = ("keys", "files")  # local files the examples name (public keys, uploads)


def copy_example(name: str, dest: Path) -> None:
    """An example manifest with the local files it names, as a user would copy it."""
    shutil.copy(EXAMPLES / name, dest)
    for folder in EXAMPLE_FILES:
        if (EXAMPLES / folder).is_dir() and not (dest / folder).exists():
            copy_tracked(EXAMPLES / folder, dest / folder)


def apply_cmd(manifests: Path, state: Path) -> list[str]:
    return [sys.executable, "-c", "from reconciler.cli import main; main()", "--no-color", "--state", str(state),
            "apply", str(manifests), "--auto-approve"]


def mutating_requests(admin: httpx.Client) -> list[str]:
    import re
    log = admin.get("/_emulator/requests", params={"full": "1"}).json()["log"]
    return [f"{e['method']} {e['path']}" for e in log if re.match(MUTATING, f"{e['method']} {e['path']}")]


def unkeyed_kinds(admin: httpx.Client) -> set[str]:
    """Emulator object kinds the harness cannot check for duplicates yet (a provider that
    landed after NATURAL_KEYS was written): the crash test fails until they are added."""
    ignore = ("_meta", "vh_project", "vh_store", "vh_alias", "vh_user", "vh_token", "token", "session",
              "valdi_user", "co_user", "co_computation", "co_schema")  # seeded, never made by apply
    return {k for k, n in admin.get("/_emulator/docs").json().items()
            if n and k not in NATURAL_KEYS and not k.startswith(ignore)}


def duplicates(admin: httpx.Client) -> int:
    total = 0
    for kind, key in NATURAL_KEYS.items():
        items = admin.get(f"/_emulator/docs/{kind}").json()["items"]
        counts = Counter(k for k in map(key, items) if k)
        total += sum(n - 1 for n in counts.values() if n > 1)
    return total


def kill_at(point: int, manifests: Path, workdir: Path, admin: httpx.Client, env: dict, mode: str = "stall_after",
            timeout: float = 60) -> tuple[str | None, Path]:
    """Run an apply, kill it when the point-th mutating request arrives. Returns what it
    was killed at (None when the apply finished before reaching that point)."""
    state = workdir / "state.json"
    admin.post("/_emulator/faults", json={"pattern": MUTATING, "kinds": [mode], "skip": point, "times": 1,
                                          "stall_seconds": 20})
    proc = subprocess.Popen(apply_cmd(manifests, state), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    killed_at = None
    while time.monotonic() < deadline:
        faults = admin.get("/_emulator/faults").json()["faults"]
        if faults and faults[0]["hits"] >= 1:
            time.sleep(0.1)  # stall_after: the handler has acted; the answer is held
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
            killed_at = mutating_requests(admin)[-1] if mutating_requests(admin) else "?"
            break
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    else:
        proc.kill()
    admin.delete("/_emulator/faults")
    return killed_at, state
