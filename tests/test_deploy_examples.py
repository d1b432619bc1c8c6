"""examples/deploy/: nothing is built here, but the files parse and use only what exists:
the Dockerfile installs this repository (not the unrelated `reconciler` on PyPI) and runs
as a non-root user; the Kubernetes Deployment runs a `reconciler` command whose options
all exist, takes its credentials and PostgreSQL state from the Secret, probes /healthz on
the metrics port, and mounts manifests that validate."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest
import yaml
from conftest import cli

from reconciler.cli import main

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "examples" / "deploy"


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (DEPLOY / "Dockerfile").read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def parse_command(args: list[str]) -> click.Context:
    """Parse `reconciler ARGS` as the CLI would; a missing command or option raises."""
    ctx = main.make_context("reconciler", list(args))
    rest = list(getattr(ctx, "_protected_args", None) or getattr(ctx, "protected_args", [])) + ctx.args
    name, command, rest = main.resolve_command(ctx, rest)
    return command.make_context(name, rest, parent=ctx)


def test_parse_command_refuses_what_does_not_exist():
    with pytest.raises(click.UsageError):
        parse_command(["watch", "/m", "--no-such-flag"])
    with pytest.raises(click.UsageError):
        parse_command(["no-such-command"])


def test_dockerfile_installs_this_repository_as_a_non_root_user():
    steps = dockerfile()
    image = next(arg for op, arg in steps if op == "FROM")
    assert re.fullmatch(r"python:3\.\d+-slim", image)
    copied = {}  # destination folder -> what the repository put there
    for op, arg in steps:
        if op == "COPY":
            *sources, dest = shlex.split(arg)
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
                copied.setdefault(dest.rstrip("/").rsplit("/", 1)[0] if source.endswith("/") else dest.rstrip("/"),
                                  set()).add(source.rstrip("/"))
    installs = [arg for op, arg in steps if op == "RUN" and "pip install" in arg]
    targets = [re.search(r"pip install '([^'\[]+)(\[[a-z,]+\])?'", a) for a in installs]
    assert installs and all(targets), installs
    for t in targets:  # the folder the COPY lines filled: a package with its schemas
        assert {"pyproject.toml", "setup.py", "reconciler", "schemas"} <= copied.get(t.group(1).rstrip("/"), set())
    assert not any(re.search(r"pip install\s+['\"]?reconciler\b", a) for a in installs)  # PyPI's is another project
    ops = [op for op, _ in steps]
    user = [arg for op, arg in steps if op == "USER"]
    assert user and user[-1].split(":")[0] not in ("root", "0")
    assert ops.index("USER") > max(i for i, (op, arg) in enumerate(steps) if "pip install" in arg)
    entry = yaml.safe_load(next(arg for op, arg in steps if op == "ENTRYPOINT"))
    command = yaml.safe_load(next(arg for op, arg in steps if op == "CMD"))
    assert entry == ["reconciler"]
    assert parse_command(command).info_name == "watch"
    port = command[command.index("--metrics-port") + 1]
    assert ("EXPOSE", port) in steps


def test_kubernetes_deployment_and_secret_use_only_what_exists(tmp_path):
    docs = {d["kind"]: d for d in yaml.safe_load_all((DEPLOY / "kubernetes.yaml").read_text())}
    assert {"Deployment", "Secret"} <= set(docs)
    secret, deployment = docs["Secret"], docs["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    ctx = parse_command(container.get("command", [])[1:] + container["args"])
    assert ctx.info_name == "watch" and ctx.params["auto_apply"] in ("all", "changes")
    # credentials and the state come from the Secret, not the command line
    assert [e["secretRef"]["name"] for e in container["envFrom"]] == [secret["metadata"]["name"]]
    env = secret["stringData"]
    assert env["RECONCILER_STATE"].startswith("postgresql://")
    assert not any(a.startswith(("postgresql://", "https://hooks")) for a in container["args"])
    source = "\n".join(p.read_text() for p in (ROOT / "reconciler").rglob("*.py"))
    unread = [k for k in env if f'"{k}"' not in source and f"env.{k}" not in source]
    assert not unread, f"the Secret sets variables nothing reads: {unread}"
    # health on the port the command serves metrics on, never as root
    port = int(ctx.params["metrics_port"])
    probe = container["livenessProbe"]["httpGet"]
    named = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert probe["path"] == "/healthz" and named.get(probe["port"], probe["port"]) == port
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["terminationGracePeriodSeconds"] > 10  # the watch exits within 10 s of SIGTERM
    # the mounted manifests validate
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == ctx.params["paths"][0])
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    files = docs["ConfigMap"]["data"] if volume["configMap"]["name"] == docs["ConfigMap"]["metadata"]["name"] else {}
    assert files
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    code, out = cli("validate", str(tmp_path))
    assert code == 0, out
