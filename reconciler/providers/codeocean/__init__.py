"""The `codeocean` provider: data assets, their metadata, archive state and permissions.

Manifest block: `providers: {codeocean: {domain, token}}`; each field falls back to
CODEOCEAN_DOMAIN and CODEOCEAN_TOKEN.
"""
from __future__ import annotations

from typing import Any

from reconciler.providers.codeocean.assets import AssetCatalogue
from reconciler.providers.codeocean.client import CodeOceanClient, connect
from reconciler.providers.codeocean.data_asset import DataAssetKind


class CodeOceanProvider:
    name = "codeocean"

    def __init__(self) -> None:
        self.kinds = [DataAssetKind()]
        self.catalogues = [AssetCatalogue()]  # what lookups: read

    def connect(self, config: dict[str, Any]) -> CodeOceanClient:
        return connect(config or {})

    def doctor(self, client: Any) -> list:
        """Read-only checks that the service answers as this provider expects."""
        from reconciler.providers.codeocean.doctor import doctor
        return doctor(client)


PROVIDER = CodeOceanProvider()

__all__ = ["PROVIDER", "CodeOceanProvider", "CodeOceanClient"]
