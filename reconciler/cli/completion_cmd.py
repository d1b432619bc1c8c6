"""`reconciler completion bash|zsh|fish`: the shell's completion script, from click's own
(commands, options, choices), printed for the user to source or install:

    eval "$(reconciler completion bash)"                                  # ~/.bashrc
    reconciler completion zsh > "${fpath[1]}/_reconciler"                 # zsh
    reconciler completion fish > ~/.config/fish/completions/reconciler.fish
"""
from __future__ import annotations

import click
from click.shell_completion import get_completion_class

from reconciler.cli.root import main

SHELLS = ("bash", "zsh", "fish")


@main.command(name="completion")
@click.argument("shell", type=click.Choice(SHELLS))
def completion_cmd(shell: str) -> None:
    """Print the completion script for SHELL (eval "$(reconciler completion bash)")."""
    cls = get_completion_class(shell)
    assert cls is not None  # click ships all three
    click.echo(cls(main, {}, "reconciler", "_RECONCILER_COMPLETE").source())
