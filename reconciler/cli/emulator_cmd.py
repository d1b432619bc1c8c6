"""`reconciler emulator serve`: the sandbox as a standalone server."""
from __future__ import annotations

import shlex

import click

from reconciler.cli.root import main


@main.group()
def emulator() -> None:
    """The sandbox: an emulator of the VALDI, Valohai and Code Ocean APIs."""


@emulator.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8700, show_default=True, type=int)
@click.option("--data", "data_dir", type=click.Path(file_okay=False), default=None,
              help="Keep the emulator's state in DIR (SQLite); survives a restart.")
@click.option("--latency-ms", type=float, default=0.0, help="Added to every API request.")
@click.option("--fault-rate", type=float, default=0.0, help="Share of API requests that fail (429/500/drop).")
@click.option("--access-ttl", type=float, default=300.0, help="VALDI access-token lifetime in seconds.")
@click.option("--quirks", "quirk_names", default="", metavar="A,B",
              help="Answer in these undocumented-but-plausible shapes (GET /_emulator/quirks lists them).")
def serve(host: str, port: int, data_dir: str | None, latency_ms: float, fault_rate: float,
          access_ttl: float, quirk_names: str) -> None:
    """Serve all three APIs on one port; prints the environment to use them."""
    from reconciler.emulator import EmulatorConfig, EmulatorServer
    from reconciler.emulator.quirks import parse

    try:
        chosen = parse(quirk_names)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--quirks") from None
    config = EmulatorConfig(latency_ms=latency_ms, fault_rate=fault_rate, valdi_access_ttl=access_ttl,
                            quirks=chosen)
    server = EmulatorServer(data_dir=data_dir, config=config, host=host, port=port)
    for name, value in server.env().items():
        click.echo(f"export {name}={shlex.quote(value)}")
    click.echo(f"# emulator listening on {server.url} (admin: {server.url}/_emulator/); Ctrl-C stops it",
               err=True)
    server.serve_forever()
