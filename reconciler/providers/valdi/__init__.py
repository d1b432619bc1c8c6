"""The `valdi` provider: SSH keys, GPU virtual machines and volumes on VALDI.

Manifest block: `providers: {valdi: {endpoint, email, password}}`; each field falls back to
VALDI_ENDPOINT (default https://api.valdi.ai), VALDI_EMAIL and VALDI_PASSWORD.
"""
from __future__ import annotations

from typing import Any

from reconciler.providers.valdi.client import ValdiClient, connect
from reconciler.providers.valdi.flavors import FlavorCatalogue
from reconciler.providers.valdi.ssh_key import SshKeyKind
from reconciler.providers.valdi.vm import VmKind
from reconciler.providers.valdi.volume import VolumeKind


class ValdiProvider:
    name = "valdi"

    def __init__(self) -> None:
        self.kinds = [SshKeyKind(), VmKind(), VolumeKind()]
        self.catalogues = [FlavorCatalogue()]  # what lookups: read

    def connect(self, config: dict[str, Any]) -> ValdiClient:
        return connect(config or {})

    def doctor(self, client: Any) -> list:
        """Read-only checks that the service answers as this provider expects."""
        from reconciler.providers.valdi.doctor import doctor
        return doctor(client)


PROVIDER = ValdiProvider()

__all__ = ["PROVIDER", "ValdiProvider", "ValdiClient"]
