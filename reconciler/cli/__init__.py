"""The `reconciler` command line. Thin: parse, call the engine, render, exit code.

Exit codes: 0 success / no changes, 1 error (usage errors too), 2 changes present
(plan --detailed-exitcode) or drift (drift, watch --once), 3 denied by policy; see
root.EXIT_CODES.
"""
from __future__ import annotations

import importlib

from reconciler.cli.malloc import one_arena
from reconciler.cli.root import accept_global_flags_after_commands, main

one_arena()  # before any thread starts: see cli/malloc.py

# Command modules register themselves on the root group when imported.
_COMMAND_MODULES = ("commands", "state_cmds", "state_backend_cmds", "emulator_cmd", "import_cmd",
                    "watch_cmd", "output_cmd", "doctor_cmd", "guardrail_cmds", "state_mv_cmd", "discover_cmd",
                    "completion_cmd")
for _name in _COMMAND_MODULES:
    importlib.import_module(f"reconciler.cli.{_name}")

accept_global_flags_after_commands(main)

# A run holds tens of thousands of small long-lived objects (specs, positions, listings);
# with the default first threshold (700) the collector rescans them again and again, a
# third of a 10,000-resource plan's CPU. Fewer, larger collections; nothing else changes.
import gc as _gc  # noqa: E402

_gc.set_threshold(50_000, 50, 100)
