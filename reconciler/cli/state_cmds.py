"""`reconciler state ...`: look at and edit what the state remembers."""
from __future__ import annotations

from reconciler.cli.root import main


@main.group()
def state() -> None:
    """Inspect or edit the state (which live objects the manifests own)."""
