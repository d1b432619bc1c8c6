"""`lookups: {kind: valohai.store, where: {name: team-store}}`: Valohai's data stores (the
listing the datum kind reads to find a store by name)."""
from __future__ import annotations

from typing import Any, Mapping

from reconciler.providers.contract import Catalogue


class StoreCatalogue(Catalogue):
    name = "valohai.store"

    def rows(self, api: Any) -> list[dict[str, Any]]:
        return [dict(s) for s in api.stores()]

    def label(self, row: Mapping[str, Any]) -> str:
        return f"{row.get('name')!r} ({row.get('type') or 'store'})"
