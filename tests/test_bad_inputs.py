"""Every broken manifest under tests/bad_inputs/ gives one line per problem naming
file:line:col, the expected message, exit 1 from `reconciler validate`, no traceback
and no API call. How a case states what it expects: tests/bad_inputs/README.md."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from reconciler.config.validation import check_local_path
from reconciler.engine.runner import load_workspace
from reconciler.errors import ManifestError
from reconciler.providers.contract import Kind

CASES = Path(__file__).parent / "bad_inputs"
UNSET = "RECONCILER_BAD_INPUT_UNSET"  # never set: the missing-env cases use it
LINE = re.compile(r"^.+?(?::\d+:\d+)?: \S.*$")  # no line:col for a problem with a path itself
EXPECT = re.compile(r"^#\s*expect:\s*(?:(?P<file>[^:\s]+):)?(?P<line>\d+):(?P<col>\d+):\s*(?P<fragment>.+?)\s*$")


# -- a small kind for the cases (not a user-facing kind) ----------------------------------
VM_SCHEMA = {
    "type": "object", "additionalProperties": False, "required": ["provider_id", "details"],
    "properties": {
        "provider_id": {"type": "string", "minLength": 1},
        "details": {"type": "object", "additionalProperties": False, "required": ["flavor_id"],
                    "properties": {"flavor_id": {"type": "string"}, "vcpus": {"type": "integer", "minimum": 1},
                                   "ipv4": {"type": "boolean"}, "ssh_key_id": {"type": "string"}}},
        "power": {"enum": ["running", "stopped"]},
        "files": {"type": "array", "items": {
            "type": "object", "additionalProperties": False, "required": ["path", "source"],
            "properties": {"path": {"type": "string"}, "source": {"type": "string"}}}},
        "public_key_file": {"type": "string"},
        "password": {"type": "string", "minLength": 12},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "note": {"type": "string"},
    },
}


class CaseVm(Kind):
    name = "test.vm"
    schema = VM_SCHEMA  # inline: this kind lives in the tests, not in schemas/
    sensitive = {"password"}
    outputs = {"id", "ip"}
    deletion_policies = ("delete", "orphan")

    def check_offline(self, resources):
        problems = []
        for r in resources:
            if "public_key_file" in r.spec:
                problems.append(check_local_path(r, "spec.public_key_file", r.spec["public_key_file"]))
            for i, f in enumerate(r.spec.get("files") or []):
                if isinstance(f, dict) and "source" in f:
                    problems.append(check_local_path(r, f"spec.files[{i}].source", f["source"]))
        return [p for p in problems if p]

    def observe(self, ctx, wanted):  # pragma: no cover - validation never calls the API
        raise AssertionError("an invalid manifest made an API call")

    create = update = delete = diff = observe


class CaseProvider:
    name = "test"

    def __init__(self):
        self.kinds = [CaseVm()]

    def connect(self, config):  # pragma: no cover
        raise AssertionError("an invalid manifest connected to an API")


def all_providers(names=None) -> dict:
    from reconciler.providers import load_providers

    return {**load_providers(), "test": CaseProvider()}


# -- the cases -------------------------------------------------------------------------------
def expectation(case: Path) -> dict:
    """{file, line, col, fragment, reason, absent} from the case's leading comment lines
    (a folder keeps them in EXPECT; a UTF-16 file is read as UTF-16)."""
    source = case / "EXPECT" if case.is_dir() else case
    data = source.read_bytes()
    text = data.decode("utf-16") if data.startswith((b"\xff\xfe", b"\xfe\xff")) else data.decode("latin-1")
    out = {"reason": "", "absent": None}
    for line in text.splitlines()[:5]:
        m = EXPECT.match(line)
        if m:
            out.update(file=m["file"] or case.name, line=int(m["line"]), col=int(m["col"]), fragment=m["fragment"])
        elif line.startswith("# reason:"):
            out["reason"] = line.split(":", 1)[1].strip()
        elif line.startswith("# absent:"):
            out["absent"] = line.split(":", 1)[1].strip()
    assert "fragment" in out, f"{case.name}: no '# expect: LINE:COL: fragment' line"
    return out


def case_paths() -> list[Path]:
    return sorted(p for p in CASES.iterdir() if p.name != "README.md" and not p.name.startswith("."))


def generated_cases(tmp: Path) -> dict[str, tuple[Path, dict]]:
    """Cases too large to keep in git: written at test time."""
    out = {}
    big = tmp / "file_over_10mb.yaml"
    big.write_text("resources: []\n# " + "x" * (11 * 1024 * 1024) + "\n")
    out["file_over_10mb"] = (big, dict(file=big.name, line=1, col=1, fragment="the limit is 10 MB",
                                       reason="files over 10 MB are refused unread", absent=None))
    long = tmp / "string_over_1mb.yaml"
    long.write_text("resources:\n  - kind: test.vm\n    name: a\n    spec:\n      provider_id: p\n"
                    "      details: {flavor_id: f}\n      note: " + "x" * 1_100_000 + "\n")
    out["string_over_1mb"] = (long, dict(file=long.name, line=7, col=13, fragment="the limit is 1,000,000",
                                         reason="one string over 1 MB", absent=None))
    deep = tmp / "nesting_100k.yaml"
    deep.write_text("resources: " + "[" * 100_000 + "]" * 100_000 + "\n")
    # where this one is stopped depends on the libyaml a user has (newer ones stop deep
    # flow nesting themselves while scanning ahead): any column on line 1, same words
    out["nesting_100k"] = (deep, dict(file=deep.name, line=1, col=None, fragment="nested deeper than 50 levels",
                                      reason="libyaml's composer would crash on this; we stop at 50", absent=None))
    pub = tmp / "huge_public_key"
    pub.mkdir()
    (pub / "big.pub").write_text("ssh-ed25519 " + "A" * (70 * 1024) + " x\n")
    (pub / "main.yaml").write_text("resources:\n  - kind: valdi.ssh_key\n    name: k\n"
                                   "    spec: {name: k, public_key_file: big.pub}\n")
    out["public_key_file_too_big"] = (pub, dict(file="main.yaml", line=4, col=21, fragment="a public key is under",
                                                reason="a huge public_key_file is refused unread (capped like "
                                                       "manifests)", absent=None))
    fifo = tmp / "fifo_public_key"
    fifo.mkdir()
    os.mkfifo(fifo / "k.pub")
    (fifo / "main.yaml").write_text("resources:\n  - kind: valdi.ssh_key\n    name: k\n"
                                    "    spec: {name: k, public_key_file: k.pub}\n")
    out["public_key_file_fifo"] = (fifo, dict(file="main.yaml", line=4, col=21, fragment="is not a regular file",
                                              reason="a FIFO would hang the read: refused unread", absent=None))
    just_over = tmp / "nesting_60.yaml"
    just_over.write_text("resources: " + "[" * 60 + "]" * 60 + "\n")
    out["nesting_60"] = (just_over, dict(file=just_over.name, line=1, col=61, fragment="nested deeper than 50 levels",
                                         reason="our own limit, below any libyaml's", absent=None))
    out["missing_path"] = (tmp / "no-such-dir", dict(file="no-such-dir", line=0, col=0,
                                                     fragment="no such file or directory",
                                                     reason="a path that does not exist", absent=None))
    return out


def run_case(path: Path, monkeypatch) -> str:
    """Load + validate + cycles as the CLI does; the text of the ManifestError."""
    monkeypatch.delenv(UNSET, raising=False)
    with pytest.raises(ManifestError) as info:
        load_workspace([str(path)], all_providers())
    return str(info.value)


def check(text: str, where: Path, exp: dict, label: str) -> None:
    lines = text.splitlines()
    assert lines, label
    assert "Traceback" not in text, label
    for line in lines:
        assert LINE.match(line), f"{label}: not one problem per line: {line!r}"
    wanted = f"{exp['file']}:{exp['line']}:{exp['col']}: "
    if exp["line"] == 0:  # the path itself: no position, none invented
        wanted = f"{exp['file']}: "
    elif exp["col"] is None:  # any column
        wanted = f"{exp['file']}:{exp['line']}:"
    hits = [ln for ln in lines if wanted in ln and exp["fragment"] in ln]
    assert hits, f"{label} ({exp['reason']}): no line with {wanted!r} and {exp['fragment']!r} in:\n{text}"
    if exp["absent"]:
        assert exp["absent"] not in text, f"{label}: {exp['absent']!r} must not be shown"


@pytest.mark.parametrize("case", case_paths(), ids=lambda p: p.name)
def test_bad_input_gives_one_line_per_problem(case, monkeypatch):
    exp = expectation(case)
    check(run_case(case, monkeypatch), case, exp, case.name)


@pytest.mark.parametrize("name", ["file_over_10mb", "string_over_1mb", "nesting_100k", "nesting_60", "missing_path",
                                  "public_key_file_too_big", "public_key_file_fifo"])
def test_generated_bad_input(name, tmp_path, monkeypatch):
    path, exp = generated_cases(tmp_path)[name]
    check(run_case(path, monkeypatch), path, exp, name)


def test_there_are_at_least_120_cases():
    assert len(case_paths()) >= 120


# -- the same through `reconciler validate` ---------------------------------------------------
@pytest.fixture
def cli(monkeypatch):
    from reconciler.cli import common, main

    monkeypatch.setattr(common, "providers", all_providers)
    monkeypatch.delenv(UNSET, raising=False)

    def run(path: Path) -> tuple[int, str]:
        result = CliRunner().invoke(main, ["--no-color", "validate", str(path)])
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
        return result.exit_code, result.output

    return run


@pytest.mark.parametrize("case", case_paths(), ids=lambda p: p.name)
def test_reconciler_validate_exits_1_with_file_line(case, cli, tmp_path):
    exp = expectation(case)
    code, out = cli(case)
    assert code == 1, out
    text = "\n".join(ln.removeprefix("Error: ") for ln in out.splitlines() if ln.strip())
    check(text, case, exp, case.name)


@pytest.mark.parametrize("name", ["nesting_100k", "nesting_60"])
def test_reconciler_validate_on_a_generated_case(name, cli, tmp_path):
    path, exp = generated_cases(tmp_path)[name]
    code, out = cli(path)
    assert code == 1
    text = "\n".join(ln.removeprefix("Error: ") for ln in out.splitlines() if ln.strip())
    assert len(text.splitlines()) == 1, text
    check(text, path, exp, name)

