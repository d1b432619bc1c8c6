"""What a saved plan was made from, pinned so `apply PLANFILE` runs only what was reviewed.

The manifest digest covers the YAML text, but not what it resolves to: `${env.X}`
values, the content of the local files a spec names (an edited `files[].source` would
be uploaded as edited), provider settings from the environment. So the plan file keeps,
per resolved value, a keyed hash: HMAC-SHA256 under a salt made for this one plan and
stored beside the hashes. Equal values give equal pins; a pin reveals nothing about a
secret (no dictionary of guesses can be tried without the salt, and the salt alone
gives nothing). At apply the fresh plan's values are pinned with the same salt and any
difference is named, field by field.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

from reconciler.config import localfiles, sensitivity, walk
from reconciler.config.sensitivity import secret_key

if TYPE_CHECKING:
    from reconciler.engine.planner import Step
    from reconciler.providers.contract import Kind

FILE = " (file contents)"


new_salt = sensitivity.new_salt
_pin = sensitivity.salted_digest


_leaves = walk.leaves


def inputs(steps: Mapping[str, Step], kinds: Mapping[str, Kind], providers: Mapping[str, dict],
           salt: str, files_read: Sequence[str] = (), root: str = ".") -> dict[str, str]:
    """field -> pin, for every resolved spec value, every local file a spec reads, every
    file a file(path) expression read (it may feed for_each keys or an output, not only a
    spec), and every provider setting except credentials (which may rotate between plan
    and apply without changing what the plan does)."""
    out: dict[str, str] = {}
    for path in files_read:
        shown = os.path.relpath(path, root) if os.path.isabs(path) else path
        out[f"file({shown}){FILE}"] = _pin(salt, localfiles.digest(Path(path)))
    for address, step in steps.items():
        if step.spec is not None:
            for key, value in _leaves(step.spec, f"{address}.spec"):
                out[key] = _pin(salt, value)
        resource = step.resource
        kind = kinds.get(resource.kind) if resource is not None else None
        if resource is None or kind is None:
            continue
        for key, value, mode in localfiles.declared(resource, kind):
            if mode == localfiles.READ and isinstance(value, str):
                out[f"{address}.{key}{FILE}"] = _pin(salt, localfiles.digest(localfiles.resolved(resource, value)))
    for name, config in providers.items():
        for key, value in _leaves(dict(config or {}), f"providers.{name}"):
            if not secret_key(key.rsplit(".", 1)[-1]):
                out[key] = _pin(salt, value)
    return out


def differences(saved: Mapping[str, str], fresh: Mapping[str, str]) -> list[str]:
    """One line per field whose resolved value is not the one the plan was made with."""
    lines = []
    for key in sorted(set(saved) | set(fresh)):
        before, after = saved.get(key), fresh.get(key)
        if before == after:
            continue
        if key.endswith(FILE):
            lines.append(f"{key[:-len(FILE)]}: the file changed since the plan was made")
        elif before is None:
            lines.append(f"{key}: set now, not in the plan")
        elif after is None:
            lines.append(f"{key}: in the plan, not set now")
        else:
            lines.append(f"{key}: resolves to another value than the plan was made with")
    return lines
