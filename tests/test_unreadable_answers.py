"""A listing the tool cannot read (refused with 401/403, a sign-in proxy's HTML page, an
object without the listing's key) is an error for plan and apply: never "the objects are
gone", so never a create beside the live ones. Once the listing reads again, the next
plan has nothing to do and nothing was made twice."""
from __future__ import annotations

import pytest
from click.testing import CliRunner
from crash_harness import MUTATING, copy_example, duplicates

from reconciler.cli import main

# each provider's listings that observe reads
LISTINGS = {"valdi.yaml": r"^GET /(v1/vm|sshkeys|volume)$",
            "codeocean.yaml": r"^POST /api/v1/data_assets/search$",
            "valohai.yaml": r"^GET /api/v0/(data|datum-aliases)/$"}


def run(*args):
    r = CliRunner().invoke(main, ["--no-color", *args], catch_exceptions=False)
    return r.exit_code, r.output


def writes(admin) -> int:
    import re
    log = admin.get("/_emulator/requests", params={"full": "1"}).json()["log"]
    return sum(1 for e in log if re.search(MUTATING, f"{e['method']} {e['path']}"))


@pytest.mark.parametrize("example", sorted(LISTINGS))
@pytest.mark.parametrize("kind", [403, 401, "html", "empty_object"])
def test_an_unreadable_listing_is_an_error_never_a_create(example, kind, tmp_path, sandbox_env, admin):
    manifests = tmp_path / "m"
    manifests.mkdir()
    copy_example(example, manifests)
    state = str(tmp_path / "state.json")
    code, out = run("--state", state, "apply", str(manifests), "--auto-approve")
    assert code == 0, out
    before = writes(admin)

    admin.post("/_emulator/faults", json={"pattern": LISTINGS[example], "kinds": [kind]})
    code, out = run("--state", state, "plan", str(manifests), "--detailed-exitcode")
    assert code == 1, out  # an error (2 would be "changes to make")
    code, out = run("--state", state, "apply", str(manifests), "--auto-approve")
    assert code == 1, out
    assert writes(admin) == before, out  # nothing created, replaced or deleted

    admin.delete("/_emulator/faults")
    code, out = run("--state", state, "plan", str(manifests), "--detailed-exitcode")
    assert code == 0, out
    assert duplicates(admin) == 0


def test_a_destroy_waits_on_a_vm_read_it_cannot_understand_and_keeps_the_vm_managed(tmp_path, sandbox_env, admin):
    """The wait for a destroyed VM to leave reads GET /v1/vm/{id}: a sign-in page there
    is not "the VM is gone", so the state keeps it (it may still bill) and the run fails."""
    manifests = tmp_path / "m"
    manifests.mkdir()
    copy_example("valdi.yaml", manifests)
    example = manifests / "valdi.yaml"
    example.write_text(example.read_text().replace("prevent_destroy: true", "prevent_destroy: false"))
    state = tmp_path / "state.json"
    code, out = run("--state", str(state), "apply", str(manifests), "--auto-approve")
    assert code == 0, out
    admin.post("/_emulator/faults", json={"pattern": r"^GET /v1/vm/[^/]+$", "kinds": ["html"]})
    code, out = run("--state", str(state), "destroy", str(manifests), "--auto-approve")
    assert code == 1, out
    assert "valdi.vm.trainer" in state.read_text()
    admin.delete("/_emulator/faults")
    code, out = run("--state", str(state), "destroy", str(manifests), "--auto-approve")
    assert code == 0, out
    assert "valdi.vm.trainer" not in state.read_text()


def test_a_datum_read_by_its_id_answered_with_a_page_is_an_error(tmp_path, sandbox_env, admin):
    """A datum outside the listing is read by its id: an HTML page there is reported as
    unreadable (exit 1, no write), not a crash and not "no such datum"."""
    missing = "0190a5e2-0000-7000-8000-000000000000"
    (tmp_path / "m.yaml").write_text(f"""\
resources:
  - kind: valohai.datum_properties
    name: p
    spec: {{datum: "{missing}", properties: {{owner: ml}}}}
""")
    admin.post("/_emulator/faults", json={"pattern": f"^GET /api/v0/data/{missing}/$", "kinds": ["html"]})
    code, out = run("--state", str(tmp_path / "state.json"), "plan", str(tmp_path))
    assert code == 1 and "unreadable answer" in out, out
    assert writes(admin) == 0
