"""`lookups: {kind: valdi.flavor, where: {gpu_type: "RTX A6000 48GB", gpu_count: 1}}`: the
fixed flavours of VALDI's device catalogue (GET /v1/devices/available, read once per run
and shared with the VM checks), each row with its `provider_id`."""
from __future__ import annotations

from typing import Any, Mapping

from reconciler.providers.contract import Catalogue


class FlavorCatalogue(Catalogue):
    name = "valdi.flavor"

    def rows(self, api: Any) -> list[dict[str, Any]]:
        return [{**{k: v for k, v in device.items() if not k.startswith("_")}, "provider_id": provider_id}
                for provider_id, devices in sorted(api.devices().items())
                for device in devices if isinstance(device, dict) and "flavor_id" in device]

    def label(self, row: Mapping[str, Any]) -> str:
        return (f"{row.get('gpu_count')}x {row.get('gpu_type')}, {row.get('cpu_core_count')} vCPUs, "
                f"{row.get('main_ram')} GB RAM, {row.get('storage')} GB (flavor_id {row.get('flavor_id')})")
