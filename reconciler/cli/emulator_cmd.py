"""`reconciler emulator serve` (the sandbox as a standalone server) and
`reconciler emulator env` (the export lines for one that runs)."""
from __future__ import annotations

import errno
import shlex
import time

import click

from reconciler.cli.root import main


@main.group()
def emulator() -> None:
    """The sandbox: an emulator of the VALDI, Valohai and Code Ocean APIs."""


def export_lines(env: dict[str, str]) -> str:
    return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in env.items())


@emulator.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="The address the emulator listens on.")
@click.option("--port", default=8700, show_default=True, type=int, help="Its port.")
@click.option("--data", "data_dir", type=click.Path(file_okay=False), default=None,
              help="Keep the emulator's state in DIR (SQLite); survives a restart.")
@click.option("--latency-ms", type=float, default=0.0, help="Added to every API request.")
@click.option("--fault-rate", type=float, default=0.0, help="Share of API requests that fail (429/500/drop).")
@click.option("--access-ttl", type=float, default=300.0, help="VALDI access-token lifetime in seconds.")
@click.option("--env-file", type=click.Path(dir_okay=False), default=None,
              help="Also write the export lines to FILE (for `. FILE` in another shell).")
@click.option("--quirks", "quirk_names", default="", metavar="A,B",
              help="Answer in these undocumented-but-plausible shapes (GET /_emulator/quirks lists them).")
def serve(host: str, port: int, data_dir: str | None, latency_ms: float, fault_rate: float,
          access_ttl: float, env_file: str | None, quirk_names: str) -> None:
    """Serve all three APIs on one port; prints the environment to use them."""
    from reconciler.emulator import EmulatorConfig, EmulatorServer
    from reconciler.emulator.quirks import parse

    try:
        chosen = parse(quirk_names)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--quirks") from None
    config = EmulatorConfig(latency_ms=latency_ms, fault_rate=fault_rate, valdi_access_ttl=access_ttl,
                            quirks=chosen)
    try:
        server = EmulatorServer(data_dir=data_dir, config=config, host=host, port=port)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise click.ClickException(f"port {port} on {host} is already in use (another emulator?); "
                                       "pick another with --port") from None
        raise click.ClickException(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    lines = export_lines(server.env())
    if env_file:
        with open(env_file, "w") as f:
            f.write(lines)
    click.echo(lines, nl=False)
    click.echo(f"# emulator listening on {server.url} (admin: {server.url}/_emulator/); Ctrl-C stops it",
               err=True)
    server.serve_forever()


@emulator.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="The address the emulator listens on.")
@click.option("--port", default=8700, show_default=True, type=int, help="Its port.")
@click.option("--wait", "wait", default=10.0, show_default=True, type=float,
              help="Seconds to wait for the emulator to answer (it may still be starting).")
def env(host: str, port: int, wait: float) -> None:
    """Print the export lines for an emulator running on HOST:PORT:
    eval "$(reconciler emulator env --port 8700)"."""
    import httpx

    from reconciler.emulator.server import sandbox_env

    url = f"http://{host}:{port}"
    deadline = time.monotonic() + max(wait, 0.0)
    while True:
        try:
            if httpx.get(f"{url}/_emulator/requests", timeout=2).status_code < 500:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() >= deadline:
            raise click.ClickException(f"no emulator answers at {url}: start one with "
                                       f"`reconciler emulator serve --port {port} &`")
        time.sleep(0.1)
    click.echo(export_lines(sandbox_env(url)), nl=False)
