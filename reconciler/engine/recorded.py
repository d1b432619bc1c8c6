"""What the state records of a live object: its outputs, and apart from them its secrets.

A kind hands its secrets over in `Live.secrets` (the contract: never by name). One more
thing is a secret: an output that echoes a spec field derived from a secret (a data
asset's `name` built from an access key), or any output whose value holds a secret the
run handles (a `mount` that copies such a name), so it goes with the secrets too. Everything
here is registered with the redactor, so no log line or error message shows it.
"""
from __future__ import annotations

from typing import Any, Iterable

from reconciler.config.sensitivity import holds_secret, register, top_field
from reconciler.providers.contract import Live


def split(live: Live, derived: Iterable[str] = ()) -> tuple[dict[str, Any], dict[str, Any]]:
    """(outputs, secrets) of `live`; `derived`: spec paths holding a value derived from a secret."""
    echoed = {top_field(p) for p in derived} | {k for k, v in live.outputs.items() if holds_secret(v)}
    outputs = {k: v for k, v in live.outputs.items() if k not in echoed}
    secrets = {**{k: v for k, v in live.outputs.items() if k in echoed}, **live.secrets}
    for value in secrets.values():
        register(value)
    return outputs, secrets


__all__ = ["split"]
