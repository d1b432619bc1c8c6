"""`lookups: {kind: codeocean.data_asset, where: {name: Reference genome}}`: data assets
managed elsewhere. Reads the listing the data asset kind reads anyway (the assets this
token created); only when nothing there matches, one search over every asset it can see."""
from __future__ import annotations

from typing import Any, Mapping

from reconciler.providers.contract import Catalogue


class AssetCatalogue(Catalogue):
    name = "codeocean.data_asset"

    def rows(self, api: Any) -> list[dict[str, Any]]:
        return [{**asset, "archived": archived} for asset, archived in api.owned_assets().values()]

    def more_rows(self, api: Any) -> list[dict[str, Any]]:
        """Every asset the token can see (shared ones too): read only when `rows` has no match."""
        return [dict(a) for a in api.visible_assets()]

    def label(self, row: Mapping[str, Any]) -> str:
        return f"{row.get('name')!r} (mount {row.get('mount')!r}, {row.get('state') or 'state unknown'})"
