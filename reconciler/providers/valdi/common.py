"""Small helpers the VALDI kinds share: problems with positions, private files, waiting."""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable

from reconciler.errors import ApiError, Problem
from reconciler.model import Resource

POLL_FIRST, POLL_MAX = 0.2, 5.0  # seconds between status checks: start fast, back off
PROGRESS_EVERY = 10.0  # seconds between "still waiting" lines


def problem(resource: Resource, field: str, message: str) -> Problem:
    pos = resource.where(f"spec.{field}")
    return Problem(pos.file, pos.line, pos.column, f"{resource.address}.spec.{field}", message)


def write_private(path: Path, text: str) -> None:
    """Write a secret file readable by its owner only (0600 from the first byte)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def read_text(base_dir: str | Path | None, path: str | None) -> str | None:
    if not isinstance(path, str) or not path:
        return None
    p = Path(path)
    p = p if p.is_absolute() else Path(base_dir or ".") / p
    try:
        return p.read_text()
    except (OSError, UnicodeDecodeError):
        return None


def wait_for(check: Callable[[], tuple[bool, str]], what: str, timeout: float,
             progress: Callable[[str], None]) -> None:
    """Poll `check` (-> done, status) with backoff until done; an error after `timeout`."""
    started, delay, reported = time.monotonic(), POLL_FIRST, 0.0
    while True:
        done, status = check()
        if done:
            return
        waited = time.monotonic() - started
        if waited > timeout:
            raise ApiError(f"{what} is still {status} after {waited:.0f}s (timeout {timeout:.0f}s); "
                           "the next apply picks it up", api="valdi")
        if waited - reported >= PROGRESS_EVERY:
            progress(f"{what}: {status} ({waited:.0f}s)")
            reported = waited
        time.sleep(delay)
        delay = min(delay * 2, POLL_MAX)
