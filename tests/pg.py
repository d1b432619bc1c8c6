"""A real PostgreSQL server for the state tests: RECONCILER_TEST_PG if set (CI sets it),
else a throwaway cluster started here as the postgres user. Where none can be had the
tests skip with the reason, except under CI=true, where that is a failure."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest


def _bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    return None


def _as_postgres(cmd: list[str]) -> list[str]:
    return cmd if os.geteuid() != 0 else ["runuser", "-u", "postgres", "--", *cmd]


def _start() -> tuple[str, callable]:
    initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
    if not (initdb and pg_ctl):
        raise RuntimeError("no PostgreSQL server binaries (initdb, pg_ctl) on this machine")
    base = Path(tempfile.mkdtemp(prefix="reconciler-pg-"))
    os.chmod(base, 0o777)
    data = base / "data"
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run = lambda cmd: subprocess.run(_as_postgres(cmd), check=True, capture_output=True, timeout=120)  # noqa: E731
    run([initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"])
    run([pg_ctl, "-D", str(data), "-o", f"-p {port} -k {base} -c listen_addresses=127.0.0.1", "-w",
         "-l", str(base / "log"), "start"])

    def stop():
        subprocess.run(_as_postgres([pg_ctl, "-D", str(data), "-m", "immediate", "stop"]), capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
    return f"postgresql://postgres@127.0.0.1:{port}/postgres", stop


@pytest.fixture(scope="session")
def pg_server():
    url = os.environ.get("RECONCILER_TEST_PG")
    stop = None
    if not url:
        try:
            url, stop = _start()
        except Exception as e:  # noqa: BLE001
            reason = f"no PostgreSQL server could be started: {e}"
            if os.environ.get("CI") == "true":
                pytest.fail(reason)
            pytest.skip(reason)
    yield url
    if stop:
        stop()


@pytest.fixture
def pg_url(pg_server):
    """A fresh workspace on the shared server."""
    sep = "&" if "?" in pg_server else "?"
    return f"{pg_server}{sep}workspace=test-{uuid.uuid4().hex[:10]}"
