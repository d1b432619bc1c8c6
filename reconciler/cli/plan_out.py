"""`plan -o FILE`: where a saved plan may be written, checked when the option is read,
before anything is loaded or any API call. A file that is there already may only be an
earlier saved plan (replaced); a manifest or any other file is never overwritten. A
.yaml name is refused: apply and plan would read it as a manifest."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import click

from reconciler.config.terminal import shown

PLAN_HEADER = b"reconciler-plan "  # the first bytes of every saved plan (plan/planfile.py)
MANIFEST_SUFFIXES = (".yaml", ".yml")


def problem(out: str) -> str | None:
    """Why a plan may not be written to `out`, or None."""
    path = Path(out)
    folder = path.parent
    if not folder.exists():
        return f"cannot write the plan file: the folder {shown(str(folder), one_line=True)} does not exist"
    if not folder.is_dir():
        return f"cannot write the plan file: {shown(str(folder), one_line=True)} is not a folder"
    try:
        info = os.stat(path)
    except FileNotFoundError:
        if path.suffix.lower() in MANIFEST_SUFFIXES:
            return "a plan file is no manifest: a .yaml name would be read as one (name it e.g. plan.bin)"
        return None
    except OSError as e:
        return f"cannot write the plan file ({e.strerror or e.__class__.__name__})"
    if not stat.S_ISREG(info.st_mode):
        return "exists and is not a regular file; name a new file"
    try:
        with open(path, "rb") as f:
            first = f.read(len(PLAN_HEADER))
    except OSError as e:
        return f"exists and cannot be read ({e.strerror or e.__class__.__name__}); name a new file"
    if first != PLAN_HEADER:
        return "exists and is not a saved plan: it is never overwritten; name a new file"
    return None


def checked(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """The click callback of `plan -o`."""
    if not value:
        return value
    why = problem(value)
    if why:  # no usage hint: the file is the problem, not how the command was typed
        raise click.ClickException(f"-o {shown(value, one_line=True)}: {why}")
    return value
