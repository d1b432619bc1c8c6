"""The codeocean API (placeholder until its module is written)."""
from __future__ import annotations

from starlette.routing import Route

from reconciler.emulator.core import Emulator


def routes(emu: Emulator) -> list[Route]:
    return []


def seed(emu: Emulator) -> None:
    pass
