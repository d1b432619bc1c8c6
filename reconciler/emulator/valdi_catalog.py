"""VALDI's device catalog in the emulator, and each provider's provisioning rules.

One data structure, CATALOG, serves both GET /v1/devices/available and the validation of
POST /v1/vm/provision. Keys starting with "_" are the emulator's own (capacity, images,
GPU model codes) and never leave it. Values follow seed 002 where it has them; the fourth
provider's full id is not published anywhere, so the emulator picks one (PROVIDER_D).

`vm_fields(provider_id, details, ssh_key_ids)` checks a provision request and returns the
VM's fields plus its `claim` on capacity; a 400 names the details field and the allowed
values. Capacity itself (409) is judged by the caller, who knows the live VMs.
"""
from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any, Callable

from reconciler.emulator.core import HTTPError

PROVIDER_A = "a45088e0-1681-446e-9a3e-3ed9dfc3d57e"  # fixed flavors, all-inclusive price
PROVIDER_B = "66730e5d-98d2-45f6-8aaa-6ad8cdcbc285"  # configurable VMs on hostnodes
PROVIDER_C = "bd3731eb-37c7-4577-817e-b8fe9dd02dfd"  # shapes + images, all-inclusive price
PROVIDER_D = "0a53cf4e-7b2d-4c8e-9f61-2d4a8e6b3c15"  # machine types with ratio limits (id invented)

OS_MIN_STORAGE = {"Ubuntu 20.04 LTS": 20, "Ubuntu 22.04 LTS": 20, "TensorML 20 TensorFlow": 40,
                  "TensorML 20 PyTorch": 40, "TensorML 20 Everything": 60}
_UBUNTU_2204 = {"id": "2cd0e25f-a39e-4bc6-aa78-b4c40b87072a", "name": "Ubuntu 22.04 LTS"}
_UBUNTU_2004_CUDA = {"id": "7f3c1e8a-5b2d-4f6e-8a9c-0d1e2f3a4b5c", "name": "Ubuntu 20.04 LTS + CUDA 11.8"}
_UBUNTU_2204_CUDA = {"id": "c41d9e7b-6a3f-4e2d-b1c8-9f0a7e6d5c4b", "name": "Ubuntu 22.04 LTS + CUDA 12.2"}

CATALOG: dict[str, list[dict]] = {
    PROVIDER_A: [
        {"flavor_id": "94d76997-44ec-4f1e-8291-231de42b6030", "gpu_type": "RTX A6000 48GB",
         "cpu_core_count": 6, "main_ram": 55, "storage": 500, "gpu_count": 1,
         "running_cost": "0.660000000000", "stopped_cost": "0.100000000000",
         "_capacity": 20, "_gpu_model": "RTXA6000.1GPU"},
        {"flavor_id": "b5917017-7ca4-403e-b08b-ba5cc31c7d2a", "gpu_type": "RTX A6000 48GB",
         "cpu_core_count": 12, "main_ram": 110, "storage": 1000, "gpu_count": 2,
         "running_cost": "1.320000000000", "stopped_cost": "0.200000000000",
         "_capacity": 4, "_gpu_model": "RTXA6000.2GPU"},
        {"flavor_id": "e3a7c2d1-58f4-4b9e-a6d0-7c1b2e3f4a59", "gpu_type": "RTX A6000 48GB",
         "cpu_core_count": 24, "main_ram": 220, "storage": 2000, "gpu_count": 4,
         "running_cost": "2.640000000000", "stopped_cost": "0.400000000000",
         "_capacity": 1, "_gpu_model": "RTXA6000.4GPU"},
    ],
    PROVIDER_B: [
        {"cpu_type": "AMD EPYC 7713P", "cpu_core_count": 128, "main_ram": 185, "gpu_enabled": True,
         "gpu_ram": 80, "gpu_type": "A100 80GB", "gpu_code": "a100-pcie-80gb", "gpu_count": 8,
         "location": "Exmouth, Devon, United Kingdom", "storage": 300,
         "hostnode": "b2ce5479-fa59-483f-86ba-0aa128051821",
         "available_port": [21299, 21298, 21297, 21296, 21295, 21294],
         "cpu_cost": 0.0035, "ram_cost": 0.0025, "storage_cost": 0.0002, "gpu_cost": "2.044000000000000",
         "upload_bw": 1000.0, "download_bw": 1000.0, "max_vcpus": 128, "max_ram": 185, "max_storage": 300},
        {"cpu_type": "Intel Xeon Gold 6148", "cpu_core_count": 40, "main_ram": 256, "gpu_enabled": True,
         "gpu_ram": 16, "gpu_type": "V100 16GB", "gpu_code": "v100-pcie-16gb", "gpu_count": 4,
         "location": "Des Moines, Iowa, United States", "storage": 2000,
         "hostnode": "4f8e2a6c-1d3b-4e5f-9a7c-8b6d0e2f1a3c",
         "available_port": [60000, 60001, 60002, 60003, 60004, 60005, 60006, 60007],
         "cpu_cost": 0.0035, "ram_cost": 0.0025, "storage_cost": 0.0001, "gpu_cost": "0.292000000000000",
         "upload_bw": 500.0, "download_bw": 1000.0, "max_vcpus": 40, "max_ram": 256, "max_storage": 2000},
    ],
    PROVIDER_C: [
        {"shape_id": "9a1f3e5d-7c2b-4d8e-a6f0-1b3c5d7e9f20", "shape_code": "vcpu-32_memory-192g_nvidia-rtx-3090-8",
         "gpu_type": "RTX 3090 24GB", "gpu_count": 8, "cpu_core_count": 32, "main_ram": 192, "storage": 1000,
         "running_cost": "3.200000000000", "stopped_cost": "0.240000000000",
         "_capacity": 2, "_gpu_model": "nvidia-rtx-3090", "_images": [_UBUNTU_2204, _UBUNTU_2204_CUDA]},
        {"shape_id": "5e7c9a1b-3d2f-4e6a-8b0c-2d4f6a8c0e13", "shape_code": "vcpu-8_memory-48g_nvidia-rtx-3090-2",
         "gpu_type": "RTX 3090 24GB", "gpu_count": 2, "cpu_core_count": 8, "main_ram": 48, "storage": 250,
         "running_cost": "0.800000000000", "stopped_cost": "0.060000000000",
         "_capacity": 4, "_gpu_model": "nvidia-rtx-3090",
         "_images": [_UBUNTU_2204, _UBUNTU_2004_CUDA, _UBUNTU_2204_CUDA]},
    ],
    PROVIDER_D: [
        {"data_center_id": "ca-montreal-3", "machine_type": "sapphire-rapids-h100", "gpu_type": "H100 80GB",
         "max_gpu_count": 8, "min_boot_disk_size": 32, "min_vcpu_per_memory_gib": 0.125,
         "max_vcpus_per_memory_gib": 1, "min_vcpu_per_gpu": 2, "max_vcpu_per_gpu": 24,
         "vcpu_cost": "0.008000000000", "ram_cost": "0.002000000000", "gpu_cost": "2.390000000000",
         "storage_cost": "0.000150000000", "_gpu_model": "h100-sxm-80gb"},
        {"data_center_id": "ca-toronto-1", "machine_type": "cascade-lake-a100", "gpu_type": "A100 40GB",
         "max_gpu_count": 4, "min_boot_disk_size": 32, "min_vcpu_per_memory_gib": 0.125,
         "max_vcpus_per_memory_gib": 0.5, "min_vcpu_per_gpu": 1, "max_vcpu_per_gpu": 12,
         "vcpu_cost": "0.006000000000", "ram_cost": "0.001500000000", "gpu_cost": "1.150000000000",
         "storage_cost": "0.000150000000", "_gpu_model": "a100-sxm4-40gb"},
    ],
}
# the catalog field that identifies an item, per provider: the VM's claim names it
ITEM_KEY = {PROVIDER_A: "flavor_id", PROVIDER_B: "hostnode", PROVIDER_C: "shape_id",
            PROVIDER_D: "machine_type"}


def item_capacity(provider_id: str, item: dict) -> int | None:
    """How much of an item exists (VMs for flavors/shapes, GPUs for hostnodes); None: no limit."""
    if provider_id == PROVIDER_B:
        return item["gpu_count"]
    return item.get("_capacity")


COST_FIELDS = ("vcpu_cost", "cpu_cost", "ram_cost", "storage_cost", "gpu_cost", "running_cost", "stopped_cost")


def render_devices(free: Callable[[str, dict], int | None], costs: bool = True) -> dict:
    """GET /v1/devices/available, with what is free now: `available` (a45088e0, bd3731eb)
    and a hostnode's `gpu_count` (66730e5d). Without `costs`, no price fields."""
    out = []
    for provider_id, items in CATALOG.items():
        devices = []
        for item in items:
            device = {k: v for k, v in item.items() if not k.startswith("_") and (costs or k not in COST_FIELDS)}
            left = free(provider_id, item)
            if provider_id == PROVIDER_B:
                device["gpu_count"] = left
            elif left is not None:
                device["available"] = left
            devices.append(device)
        out.append({"provider_id": provider_id, "provider_devices": devices})
    return {"devices_by_provider": out}


def shape(shape_ref: str) -> dict | None:
    """A bd3731eb shape by its id (or, leniently, its shape_code)."""
    return next((s for s in CATALOG[PROVIDER_C] if shape_ref in (s["shape_id"], s["shape_code"])), None)


# -- validation helpers ------------------------------------------------------------------
def bad(field: str, message: str) -> HTTPError:
    return HTTPError(400, {"detail": f"details.{field}: {message}"})


def what_is_wrong(value: Any) -> str:
    return "is required" if value is None else f"unknown value {value!r}"


def _allowed(values) -> str:
    return "(allowed: " + ", ".join(str(v) for v in values) + ")"


def _pick(items: list[dict], key: str, value: Any, field: str | None = None) -> dict:
    found = next((i for i in items if value is not None and i[key] == value), None)
    if found is None:
        raise bad(field or key, f"{what_is_wrong(value)} {_allowed(i[key] for i in items)}")
    return found


def _int(details: dict, field: str, low: int, high: int | None, *, even: bool = False,
         required: bool = True) -> int | None:
    value = details.get(field)
    if value is None and not required:
        return None
    top = "" if high is None else str(high)
    if even:
        allowed = f"(allowed: {low}, {low + 2}, ... {high})"
    else:
        allowed = f"(allowed: {low} ... {top})" if high is not None else f"(allowed: {low} or more)"
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad(field, f"{'is required' if value is None else 'must be an integer'} {allowed}")
    if even and value % 2:
        raise bad(field, f"must be even {allowed}")
    if value < low or (high is not None and value > high):
        raise bad(field, f"{value} is out of range {allowed}")
    return value


def _given_int(details: dict, field: str, low: int, high: int | None, *, even: bool = False) -> int:
    """A required integer detail (a 400 naming it otherwise)."""
    value = _int(details, field, low, high, even=even)
    assert value is not None  # _int raised for a missing one
    return value


def _ssh_key(details: dict, ssh_key_ids: set[str], required: bool) -> str | None:
    value = details.get("ssh_key_id")
    if value is None:
        if required:
            raise bad("ssh_key_id", "is required: the id of one of your SSH keys (POST /sshkeys/sshkey)")
        return None
    if value not in ssh_key_ids:
        mine = _allowed(sorted(ssh_key_ids)) if ssh_key_ids else "(this account has no SSH keys)"
        raise bad("ssh_key_id", f"no SSH key {value!r} in this account {mine}")
    return value


def money(value: Decimal | str | float) -> str:
    """A decimal string with 12 fractional digits, as VALDI writes costs."""
    return f"{Decimal(str(value)).quantize(Decimal('1e-12')):f}"


def _costs(*, running: str | None = None, stopped: str | None = None, cpu=None, ram=None, storage=None,
           gpu=None) -> dict:
    inclusive = running is not None
    return {"all_inclusive": inclusive,
            "cpu_cost": None if inclusive else money(cpu), "ram_cost": None if inclusive else money(ram),
            "storage_cost": None if inclusive else money(storage), "gpu_cost": None if inclusive else money(gpu),
            "all_inclusive_running_cost": money(running) if running is not None else None,
            "all_inclusive_stopped_cost": money(stopped) if inclusive and stopped is not None else None}


def _ports(details: dict, field: str) -> list[int]:
    """Brace-set port strings, "{21297, 21298}", as seed 002 gives them (not a JSON list)."""
    value = details.get(field)
    if value is None:
        return []
    if isinstance(value, str) and value.strip().startswith("{") and value.strip().endswith("}"):
        inner = value.strip()[1:-1].strip()
        items = [p.strip() for p in inner.split(",")] if inner else []
    else:
        raise bad(field, 'must be a brace set of ports like "{22, 80}"')
    ports = []
    for p in items:
        try:
            port = int(p)
        except (TypeError, ValueError):
            raise bad(field, f"{p!r} is not a port number (allowed: 1 ... 65535)") from None
        if isinstance(p, bool) or not 1 <= port <= 65535:
            raise bad(field, f"{p!r} is not a port number (allowed: 1 ... 65535)")
        ports.append(port)
    return ports


# -- the four providers -------------------------------------------------------------------
def _flavor_vm(details: dict, ssh_key_ids: set[str]) -> dict:
    flavor = _pick(CATALOG[PROVIDER_A], "flavor_id", details.get("flavor_id"))
    ssh_key_id = _ssh_key(details, ssh_key_ids, required=True)
    ipv4 = details.get("ipv4", False)
    if ipv4 is None:
        ipv4 = False
    if not isinstance(ipv4, bool):
        raise bad("ipv4", "must be true or false (allowed: true, false)")
    return {"ssh_key_id": ssh_key_id, "gpu_count": flavor["gpu_count"], "gpu_model": flavor["_gpu_model"],
            "pretty_gpu_name": flavor["gpu_type"], "vcpus": flavor["cpu_core_count"], "ram": flavor["main_ram"],
            "storage": flavor["storage"], "operating_system": "Ubuntu 20.04 LTS",
            "port_forwards": json.dumps({"22": "22", "443": "443", "80": "80"}),
            **_costs(running=flavor["running_cost"], stopped=flavor["stopped_cost"]),
            "extras": {"flavor_id": flavor["flavor_id"], "ipv4": ipv4}, "ipv4": ipv4,
            "claim": {"item": flavor["flavor_id"], "amount": 1, "while_stopped": True}}


def _hostnode_vm(details: dict, ssh_key_ids: set[str]) -> dict:
    node = _pick(CATALOG[PROVIDER_B], "hostnode", details.get("hostnode"))
    if details.get("gpu_model") != node["gpu_code"]:
        raise bad("gpu_model", f"{what_is_wrong(details.get('gpu_model'))} on hostnode {node['hostnode']} "
                  f"{_allowed([node['gpu_code']])}")
    system = details.get("operating_system")
    if system not in OS_MIN_STORAGE:
        raise bad("operating_system", f"{what_is_wrong(system)} {_allowed(OS_MIN_STORAGE)}")
    storage = _given_int(details, "storage", OS_MIN_STORAGE[system], node["max_storage"])
    vcpus = _given_int(details, "vcpus", 2, node["max_vcpus"], even=True)
    ram = _given_int(details, "ram", 1, node["max_ram"])
    gpu_count = _given_int(details, "gpu_count", 1, node["gpu_count"])
    ssh_key_id = _ssh_key(details, ssh_key_ids, required=False)
    password = details.get("password")
    if password is not None and (not isinstance(password, str) or not password):
        raise bad("password", "must be a non-empty string")
    if ssh_key_id is None and password is None:
        raise bad("password", "password or ssh_key_id is required")
    external, internal = _ports(details, "external_ports"), _ports(details, "internal_ports")
    if len(external) != len(internal):
        raise bad("internal_ports", f"{len(internal)} ports for {len(external)} external_ports: "
                  "they map position by position")
    for port in external:
        if port not in node["available_port"]:
            raise bad("external_ports", f"{port} is not a port of hostnode {node['hostnode']} "
                      f"{_allowed(node['available_port'])}")
    if len(set(external)) != len(external):
        raise bad("external_ports", "a port is listed twice")
    return {"ssh_key_id": ssh_key_id, "gpu_count": gpu_count, "gpu_model": node["gpu_code"],
            "pretty_gpu_name": node["gpu_type"], "vcpus": vcpus, "ram": ram, "storage": storage,
            "operating_system": system,
            "port_forwards": json.dumps({str(e): str(i) for e, i in zip(external, internal)}),
            **_costs(cpu=Decimal(str(node["cpu_cost"])) * vcpus, ram=Decimal(str(node["ram_cost"])) * ram,
                     storage=Decimal(str(node["storage_cost"])) * storage,
                     gpu=Decimal(node["gpu_cost"]) * gpu_count),
            "extras": {"hostnode": node["hostnode"]},
            "claim": {"item": node["hostnode"], "amount": gpu_count, "while_stopped": False}}


def _rules(details: dict) -> list[dict]:
    rules = details.get("sec_group_rules", [])
    if rules is None:
        return []
    if not isinstance(rules, list):
        raise bad("sec_group_rules", "must be a list of {protocol, port_range_min, port_range_max, direction}")
    for n, rule in enumerate(rules):
        where = f"sec_group_rules[{n}]"
        if not isinstance(rule, dict):
            raise bad(where, "must be an object {protocol, port_range_min, port_range_max, direction}")
        if rule.get("protocol") not in ("tcp", "udp", "icmp"):
            raise bad(f"{where}.protocol", f"{what_is_wrong(rule.get('protocol'))} {_allowed(['tcp', 'udp', 'icmp'])}")
        if rule.get("direction") not in ("ingress", "egress"):
            raise bad(f"{where}.direction", f"{what_is_wrong(rule.get('direction'))} {_allowed(['ingress', 'egress'])}")
        bounds = []
        for end in ("port_range_min", "port_range_max"):
            value = rule.get(end)
            if isinstance(value, str) and value.isdigit():
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
                raise bad(f"{where}.{end}", f"{value!r} is not a port number (allowed: 1 ... 65535)")
            bounds.append(value)
        if bounds[0] > bounds[1]:
            raise bad(f"{where}.port_range_max", f"{bounds[1]} is below port_range_min {bounds[0]}")
    return rules


def _shape_vm(details: dict, ssh_key_ids: set[str]) -> dict:
    found = _pick(CATALOG[PROVIDER_C], "shape_code", details.get("config"), "config")
    image = _pick(found["_images"], "id", details.get("image_id"), "image_id")
    ssh_key_id = _ssh_key(details, ssh_key_ids, required=True)
    rules = _rules(details)
    extra = _int(details, "additional_storage", 0, 10000, required=False) or 0
    forwards = {}
    for rule in rules:
        if rule["direction"] == "ingress":
            low, high = int(rule["port_range_min"]), int(rule["port_range_max"])
            span = str(low) if low == high else f"{low}-{high}"
            forwards[span] = span
    return {"ssh_key_id": ssh_key_id, "gpu_count": found["gpu_count"], "gpu_model": found["_gpu_model"],
            "pretty_gpu_name": found["gpu_type"], "vcpus": found["cpu_core_count"], "ram": found["main_ram"],
            "storage": found["storage"] + extra, "operating_system": image["name"],
            "port_forwards": json.dumps(forwards),
            **_costs(running=found["running_cost"], stopped=found["stopped_cost"]),
            "extras": {"config": found["shape_code"], "image_id": image["id"]},
            "claim": {"item": found["shape_id"], "amount": 1, "while_stopped": True}}


def _machine_vm(details: dict, ssh_key_ids: set[str]) -> dict:
    items = CATALOG[PROVIDER_D]
    center = details.get("data_center_id")
    centers = list(dict.fromkeys(i["data_center_id"] for i in items))
    if center not in centers:
        raise bad("data_center_id", f"{what_is_wrong(center)} {_allowed(centers)}")
    machine = _pick([i for i in items if i["data_center_id"] == center], "machine_type",
                    details.get("machine_type"))
    ssh_key_id = _ssh_key(details, ssh_key_ids, required=True)
    disk = _given_int(details, "boot_disk_size", machine["min_boot_disk_size"], None)
    gpu_count = _given_int(details, "gpu_count", 1, machine["max_gpu_count"])
    ram = _given_int(details, "ram", 1, None)
    vcpus = _given_int(details, "vcpus", 1, None)
    low = max(machine["min_vcpu_per_memory_gib"] * ram, machine["min_vcpu_per_gpu"] * gpu_count)
    high = min(machine["max_vcpus_per_memory_gib"] * ram, machine["max_vcpu_per_gpu"] * gpu_count)
    if not low <= vcpus <= high:
        fits = math.ceil(low), math.floor(high)
        allowed = f"{fits[0]} ... {fits[1]}" if fits[0] <= fits[1] else "none: change ram or gpu_count"
        raise bad("vcpus", f"{vcpus} vCPUs break the ratio limits of {machine['machine_type']}: "
                  f"{machine['min_vcpu_per_memory_gib']}..{machine['max_vcpus_per_memory_gib']} per GiB of ram, "
                  f"{machine['min_vcpu_per_gpu']}..{machine['max_vcpu_per_gpu']} per GPU "
                  f"(allowed for ram {ram} and gpu_count {gpu_count}: {allowed})")
    return {"ssh_key_id": ssh_key_id, "gpu_count": gpu_count, "gpu_model": machine["_gpu_model"],
            "pretty_gpu_name": machine["gpu_type"], "vcpus": vcpus, "ram": ram, "storage": disk,
            "operating_system": "Ubuntu 22.04 LTS", "port_forwards": json.dumps({"22": "22"}),
            **_costs(cpu=Decimal(machine["vcpu_cost"]) * vcpus, ram=Decimal(machine["ram_cost"]) * ram,
                     storage=Decimal(machine["storage_cost"]) * disk,
                     gpu=Decimal(machine["gpu_cost"]) * gpu_count),
            "extras": {"machine_type": machine["machine_type"], "data_center_id": center},
            "claim": {"item": machine["machine_type"], "amount": 1, "while_stopped": True}}


RULES = {PROVIDER_A: _flavor_vm, PROVIDER_B: _hostnode_vm, PROVIDER_C: _shape_vm, PROVIDER_D: _machine_vm}


def vm_fields(provider_id: Any, details: Any, ssh_key_ids: set[str]) -> dict:
    if provider_id not in RULES:
        raise HTTPError(400, {"detail": f"provider_id: {what_is_wrong(provider_id)} {_allowed(RULES)}"})
    if not isinstance(details, dict):
        raise HTTPError(400, {"detail": "details: an object of the provider's fields is required"})
    return RULES[provider_id](details, ssh_key_ids)


def item_of(provider_id: str, claim_item: str) -> dict | None:
    key = ITEM_KEY[provider_id]
    return next((i for i in CATALOG[provider_id] if i[key] == claim_item), None)
