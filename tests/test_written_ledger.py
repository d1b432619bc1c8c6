""".reconciler/written.json, the ledger of files reconciler wrote (private keys,
credentials files): an existing file is overwritten only if its entry verifies under a
key that is never in the ledger. A hand-edited entry, even one holding the file's correct
plain SHA-256, an entry from an older version, or a damaged ledger: the plan refuses in
one line naming the file, exit 1, before any call; the user's file is untouched."""
from __future__ import annotations

import hashlib
import json
import os

import pytest
from conftest import Infra, api_calls, cli

MANIFEST = """resources:
  - kind: valdi.ssh_key
    name: k
    spec: {name: NAME, private_key_file: notes.txt}
"""
NOTES = "the user's notes\n"
PLAIN = hashlib.sha256(NOTES.encode()).hexdigest()


def _folder(tmp_path, name: str = "k1"):
    folder = tmp_path / "m"
    (folder / ".reconciler").mkdir(parents=True)
    (folder / "main.yaml").write_text(MANIFEST.replace("NAME", name))
    return folder


def _refused(code: int, out: str, *fragments: str) -> None:
    errors = [line for line in out.splitlines() if not line.startswith("Note:")]
    assert code == 1 and len(errors) == 1, out
    assert "Traceback" not in out and "internal error" not in out, out
    for f in ("private_key_file", "'notes.txt' already exists", "move the file away or delete it", *fragments):
        assert f in errors[0], out


def _nothing_written(admin) -> None:
    assert not [k for k in api_calls(admin) if not k.startswith(("GET", "POST /account"))], api_calls(admin)


@pytest.mark.parametrize("ledger, why", [
    ({"notes.txt": PLAIN}, "is not keyed"),  # the correct plain digest: what older versions wrote
    ({"notes.txt": {"hmac-sha256": PLAIN, "key": "machine"}}, "does not verify"),  # keyed in shape only
    ({"notes.txt": "0" * 64}, "is not keyed"),
    ({"notes.txt": PLAIN.upper()}, "is not keyed"),
    ({"../m/notes.txt": PLAIN, "sub/../notes.txt": PLAIN, "/etc/notes.txt": PLAIN}, "did not write it"),
], ids=["plain-correct-digest", "keyed-shape-plain-digest", "wrong-digest", "not-a-digest", "outside-the-folder"])
def test_a_hand_edited_ledger_never_lets_a_private_key_overwrite_a_users_file(tmp_path, sandbox_env, admin, ledger, why):
    folder = _folder(tmp_path)
    (folder / "notes.txt").write_text(NOTES)
    (folder / ".reconciler" / "written.json").write_text(json.dumps(ledger))
    admin.delete("/_emulator/requests")
    _refused(*Infra(folder, "main.yaml").apply(), why)
    _nothing_written(admin)
    assert (folder / "notes.txt").read_text() == NOTES


def _fifo(path):
    os.mkfifo(path)


def _sparse(path):
    with open(path, "wb") as f:  # 17 MB on paper, nothing on disk
        f.truncate(17 * 1024 * 1024)


@pytest.mark.parametrize("damage", [
    lambda p: p.write_text("{\"notes.txt\": "),
    lambda p: p.write_text("[" * 200_000),  # nested past the JSON parser's recursion
    lambda p: p.write_text("[\"notes.txt\"]"),
    lambda p: p.write_bytes(b"\xff\xfe\x00{"),
    lambda p: p.mkdir(),
    _fifo,
    _sparse,
], ids=["truncated", "deeply-nested", "a-list", "not-utf8", "a-directory", "a-fifo", "17-mb"])
def test_a_damaged_ledger_is_one_line_and_trusts_nothing(tmp_path, sandbox_env, admin, damage):
    folder = _folder(tmp_path)
    (folder / "notes.txt").write_text(NOTES)
    damage(folder / ".reconciler" / "written.json")
    admin.delete("/_emulator/requests")
    _refused(*Infra(folder, "main.yaml").apply(), ".reconciler/written.json", "nothing in it is trusted")
    _nothing_written(admin)
    assert (folder / "notes.txt").read_text() == NOTES


def test_a_file_reconciler_wrote_is_replaced_across_apply_destroy_apply_in_the_sandbox(tmp_path, monkeypatch):
    """A real earlier write still authorises the overwrite; its entry holds no plain digest;
    a ledger of an older version (plain digests) is refused until the file is moved away,
    and the next write re-establishes it."""
    folder = _folder(tmp_path)
    pem = folder / "notes.txt"

    def run(command: str, *extra: str) -> tuple[int, str]:
        return cli("--sandbox", command, str(folder), *extra)

    code, out = run("apply", "--auto-approve")
    assert code == 0, out
    first = pem.read_text()
    assert "PRIVATE KEY" in first
    ledger = (folder / ".reconciler" / "written.json").read_text()
    assert "notes.txt" in ledger and hashlib.sha256(first.encode()).hexdigest() not in ledger

    assert run("destroy", "--auto-approve")[0] == 0  # VALDI keeps the key; the file stays
    (folder / "main.yaml").write_text(MANIFEST.replace("NAME", "k2"))  # so the next key has a new name
    code, out = run("apply", "--auto-approve")
    assert code == 0, out
    second = pem.read_text()
    assert "PRIVATE KEY" in second and second != first  # ours: replaced

    # written under one key, checked under another: not trusted, and the message says which
    assert run("destroy", "--auto-approve")[0] == 0
    (folder / "main.yaml").write_text(MANIFEST.replace("NAME", "k3"))
    monkeypatch.setenv("RECONCILER_PLAN_KEY", "another-key-entirely-0123456789abcdef")
    code, out = run("plan")
    _refused(code, out, "does not verify", "RECONCILER_PLAN_KEY")
    monkeypatch.delenv("RECONCILER_PLAN_KEY")

    # the ledger an older version wrote: not trusted; once the file is moved away, re-established
    (folder / ".reconciler" / "written.json").write_text(json.dumps(
        {"notes.txt": hashlib.sha256(second.encode()).hexdigest()}))
    _refused(*run("plan"), "is not keyed")
    assert pem.read_text() == second
    pem.rename(folder / "old.pem")
    code, out = run("apply", "--auto-approve")
    assert code == 0, out
    entry = json.loads((folder / ".reconciler" / "written.json").read_text())["notes.txt"]
    assert isinstance(entry, dict) and entry["key"] == "machine"
    assert run("destroy", "--auto-approve")[0] == 0
    (folder / "main.yaml").write_text(MANIFEST.replace("NAME", "k4"))
    assert run("apply", "--auto-approve")[0] == 0 and pem.read_text() != second
