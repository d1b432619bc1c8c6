"""Eight applies of eight different workspaces at once against one emulator, each with
resources of all three APIs (datums, a VALDI key, VM and volume with a file, a Code Ocean
asset): all succeed, each converges (a following plan shows no changes), no duplicates."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

from click.testing import CliRunner
from crash_harness import EXAMPLES, duplicates

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
    items += textwrap.dedent(f"""\
      - kind: valdi.ssh_key
        name: w{i}-key
        spec: {{name: load-w{i}, public_key_file: key.pub}}
      - kind: valdi.vm
        name: w{i}-vm
        spec:
          name: load-w{i}
          provider_id: a45088e0-1681-446e-9a3e-3ed9dfc3d57e
          details: {{flavor_id: 94d76997-44ec-4f1e-8291-231de42b6030, ssh_key_id: "${{valdi.ssh_key.w{i}-key.id}}"}}
      - kind: valdi.volume
        name: w{i}-volume
        spec:
          bucket_name: load-w{i}
          folders: [in]
          files: [{{path: in/data.csv, source: data.csv}}]
      - kind: codeocean.data_asset
        name: w{i}-asset
        spec:
          name: load w{i}
          tags: [load]
          source: {{aws: {{bucket: sandbox-bucket, prefix: load/w{i}/}}}}
    """)
    return "resources:\n" + textwrap.indent(items, "  ")


def test_eight_workspaces_apply_at_once(tmp_path, sandbox_env, admin):
    procs = []
    for i in range(WORKSPACES):
        for j in range(3):
            admin.put(f"/_emulator/s3/sandbox-bucket/load/w{i}/f{j}.csv", content=f"{i},{j}\n".encode())
        ws = tmp_path / f"ws{i}"
        ws.mkdir()
        (ws / "main.yaml").write_text(manifest(i))
        shutil.copy(EXAMPLES / "keys" / "deploy.pub", ws / "key.pub")
        (ws / "data.csv").write_text(f"workspace,{i}\n")
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
    assert duplicates(admin) == 0
    vms = [v for v in admin.get("/_emulator/docs/valdi_vm").json()["items"] if v["user_provided_name"].startswith("load-")]
    assets = [a for a in admin.get("/_emulator/docs/co_asset").json()["items"] if a["name"].startswith("load ")]
    assert len(vms) == len(assets) == WORKSPACES
    print(f"\n{WORKSPACES} concurrent applies: all exit 0, {len(uris)} datums, {len(vms)} VMs, {len(assets)} data "
          "assets, no duplicates, every workspace converged")
