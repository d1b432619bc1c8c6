"""The `reconciler` command line. Thin: parse, call the engine, render, exit code.

Exit codes: 0 success / no changes, 1 error, 2 changes present (--detailed-exitcode).
"""
from __future__ import annotations

from reconciler.cli.root import main  # noqa: F401

# command modules register themselves on the root group
from reconciler.cli import emulator_cmd, state_cmds  # noqa: F401,E402

try:  # added by the shared-state work; optional until it lands
    from reconciler.cli import state_backend_cmds  # noqa: F401
except ModuleNotFoundError as e:
    if e.name != "reconciler.cli.state_backend_cmds":
        raise
try:
    from reconciler.cli import commands  # noqa: F401  (validate, plan, apply, ...)
except ModuleNotFoundError as e:
    if e.name != "reconciler.cli.commands":
        raise
