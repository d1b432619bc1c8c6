"""The `valohai` provider: adopted datums and the properties, tags and aliases of datums.

Manifest block: `providers: {valohai: {host, token, project}}`; each field falls back to
VALOHAI_HOST (default https://app.valohai.com), VALOHAI_TOKEN, VALOHAI_PROJECT (an id
or a project name).
"""
from __future__ import annotations

from typing import Any

from reconciler.providers.valohai.client import ValohaiClient, connect
from reconciler.providers.valohai.datum import DatumKind
from reconciler.providers.valohai.datum_properties import DatumPropertiesKind
from reconciler.providers.valohai.stores import StoreCatalogue


class ValohaiProvider:
    name = "valohai"

    def __init__(self) -> None:
        self.kinds = [DatumKind(), DatumPropertiesKind()]
        self.catalogues = [StoreCatalogue()]  # what lookups: read

    def connect(self, config: dict[str, Any]) -> ValohaiClient:
        return connect(config or {})

    def doctor(self, client: Any) -> list:
        """Read-only checks that the service answers as this provider expects."""
        from reconciler.providers.valohai.doctor import doctor
        return doctor(client)


PROVIDER = ValohaiProvider()

__all__ = ["PROVIDER", "ValohaiProvider", "ValohaiClient"]
