"""Hostile input that needs a run rather than a manifest case (tests/bad_inputs/): var
files that are devices, pipes or huge, `show --split` into a folder it did not make,
odd output names, watch flags. Each is exit 1 and one line naming the file or flag,
with no traceback."""
from __future__ import annotations

import os
import textwrap

import pytest
from conftest import cli

MANIFEST = "variables:\n  team: {type: string, default: x}\nresources: []\n"


def one_line(out: str, *fragments: str) -> None:
    lines = out.strip().splitlines()
    assert len(lines) == 1, out
    assert "Traceback" not in out and "internal error" not in out, out
    for f in fragments:
        assert f in lines[0], out


@pytest.fixture
def manifest(tmp_path):
    f = tmp_path / "main.yaml"
    f.write_text(MANIFEST)
    return f


def _fifo(tmp_path):
    path = tmp_path / "fifo"
    os.mkfifo(path)
    return str(path)


def _huge(tmp_path):
    path = tmp_path / "huge.yaml"
    with open(path, "wb") as f:  # sparse: 50 MB on paper, nothing on disk
        f.truncate(50 * 1024 * 1024)
    return str(path)


@pytest.mark.parametrize("make, fragment", [
    (lambda tmp: "/dev/zero", "is not a regular file"),
    (_fifo, "is not a regular file"),
    (lambda tmp: str(tmp), "is a directory"),
    (_huge, "is 50.0 MB; the limit is 10 MB"),
], ids=["dev-zero", "fifo", "directory", "50-mb"])
@pytest.mark.parametrize("where", ["--var-file", "manifest", "--policy-file"])
def test_a_var_file_or_manifest_that_is_not_a_small_regular_file_is_refused_unread(
        tmp_path, manifest, make, fragment, where):
    if where == "manifest" and fragment == "is a directory":
        pytest.skip("a folder of manifests is a manifest argument")
    path = make(tmp_path)
    args = ["validate", str(manifest), where, path] if where.startswith("--") else ["validate", path]
    code, out = cli(*args)
    assert code == 1
    one_line(out, f"{path}:1:1:", fragment)


def test_an_unknown_output_name_beside_a_folder_of_that_name_is_an_error(tmp_path, monkeypatch, manifest):
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path)
    code, out = cli("output", "sub", ".")
    assert code == 1
    one_line(out, "no output 'sub'")


# -- watch flags ---------------------------------------------------------------------------------
@pytest.mark.parametrize("url", ["ftp://hooks.example/x", "file:///etc/passwd", "hooks.example/x",
                                 "http://", "https://h:notaport/x", "http://h/a\x1bb"])
def test_notify_takes_http_urls_only_in_one_line_without_echoing_the_url(manifest, url):
    code, out = cli("watch", str(manifest), "--notify", url)
    assert code == 1
    one_line(out, "--notify")
    assert url not in out.replace("http:// or https://", "")  # a webhook URL is a secret of its own


def test_a_busy_or_invalid_metrics_address_is_one_line(manifest):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, out = cli("watch", str(manifest), "--metrics-port", str(port))
        assert code == 1
        one_line(out, f"--metrics-port {port}")
    for host in ("999.1.1.1", "no-such-host.invalid", "a\x1bb"):
        code, out = cli("watch", str(manifest), "--metrics-port", "0", "--metrics-host", host)
        assert code == 1
        one_line(out, "--metrics-host")
        assert "\x1b" not in out


def test_metrics_bind_loopback_unless_told_otherwise():
    from reconciler.cli.watch_cmd import watch

    host = next(p for p in watch.params if p.name == "metrics_host")
    assert host.default == "127.0.0.1"


# -- credentials inside provider addresses ---------------------------------------------------------
@pytest.mark.parametrize("command", ["validate", "plan", "doctor"])
def test_a_password_inside_the_endpoint_is_refused_before_any_lookup(tmp_path, monkeypatch, command):
    monkeypatch.setenv("VALDI_PASSWORD", "hunter2-endpoint-canary")
    monkeypatch.setenv("VALDI_EMAIL", "a@b.c")
    (tmp_path / "main.yaml").write_text(textwrap.dedent("""
        providers:
          valdi: {endpoint: "https://${env.VALDI_PASSWORD}.example.invalid"}
        resources:
          - {kind: valdi.ssh_key, name: k, spec: {name: k, public_key: "ssh-ed25519 AAAA x"}}
        """))
    code, out = cli(command, str(tmp_path))
    assert code == 1
    one_line(out, "providers.valdi.endpoint: holds a credential (VALDI_PASSWORD)")
    assert "hunter2-endpoint-canary" not in out


def test_a_password_inside_the_endpoint_from_the_environment_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("VALDI_PASSWORD", "hunter2-endpoint-canary")
    monkeypatch.setenv("VALDI_ENDPOINT", "https://hunter2-endpoint-canary.example.invalid")
    (tmp_path / "main.yaml").write_text(
        "resources:\n  - {kind: valdi.ssh_key, name: k, spec: {name: k, public_key: 'ssh-ed25519 AAAA x'}}\n")
    code, out = cli("validate", str(tmp_path))
    assert code == 1
    one_line(out, "VALDI_ENDPOINT: providers.valdi.endpoint: holds a credential (VALDI_PASSWORD)")
    assert "hunter2-endpoint-canary" not in out


def _huge_text(tmp_path):
    path = tmp_path / "huge.txt"
    with open(path, "wb") as f:  # sparse, as _huge
        f.truncate(50 * 1024 * 1024)
    return str(path)


@pytest.mark.parametrize("make, fragment", [
    (_fifo, "is not a regular file"),
    (_huge_text, "is 50.0 MB; the limit is 1 MB"),
], ids=["fifo", "50-mb"])
def test_file_of_a_pipe_or_a_huge_file_is_refused_unread(tmp_path, make, fragment):
    name = os.path.basename(make(tmp_path))
    (tmp_path / "main.yaml").write_text(
        "resources:\n  - kind: valohai.datum\n    name: d\n    spec:\n      store: sandbox-store\n"
        f"      url: s3://sandbox-bucket/x\n      properties: {{v: '${{file(\"{name}\")}}'}}\n")
    code, out = cli("validate", str(tmp_path))
    assert code == 1
    one_line(out, "main.yaml:7:", fragment)
