"""Eight applies of eight different workspaces at once against one emulator: all succeed
and each converges (a following plan shows no changes)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from click.testing import CliRunner

from reconciler.cli import main

WORKSPACES = 8


def manifest(i: int) -> str:
    items = "\n".join(textwrap.dedent(f"""\
      - kind: valohai.datum
        name: w{i}-f{j}
        spec:
          store: sandbox-store
          url: s3://sandbox-bucket/load/w{i}/f{j}.csv
          properties: {{workspace: {i}, file: {j}}}
          tags: [load, w{i}]
          alias: load-w{i}-f{j}
    """) for j in range(3))
    return "resources:\n" + textwrap.indent(items, "  ")


def test_eight_workspaces_apply_at_once(tmp_path, sandbox_env, admin):
    procs = []
    for i in range(WORKSPACES):
        for j in range(3):
            admin.put(f"/_emulator/s3/sandbox-bucket/load/w{i}/f{j}.csv", content=f"{i},{j}\n".encode())
        ws = tmp_path / f"ws{i}"
        ws.mkdir()
        (ws / "main.yaml").write_text(manifest(i))
        procs.append(subprocess.Popen(
            [sys.executable, "-c", "from reconciler.cli import main; main()", "--no-color", "apply", str(ws),
             "--auto-approve"], env={**os.environ, **sandbox_env}, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True))
    results = [(p.wait(180), p.stdout.read()) for p in procs]
    assert [code for code, _ in results] == [0] * WORKSPACES, results
    for i in range(WORKSPACES):
        r = CliRunner().invoke(main, ["--no-color", "plan", str(tmp_path / f"ws{i}"), "--detailed-exitcode"])
        assert r.exit_code == 0, r.output
    datums = admin.get("/_emulator/docs/vh_datum").json()["items"]
    uris = [d["uri"] for d in datums if "/load/" in (d.get("uri") or "")]
    assert len(uris) == len(set(uris)) == WORKSPACES * 3
    print(f"\n{WORKSPACES} concurrent applies: all exit 0, {len(uris)} datums, no duplicates, every workspace converged")
