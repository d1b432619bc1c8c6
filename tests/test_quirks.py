"""Every quirk (a plausible shape the API documents leave open) alone: the three example
manifests apply, the next plan says "No changes", and destroy leaves nothing of ours.

One emulator serves every case: it is reset and reconfigured between them."""
from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

from conftest import FAST, cli
from reconciler.emulator import EmulatorConfig, EmulatorServer
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
