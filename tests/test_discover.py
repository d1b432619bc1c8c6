"""`reconciler discover`: objects made outside reconciler (here by another state) are
written as a manifest with imports:; apply takes them over without creating anything,
and the next plan says "No changes", for every kind."""
from __future__ import annotations

import pytest
import yaml
from conftest import api_calls, cli

SEED = """\
resources:
  - kind: valdi.ssh_key
    name: k
    spec: {name: Deploy Key, public_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBx1 me@example"}
  - kind: valdi.vm
    name: vm
    spec:
      name: trainer-01
      provider_id: a45088e0-1681-446e-9a3e-3ed9dfc3d57e
      details: {flavor_id: 94d76997-44ec-4f1e-8291-231de42b6030, ssh_key_id: "${valdi.ssh_key.k.id}", ipv4: true}
  - kind: valdi.volume
    name: vol
    spec: {bucket_name: team-data}
  - kind: valohai.datum
    name: shard
    for_each: {p0.csv: 1, p1.csv: 2, p2.csv: 3}
    spec:
      store: sandbox-store
      url: s3://sandbox-bucket/shards/${each.key}
      properties: {rows: "${each.value}", owner: ml}
      tags: [shard]
  - kind: valohai.datum
    name: train
    spec: {store: sandbox-store, url: s3://sandbox-bucket/data/train.csv, alias: train-latest,
           properties: {note: "costs $${HOME}"}}
  - kind: codeocean.data_asset
    name: raw
    spec:
      name: Raw data
      tags: [raw]
      source: {aws: {bucket: sandbox-bucket, prefix: data/}}
  - kind: codeocean.data_asset
    name: both
    spec:
      name: Raw bundle
      source: {combined: ["${codeocean.data_asset.raw.id}"]}
"""


@pytest.fixture
def seeded(tmp_path, sandbox_env):
    """Objects of every kind that no state of the user's manages."""
    seed = tmp_path / "seed"
    seed.mkdir()
    (seed / "m.yaml").write_text(SEED)
    code, out = cli("--state", str(tmp_path / "other-state.json"), "apply", str(seed), "--auto-approve")
    assert code == 0, out
    work = tmp_path / "work"
    work.mkdir()
    return work


def _writes(admin) -> dict[str, int]:
    return {k: n for k, n in api_calls(admin).items()
            if not k.startswith(("GET", "POST /account/login", "POST /api/v1/data_assets/search"))}


def test_discover_then_apply_creates_nothing_and_leaves_no_changes(seeded, admin):
    state = str(seeded / "state.json")
    before = _writes(admin)
    code, out = cli("--state", state, "discover", str(seeded), "--out", str(seeded / "found.yaml"))
    assert code == 0, out
    assert _writes(admin) == before  # listings only
    text = (seeded / "found.yaml").read_text()
    doc = yaml.safe_load(text)
    blocks = {f"{r['kind']}.{r['name']}": r for r in doc["resources"]}
    assert set(blocks) == {"valdi.ssh_key.deploy-key", "valdi.vm.trainer-01", "valdi.volume.team-data",
                           "valohai.datum.shards", "valohai.datum.train-csv", "codeocean.data_asset.raw-data",
                           "codeocean.data_asset.raw-bundle"}, text
    assert blocks["valdi.vm.trainer-01"]["spec"]["details"]["ssh_key_id"] == "${valdi.ssh_key.deploy-key.id}"
    assert blocks["codeocean.data_asset.raw-bundle"]["spec"]["source"] == {
        "combined": ["${codeocean.data_asset.raw-data.id}"]}
    shards = blocks["valohai.datum.shards"]
    assert shards["for_each"] == {"p0.csv": {"rows": 1, "owner": "ml"}, "p1.csv": {"rows": 2, "owner": "ml"},
                                  "p2.csv": {"rows": 3, "owner": "ml"}}
    assert shards["spec"]["url"] == "s3://sandbox-bucket/shards/${each.key}"
    assert blocks["valohai.datum.train-csv"]["spec"]["properties"] == {"note": "costs $${HOME}"}
    assert len(doc["imports"]) == 9
    names = [r["name"] for r in doc["resources"] if r["kind"] == "codeocean.data_asset"]
    assert names == ["raw-data", "raw-bundle"]  # what a block refers to comes first
    assert "private" not in text.lower() and "secret" not in text.lower()

    code, out = cli("--state", state, "plan", str(seeded))
    assert code == 0 and "Plan: 0 to add, 0 to change, 0 to destroy, 9 to import." in out, out
    code, out = cli("--state", state, "apply", str(seeded), "--auto-approve")
    assert code == 0, out
    after = _writes(admin)
    assert after == before, {k: after.get(k, 0) - before.get(k, 0) for k in after}  # no create, no write
    code, out = cli("--state", state, "plan", str(seeded), "--detailed-exitcode")
    assert code == 0 and "No changes" in out, out
    # a second discover finds nothing left to take over
    code, out = cli("--state", state, "discover", str(seeded), "--out", str(seeded / "again.yaml"))
    assert code == 0 and "0 object(s); 9 already managed" in out, out


def test_discover_never_overwrites_and_filters(seeded):
    state = str(seeded / "state.json")
    mine = seeded.parent / "mine.yaml"
    mine.write_text("# mine\n")
    code, out = cli("--state", state, "discover", str(seeded), "--out", str(mine))
    assert code == 1 and "never overwrites" in out
    assert mine.read_text() == "# mine\n"
    code, out = cli("--state", state, "discover", str(seeded), "--kind", "valdi.ssh_key", "--kind", "valdi.vm",
                    "--match", "trainer-*", "--out", str(seeded / "vm.yaml"))
    assert code == 0, out
    doc = yaml.safe_load((seeded / "vm.yaml").read_text())
    assert [r["name"] for r in doc["resources"]] == ["trainer-01"]
    code, out = cli("--state", state, "discover", str(seeded), "--kind", "valdi.nope", "--out", str(seeded / "x.yaml"))
    assert code == 1 and "discover reads" in out


@pytest.mark.parametrize("provider, details", [
    ("66730e5d-98d2-45f6-8aaa-6ad8cdcbc285",
     "{hostnode: b2ce5479-fa59-483f-86ba-0aa128051821, gpu_model: a100-pcie-80gb, operating_system: Ubuntu 22.04 LTS, "
     "gpu_count: 1, vcpus: 8, ram: 32, storage: 100, external_ports: '{21297}', internal_ports: '{22}', "
     "ssh_key_id: '${valdi.ssh_key.k.id}', password: '${env.VM_PASSWORD}'}"),
    ("bd3731eb-37c7-4577-817e-b8fe9dd02dfd",
     "{config: vcpu-8_memory-48g_nvidia-rtx-3090-2, image_id: 2cd0e25f-a39e-4bc6-aa78-b4c40b87072a, "
     "ssh_key_id: '${valdi.ssh_key.k.id}'}"),
    ("0a53cf4e-7b2d-4c8e-9f61-2d4a8e6b3c15",
     "{data_center_id: ca-montreal-3, machine_type: sapphire-rapids-h100, ssh_key_id: '${valdi.ssh_key.k.id}', "
     "boot_disk_size: 64, vcpus: 8, ram: 64, gpu_count: 1}"),
], ids=["hostnode", "shape", "machine-type"])
def test_a_vm_of_every_provider_style_is_taken_over_unchanged(tmp_path, sandbox_env, monkeypatch, provider, details):
    monkeypatch.setenv("VM_PASSWORD", "Sandbox-pw-7f3a9c!")
    seed = tmp_path / "seed"
    seed.mkdir()
    (seed / "m.yaml").write_text(SEED.split("  - kind: valdi.volume")[0].replace(
        "a45088e0-1681-446e-9a3e-3ed9dfc3d57e", provider).replace(
        '{flavor_id: 94d76997-44ec-4f1e-8291-231de42b6030, ssh_key_id: "${valdi.ssh_key.k.id}", ipv4: true}', details))
    code, out = cli("--state", str(tmp_path / "other.json"), "apply", str(seed), "--auto-approve")
    assert code == 0, out
    work = tmp_path / "work"
    work.mkdir()
    state = str(work / "state.json")
    code, out = cli("--state", state, "discover", str(work), "--kind", "valdi.vm", "--kind", "valdi.ssh_key",
                    "--out", str(work / "found.yaml"))
    assert code == 0, out
    assert "password" not in (work / "found.yaml").read_text()
    code, out = cli("--state", state, "apply", str(work), "--auto-approve")
    assert code == 0 and "2 imported" in out, out
    code, out = cli("--state", state, "plan", str(work), "--detailed-exitcode")
    assert code == 0 and "No changes" in out, out


def test_a_live_secret_is_written_as_a_sensitive_variable_and_still_imports(tmp_path, sandbox_env, monkeypatch):
    """A datum whose property is named like a secret (set in the console, or by another
    state): the manifest discover writes holds a reference to a sensitive variable, never
    the value; with the variable set, apply imports it and the next plan has nothing to do."""
    secret = "tok-discovered-7f3a91c2"
    seed = tmp_path / "seed"
    seed.mkdir()
    (seed / "m.yaml").write_text("resources:\n  - kind: valohai.datum\n    name: d\n    spec: {store: sandbox-store, "
                                 f"url: s3://sandbox-bucket/data/train.csv, properties: {{token: {secret}, owner: ml}}}}\n")
    assert cli("--state", str(tmp_path / "other.json"), "apply", str(seed), "--auto-approve")[0] == 0
    work = tmp_path / "work"
    work.mkdir()
    state = str(work / "state.json")
    code, out = cli("--state", state, "discover", str(work), "--out", str(work / "found.yaml"))
    text = (work / "found.yaml").read_text()
    assert code == 0 and secret not in out and secret not in text, text
    doc = yaml.safe_load(text)
    (name, declared), = doc["variables"].items()
    assert declared["sensitive"] is True and f"RECONCILER_VAR_{name}" in out
    assert doc["resources"][0]["spec"]["properties"] == {"token": f"${{var.{name}}}", "owner": "ml"}
    monkeypatch.setenv(f"RECONCILER_VAR_{name}", secret)
    code, out = cli("--state", state, "apply", str(work), "--auto-approve")
    assert code == 0 and secret not in out, out
    code, out = cli("--state", state, "plan", str(work), "--detailed-exitcode")
    assert code == 0 and "No changes" in out, out
