"""What a saved plan was made from, pinned so `apply PLANFILE` runs only what was reviewed.

The manifest digest covers the YAML text, but not what it resolves to: `${env.X}`
values, the content of the local files a spec names (an edited `files[].source` would
be uploaded as edited), provider settings from the environment. So the plan file keeps,
per resolved value, a keyed hash: HMAC-SHA256 under the plan key (never in the file,
reconciler.plan.signing) and a nonce made for this one plan. Equal values give equal
pins; without the key a pin gives a guesser nothing to test against. Secret values
(sensitive fields, values derived from a secret) are pinned only under a key the user
configured; under this machine's own key they are left out, and the file says so. At
apply the fresh plan's values are pinned the same way and any difference is named,
field by field.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from reconciler.config import localfiles, sensitivity, walk
from reconciler.config.sensitivity import secret_key
from reconciler.plan.signing import Key

if TYPE_CHECKING:
    from reconciler.engine.planner import Step
    from reconciler.providers.contract import Kind

FILE = " (file contents)"


new_salt = sensitivity.new_salt  # the per-plan nonce


def _secret(step: Step, kind: Kind | None, path: str) -> bool:
    if any(sensitivity.secret_key(part) or part in sensitivity.field_names(kind)
           for part in path.replace("[", ".[").split(".") if not part.startswith("[")):
        return True
    hidden = [*step.derived, *(step.resource.sensitive_paths if step.resource is not None else ())]
    return sensitivity.covers(hidden, path)


def inputs(steps: Mapping[str, Step], kinds: Mapping[str, Kind], providers: Mapping[str, dict],
           salt: str, key: Key, files_read: Sequence[str] = (), root: str = ".") -> tuple[dict[str, str], int]:
    """(field -> pin, how many secret values were left out): every resolved spec value
    (secret ones only under a configured key), every local file a spec reads, every file
    a file(path) expression read (it may feed for_each keys or an output, not only a
    spec), and every provider setting except credentials (which may rotate between plan
    and apply without changing what the plan does)."""
    def pin(value: Any) -> str:
        return key.pin(salt, value)

    out: dict[str, str] = {}
    left_out = 0
    for path in files_read:
        shown = os.path.relpath(path, root) if os.path.isabs(path) else path
        out[f"file({shown}){FILE}"] = pin(localfiles.digest(Path(path)))
    for address, step in steps.items():
        resource = step.resource
        kind = kinds.get(resource.kind) if resource is not None else None
        if step.spec is not None:
            for path, value in walk.leaves(step.spec):
                if key.configured or not _secret(step, kind, path):
                    out[f"{address}.spec.{path}" if path else f"{address}.spec"] = pin(value)
                else:
                    left_out += 1
        if resource is None or kind is None:
            continue
        for field, value, mode in localfiles.declared(resource, kind):
            if mode == localfiles.READ and isinstance(value, str):
                out[f"{address}.{field}{FILE}"] = pin(localfiles.digest(localfiles.resolved(resource, value)))
    for name, config in providers.items():
        for field, value in walk.leaves(dict(config or {}), f"providers.{name}"):
            if not secret_key(field.rsplit(".", 1)[-1]):
                out[field] = pin(value)
    return out, left_out


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
