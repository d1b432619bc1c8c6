"""Every quirk (a plausible shape the API documents leave open) alone: the three example
manifests apply, the next plan says "No changes", and destroy leaves nothing of ours.

One emulator serves every case: it is reset and reconfigured between them."""
from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest
from conftest import FAST, Infra, cli

from reconciler.emulator import EmulatorConfig, EmulatorServer
from reconciler.emulator.core import SANDBOX
from reconciler.emulator.quirks import QUIRKS

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(scope="module")
def shared_emulator(tmp_path_factory):
    server = EmulatorServer(data_dir=tmp_path_factory.mktemp("quirks") / "emulator",
                            config=EmulatorConfig(**FAST)).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def quirky(shared_emulator, monkeypatch):
    """Reset the shared emulator; the test turns on what it needs."""
    admin = httpx.Client(base_url=shared_emulator.url, timeout=30)
    admin.post("/_emulator/reset").raise_for_status()
    admin.post("/_emulator/config", json={"quirks": []}).raise_for_status()
    for key, value in shared_emulator.env().items():
        monkeypatch.setenv(key, value)
    try:
        yield admin
    finally:
        admin.post("/_emulator/config", json={"quirks": []})
        admin.close()


def examples_copy(tmp_path: Path) -> Path:
    work = tmp_path / "examples"
    shutil.copytree(EXAMPLES, work, ignore=shutil.ignore_patterns(".reconciler", ".secrets"))
    vm = work / "valdi.yaml"  # the example VM is protected; here it must be destroyed too
    vm.write_text(vm.read_text().replace("lifecycle: {prevent_destroy: true}", ""))
    return work


def run(work: Path, *args: str) -> tuple[int, str]:
    return cli("--state", str(work / "state.json"), *args[:1], str(work), *args[1:])


def test_every_quirk_is_listed_with_a_description(quirky):
    listed = quirky.get("/_emulator/quirks").json()
    assert listed["quirks"] == QUIRKS and len(QUIRKS) >= 8
    assert all(isinstance(d, str) and d for d in QUIRKS.values())
    r = quirky.post("/_emulator/config", json={"quirks": ["no-such-quirk"]})
    assert r.status_code == 400 and "no-such-quirk" in r.text
    quirky.post("/_emulator/config", json={"quirks": "valdi-provision-no-id,codeocean-no-archived"})
    assert quirky.get("/_emulator/quirks").json()["active"] == ["valdi-provision-no-id", "codeocean-no-archived"]


@pytest.mark.parametrize("quirk", [None, *QUIRKS])
def test_the_examples_converge_and_destroy_under_each_quirk(quirky, tmp_path, quirk):
    quirky.post("/_emulator/config", json={"quirks": [quirk] if quirk else []}).raise_for_status()
    work = examples_copy(tmp_path)
    code, out = run(work, "apply", "--auto-approve")
    assert code == 0, out
    code, out = run(work, "plan", "--detailed-exitcode")
    assert code == 0 and "No changes" in out, out
    code, out = run(work, "destroy", "--auto-approve")
    assert code == 0, out
    assert cli("--state", str(work / "state.json"), "state", "list", str(work))[1].strip() == ""
    docs = quirky.get("/_emulator/docs").json()
    assert not any(docs.get(kind) for kind in ("valdi_vm", "valdi_volume", "co_asset")), docs


# -- what the examples do not reach: each quirk where it bites -----------------------------------
VM = """
providers:
  valdi: {email: "${env.VALDI_EMAIL}", password: "${env.VALDI_PASSWORD}"}
resources:
  - kind: valdi.ssh_key
    name: k
    spec: {name: k, public_key_file: keys/deploy.pub}
  - kind: valdi.vm
    name: m
    spec:
      name: m
      provider_id: a45088e0-1681-446e-9a3e-3ed9dfc3d57e
      details: {flavor_id: 94d76997-44ec-4f1e-8291-231de42b6030, ssh_key_id: "${valdi.ssh_key.k.id}"}
"""
DATUM = """
providers:
  valohai: {token: "${env.VALOHAI_TOKEN}", project: "${env.VALOHAI_PROJECT}"}
resources:
  - kind: valohai.datum
    name: d
    spec: {store: sandbox-store, url: "s3://sandbox-bucket/data/test.csv", tags: [a, b], alias: al}
"""


def infra(tmp_path: Path, text: str) -> Infra:
    work = examples_copy(tmp_path)
    (work / "main.yaml").write_text(text)
    for other in ("valdi.yaml", "valohai.yaml", "codeocean.yaml"):
        (work / other).unlink()
    return Infra(work, "main.yaml")


def test_a_vm_that_ends_in_error_fails_the_apply_at_once_and_is_replaced_next(quirky, tmp_path):
    quirky.post("/_emulator/config", json={"vm_final_state": "error"}).raise_for_status()
    try:
        # an apply that kept waiting on the error would end at vm_timeout instead ("still error after")
        inf = infra(tmp_path, VM.replace('password: "${env.VALDI_PASSWORD}"}',
                                         'password: "${env.VALDI_PASSWORD}", vm_timeout: 120}'))
        code, out = inf.apply()
        assert code == 1 and "is 'error', not running" in out and "still" not in out, out
        code, out = inf.plan()
        assert "status: \"error\" -> \"running\"  # forces replacement" in out, out
    finally:
        quirky.post("/_emulator/config", json={"vm_final_state": "running"})


def test_a_vm_in_a_state_nobody_documented_is_waited_on_reported_never_replaced_and_destroyed(quirky, tmp_path):
    """`pending` until long after the timeout: apply waits, then reports it (not "failed");
    the next plan replaces nothing; destroy deletes it and waits until it is gone."""
    quirky.post("/_emulator/config", json={"quirks": ["valdi-vm-state-unrecognised"],
                                           "vm_provision_delay": 600}).raise_for_status()
    try:
        inf = infra(tmp_path, VM.replace('password: "${env.VALDI_PASSWORD}"}',
                                         'password: "${env.VALDI_PASSWORD}", vm_timeout: 1}'))
        code, out = inf.apply()
        assert code == 1 and "unrecognised 'pending'" in out, out
        code, out = inf.plan()
        assert "-/+" not in out and "forces replacement" not in out and "No changes" in out, out
        code, out = inf.destroy()
        assert code == 0, out
        assert not quirky.get("/_emulator/docs/valdi_vm").json()["items"], out
    finally:
        quirky.post("/_emulator/config", json={"vm_provision_delay": FAST["vm_provision_delay"]})


def test_tags_a_server_only_adds_to_fail_in_one_line_instead_of_a_change_forever(quirky, tmp_path):
    quirky.post("/_emulator/config", json={"quirks": ["valohai-tags-add"]}).raise_for_status()
    inf = infra(tmp_path, DATUM)
    assert inf.apply()[0] == 0
    inf.edit("tags: [a, b]", "tags: [a]")
    code, out = inf.apply()
    assert code == 1 and "kept tags b" in out, out
    assert inf.destroy()[0] == 0


@pytest.mark.parametrize("quirk, said", [("valohai-alias-null-refused", "refused `valohai.alias: null`"),
                                         ("valohai-alias-null-ignored", "still points at datum")])
def test_an_alias_null_refused_or_ignored_fails_the_update_and_destroy_says_so(quirky, tmp_path, quirk, said):
    """Refused with a 400, or answered 200 and not done: the update fails naming the kept
    alias; destroy goes through and says the datum was not fully released."""
    quirky.post("/_emulator/config", json={"quirks": [quirk]}).raise_for_status()
    inf = infra(tmp_path, DATUM)
    assert inf.apply()[0] == 0
    inf.edit(", alias: al}", "}")
    code, out = inf.apply()
    assert code == 1 and said in out, out
    code, out = inf.destroy()
    assert code == 0 and "not fully released" in out and said in out, out


def test_a_url_adopted_before_and_answered_409_is_taken_over(quirky, tmp_path):
    """A lost answer: the URL is a datum already, and this server says so with a 409."""
    quirky.post("/_emulator/config", json={"quirks": ["valohai-adopt-409"]}).raise_for_status()
    made = httpx.post(f"{quirky.base_url}/api/v0/stores/{SANDBOX['valohai_store_id']}/adopt/",
                      headers={"Authorization": f"Token {SANDBOX['valohai_token']}"},
                      json={"url": "s3://sandbox-bucket/data/test.csv", "project": SANDBOX["valohai_project_id"]})
    made.raise_for_status()
    inf = infra(tmp_path, DATUM)
    code, out = inf.apply()
    assert code == 0, out
    assert inf.state()["resources"]["valohai.datum.d"]["id"] == next(iter(made.json()["created"].values()))
    code, out = inf.plan("--detailed-exitcode")
    assert code == 0 and "No changes" in out, out


def test_a_file_adopted_in_another_project_of_the_store_is_one_clear_error(quirky, tmp_path):
    quirky.post("/_emulator/config", json={"quirks": ["valohai-adopt-store-scoped"]}).raise_for_status()
    other = quirky.post("/_emulator/valohai/projects", json={"name": "other"}).json()["id"]
    httpx.post(f"{quirky.base_url}/api/v0/stores/{SANDBOX['valohai_store_id']}/adopt/",
               headers={"Authorization": f"Token {SANDBOX['valohai_token']}"},
               json={"url": "s3://sandbox-bucket/data/test.csv", "project": other}).raise_for_status()
    code, out = infra(tmp_path, DATUM).apply()
    assert code == 1 and "another project" in out, out


def test_files_listed_without_an_etag_are_compared_by_size_and_the_plan_says_so(quirky, tmp_path):
    quirky.post("/_emulator/config", json={"quirks": ["valdi-contents-no-etag"]}).raise_for_status()
    work = examples_copy(tmp_path)
    code, out = run(work, "apply", "--auto-approve")
    assert code == 0, out
    (work / "files" / "README.txt").write_text("a longer readme than before\n" * 3)
    code, out = run(work, "plan")
    assert "files.raw/README.txt" in out and "content not compared" in out, out


def test_an_unpriced_catalog_says_the_cost_is_unknown_never_zero(quirky, tmp_path):
    quirky.post("/_emulator/config", json={"quirks": ["valdi-catalog-no-unit-costs"]}).raise_for_status()
    code, out = run(examples_copy(tmp_path), "plan")
    assert code == 0 and "hourly cost unknown" in out and "running_cost" in out, out
    assert "$0.00" not in out


def test_a_custom_metadata_key_dropped_from_the_manifest_goes_when_put_merges(quirky, tmp_path):
    quirky.post("/_emulator/config", json={"quirks": ["codeocean-metadata-merge"]}).raise_for_status()
    work = examples_copy(tmp_path)
    assert run(work, "apply", "--auto-approve")[0] == 0
    manifest = work / "codeocean.yaml"
    manifest.write_text(manifest.read_text().replace("        lab: vision\n", ""))
    code, out = run(work, "apply", "--auto-approve")
    assert code == 0 and "custom_metadata.lab" in out, out
    code, out = run(work, "plan", "--detailed-exitcode")
    assert code == 0 and "No changes" in out, out


def test_required_aws_fields_the_manifest_leaves_out_are_sent_and_the_plan_says_so(quirky, tmp_path):
    work = examples_copy(tmp_path)
    manifest = work / "codeocean.yaml"
    manifest.write_text(manifest.read_text().replace(", keep_on_external_storage: false, public: false", ""))
    code, out = run(work, "plan")
    assert "Code Ocean requires keep_on_external_storage, public" in out, out
    assert run(work, "apply", "--auto-approve")[0] == 0
    code, out = run(work, "plan", "--detailed-exitcode")
    assert code == 0 and "No changes" in out, out


@pytest.mark.parametrize("quirk", [None, "valohai-metadata-per-datum"])
def test_a_batch_with_a_gone_datum_writes_the_others_either_way(quirky, quirk):
    """All or nothing (a 400 naming the gone datum: the rest is sent again) or per datum
    (an answer listing what was updated): the same outcome for the caller."""
    from reconciler.providers.valohai.client import connect
    quirky.post("/_emulator/config", json={"quirks": [quirk] if quirk else []}).raise_for_status()
    api = connect({})
    try:
        store = api.find_store("sandbox-store")
        datum_id = api.adopt(store, ["s3://sandbox-bucket/data/test.csv"]).created["s3://sandbox-bucket/data/test.csv"]
        gone = "00000000-0000-7000-8000-000000000000"
        failures = api.apply_metadata({datum_id: {"owner": "me"}, gone: {"owner": "me"}})
        assert set(failures) == {gone}
        assert api.get_datum(datum_id)["metadata"]["owner"] == "me"
    finally:
        api.close()


@pytest.mark.parametrize("quirk", [None, "codeocean-no-archived"])
def test_an_asset_outside_our_search_keeps_its_archive_state_without_the_field(quirky, quirk):
    """A colleague's archived asset shared with us is read with a GET (our search lists
    only the assets we created); without `archived` in the answer, it is what we applied."""
    from reconciler.providers.codeocean import PROVIDER
    from reconciler.providers.contract import KindContext, Wanted
    ann = quirky.post("/_emulator/codeocean/users", json={"email": "ann@lab.example"}).json()["token"]
    with httpx.Client(base_url=f"{quirky.base_url}/api/v1", auth=(ann, "")) as co:
        asset = co.post("/data_assets", json={"name": "anns", "mount": "anns", "tags": [], "source": {"aws": {
            "bucket": "sandbox-bucket", "prefix": "data", "keep_on_external_storage": False, "public": False}}}).json()
        co.post(f"/data_assets/{asset['id']}/permissions", json={
            "users": [{"email": "ann@lab.example", "role": "owner"},
                      {"email": SANDBOX["codeocean_email"], "role": "editor"}],
            "groups": [], "everyone": "none"}).raise_for_status()
        co.patch(f"/data_assets/{asset['id']}/archive", params={"archive": "true"}).raise_for_status()
    quirky.post("/_emulator/config", json={"quirks": [quirk] if quirk else []}).raise_for_status()
    kind = PROVIDER.kinds[0]
    spec = {"name": "anns", "tags": [], "archived": True, "source": {"aws": {"bucket": "sandbox-bucket",
                                                                             "prefix": "data"}}}
    api = PROVIDER.connect({})
    try:
        live = kind.observe(KindContext(api=api), [Wanted("codeocean.data_asset.a", asset["id"], spec, spec)])
        assert live["codeocean.data_asset.a"].attrs["archived"] is True
        assert not kind.diff(spec, live["codeocean.data_asset.a"], spec).changed
    finally:
        api.close()


def test_a_managed_vm_the_listing_leaves_out_is_read_by_its_id_never_made_again(quirky, tmp_path):
    """A stopped VM the listing does not show (`valdi-vm-listing-running-only`) still
    answers GET /v1/vm/{id}: it is neither created a second time nor planned again."""
    quirky.post("/_emulator/config", json={"quirks": ["valdi-vm-listing-running-only"]}).raise_for_status()
    inf = infra(tmp_path, VM + "      power: stopped\n")
    code, out = inf.apply()
    assert code == 0, out
    code, out = inf.plan("--detailed-exitcode")
    assert code == 0 and "No changes" in out, out
    code, out = inf.apply()
    assert code == 0, out
    assert len(quirky.get("/_emulator/docs/valdi_vm").json()["items"]) == 1
    code, out = inf.destroy()
    assert code == 0, out
