"""The sandbox: one ASGI app that answers the VALDI, Valohai and Code Ocean APIs.

It imports nothing of the engine; only the CLI (and tests) import it.
"""
from reconciler.emulator.app import create_app  # noqa: F401
from reconciler.emulator.core import EmulatorConfig  # noqa: F401
from reconciler.emulator.server import EmulatorServer  # noqa: F401
