"""VM shapes checked against VALDI's device catalog (GET /v1/devices/available), and what
a shape costs per hour, running and stopped.

The four providers are told apart by what their devices carry, not by hard-coded ids
(only a45088e0's, 66730e5d's and bd3731eb's are published): fixed flavors (`flavor_id`),
configurable hostnodes (`hostnode`), shapes (`shape_code`), and machine types with ratio
limits (`machine_type`).
"""
from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

from reconciler.config.model import Ref, Template

OS_MIN_STORAGE = {"Ubuntu 20.04 LTS": 20, "Ubuntu 22.04 LTS": 20, "TensorML 20 TensorFlow": 40,
                  "TensorML 20 PyTorch": 40, "TensorML 20 Everything": 60}
STYLE_KEYS = (("flavor_id", "flavor"), ("hostnode", "hostnode"), ("shape_code", "shape"),
              ("machine_type", "machine"))

class Issue(NamedTuple):
    field: str  # the details field ("" for the shape as a whole)
    message: str
    # about what the catalog has free now, not about the shape: a VM that exists already
    # holds its share, so the check does not hold it against that VM
    capacity: bool = False


def style(devices: list[dict]) -> str | None:
    for key, name in STYLE_KEYS:
        if devices and key in devices[0]:
            return name
    return None


def _allowed(values) -> str:
    return "allowed: " + ", ".join(str(v) for v in values)


def _known(value: Any) -> bool:
    return not isinstance(value, (Ref, Template))


def _int(details: dict, field: str) -> int | None:
    value = details.get(field)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def check(provider_id: str, details: dict, catalog: dict[str, list[dict]],
          images: Callable[[str], list[dict]] | None = None) -> list[Issue]:
    """What is wrong with a VM's details for this provider, before any provisioning call.
    `images(shape_id)` lists a shape's images (read only for VMs of the shape provider)."""
    if provider_id not in catalog:
        return [Issue("provider_id", f"VALDI has no provider {provider_id} ({_allowed(sorted(catalog))})")]
    devices = catalog[provider_id]
    kind = style(devices)
    if kind == "shape":
        return _shape(details, devices, images)
    checker = {"flavor": _flavor, "hostnode": _hostnode, "machine": _machine}.get(kind or "")
    return checker(details, devices) if checker else []


def _pick(devices: list[dict], key: str, details: dict, field: str) -> tuple[dict | None, list[Issue]]:
    value = details.get(field)
    if not _known(value):
        return None, []
    found = next((d for d in devices if d.get(key) == value), None)
    if found is None:
        what = "is required" if value is None else f"{value!r} is not offered"
        return None, [Issue(field, f"{what} ({_allowed(d.get(key) for d in devices)})")]
    return found, []


def _capacity(item: dict, count_key: str, wanted: int = 1) -> list[Issue]:
    free = item.get(count_key)
    if isinstance(free, int) and free < wanted:
        return [Issue("", f"no capacity: {free} free, {wanted} needed", capacity=True)]
    return []


def _flavor(details: dict, devices: list[dict]) -> list[Issue]:
    flavor, issues = _pick(devices, "flavor_id", details, "flavor_id")
    if flavor:
        issues += [i._replace(field="flavor_id") for i in _capacity(flavor, "available")]
    return issues


def _hostnode(details: dict, devices: list[dict]) -> list[Issue]:
    node, issues = _pick(devices, "hostnode", details, "hostnode")
    system = details.get("operating_system")
    if _known(system) and system not in OS_MIN_STORAGE:
        what = "is required" if system is None else repr(system) + " is not offered"
        issues.append(Issue("operating_system", f"{what} ({_allowed(OS_MIN_STORAGE)})"))
    if node is None:
        return issues
    if _known(details.get("gpu_model")) and details.get("gpu_model") != node.get("gpu_code"):
        issues.append(Issue("gpu_model", f"hostnode {node['hostnode']} has {node.get('gpu_code')} GPUs "
                                         f"({_allowed([node.get('gpu_code')])})"))
    storage, low = _int(details, "storage"), OS_MIN_STORAGE.get(system, 20) if isinstance(system, str) else 20
    high = node.get("max_storage") or node.get("storage")
    if storage is None or storage < low or (high and storage > high):
        issues.append(Issue("storage", f"{storage} GB does not fit {system or 'the OS'} on this hostnode "
                                       f"(allowed: {low} ... {high})"))
    vcpus, top = _int(details, "vcpus"), node.get("max_vcpus") or node.get("cpu_core_count")
    if vcpus is None or vcpus % 2 or vcpus < 2 or (top and vcpus > top):
        issues.append(Issue("vcpus", f"{vcpus} is not an even vCPU count this hostnode offers "
                                     f"(allowed: 2, 4, ... {top})"))
    ram, top_ram = _int(details, "ram"), node.get("max_ram") or node.get("main_ram")
    if ram is None or ram < 1 or (top_ram and ram > top_ram):
        issues.append(Issue("ram", f"{ram} GB is out of range (allowed: 1 ... {top_ram})"))
    gpus, free = _int(details, "gpu_count"), node.get("gpu_count")
    if gpus is None or gpus < 1 or (isinstance(free, int) and gpus > free):
        issues.append(Issue("gpu_count", f"{gpus} GPUs requested, {free} free on hostnode {node['hostnode']} "
                                         f"(allowed: 1 ... {free})", capacity=True))
    if details.get("password") is None and details.get("ssh_key_id") is None:
        issues.append(Issue("password", "password or ssh_key_id is required"))
    ports = node.get("available_port") or []
    for port in _ports(details.get("external_ports")):
        if ports and port not in ports:
            issues.append(Issue("external_ports", f"{port} is not open on this hostnode ({_allowed(ports)})"))
    if len(_ports(details.get("external_ports"))) != len(_ports(details.get("internal_ports"))):
        issues.append(Issue("internal_ports", "external_ports and internal_ports map position by position: "
                                              "give as many of each"))
    return issues


def _ports(value: Any) -> list[int]:
    if isinstance(value, list):
        return [p for p in value if isinstance(p, int)]
    if isinstance(value, str):
        return [int(p) for p in value.strip("{} ").split(",") if p.strip().isdigit()]
    return []


def _shape(details: dict, devices: list[dict], images: Callable[[str], list[dict]] | None) -> list[Issue]:
    found, issues = _pick(devices, "shape_code", details, "config")
    if found:
        issues += [i._replace(field="config") for i in _capacity(found, "available")]
        offered = images(found["shape_id"]) if images and found.get("shape_id") else []
        image = details.get("image_id")
        if offered and _known(image) and image not in [i.get("id") for i in offered]:
            what = "is required" if image is None else f"{image!r} is not an image of {found['shape_code']}"
            names = [f"{i.get('id')} ({i.get('name')})" for i in offered]
            issues.append(Issue("image_id", f"{what} ({_allowed(names)})"))
    if details.get("ssh_key_id") is None:
        issues.append(Issue("ssh_key_id", "is required by this provider"))
    extra, top = details.get("additional_storage"), (found or {}).get("max_additional_storage") or MAX_ADDITIONAL_STORAGE
    if _known(extra) and extra is not None and (not isinstance(extra, int) or not 0 <= extra <= top):
        issues.append(Issue("additional_storage", f"{extra} GB is out of range (allowed: 0 ... {top})"))
    return issues


MAX_ADDITIONAL_STORAGE = 10000  # GB: what VALDI accepts when the shape listing names no maximum


def _machine(details: dict, devices: list[dict]) -> list[Issue]:
    centers = list(dict.fromkeys(d.get("data_center_id") for d in devices))
    center = details.get("data_center_id")
    if _known(center) and center not in centers:
        return [Issue("data_center_id", f"{'is required' if center is None else repr(center) + ' is not offered'} "
                                        f"({_allowed(centers)})")]
    machine, issues = _pick([d for d in devices if d.get("data_center_id") == center], "machine_type",
                            details, "machine_type")
    if machine is None:
        return issues
    disk, low_disk = _int(details, "boot_disk_size"), machine.get("min_boot_disk_size") or 1
    high_disk = machine.get("max_boot_disk_size")
    if disk is None or disk < low_disk or (high_disk and disk > high_disk):
        issues.append(Issue("boot_disk_size",
                            f"{disk} GiB is out of range (allowed: {low_disk} ... {high_disk or ''})"))
    gpus, top = _int(details, "gpu_count"), machine.get("max_gpu_count")
    if gpus is None or gpus < 1 or (top and gpus > top):
        issues.append(Issue("gpu_count", f"{gpus} is out of range (allowed: 1 ... {top})"))
    ram, vcpus = _int(details, "ram"), _int(details, "vcpus")
    if ram is None or ram < 1:
        issues.append(Issue("ram", "is required: GiB of memory"))
    if ram and gpus and not issues:
        low = max(machine["min_vcpu_per_memory_gib"] * ram, machine["min_vcpu_per_gpu"] * gpus)
        high = min(machine["max_vcpus_per_memory_gib"] * ram, machine["max_vcpu_per_gpu"] * gpus)
        if vcpus is None or not low <= vcpus <= high:
            fits = (f"{math.ceil(low)} ... {math.floor(high)}" if math.ceil(low) <= math.floor(high)
                    else "none: change ram or gpu_count")
            issues.append(Issue("vcpus", f"{vcpus} vCPUs break {machine['machine_type']}'s limits of "
                                f"{machine['min_vcpu_per_memory_gib']}..{machine['max_vcpus_per_memory_gib']} "
                                f"per GiB and {machine['min_vcpu_per_gpu']}..{machine['max_vcpu_per_gpu']} per GPU "
                                f"(allowed for ram {ram} and gpu_count {gpus}: {fits})"))
    return issues


# -- cost ------------------------------------------------------------------------------------
def _priced_item(kind: str | None, devices: list[dict], details: dict) -> tuple[dict | None, dict, str]:
    """A per-unit priced device, its rate fields (-> the details field they multiply) and
    its disk field."""
    if kind == "hostnode":  # priced per unit: vCPU, GB of RAM and disk, GPU
        item = next((d for d in devices if d.get("hostnode") == details.get("hostnode")), None)
        return item, {"cpu_cost": "vcpus", "ram_cost": "ram", "gpu_cost": "gpu_count"}, "storage"
    if kind == "machine":
        item = next((d for d in devices if d.get("machine_type") == details.get("machine_type")
                     and d.get("data_center_id") == details.get("data_center_id")), None)
        return item, {"vcpu_cost": "vcpus", "ram_cost": "ram", "gpu_cost": "gpu_count"}, "boot_disk_size"
    return None, {}, ""


def unpriced(provider_id: str, details: dict, catalog: dict[str, list[dict]], running: bool) -> list[str]:
    """The cost fields this VM's price needs and the catalog leaves out (VALDI documents
    none of them): its cost is then unknown, not $0."""
    devices = catalog.get(provider_id) or []
    kind = style(devices)
    if kind in ("flavor", "shape"):
        key, field = ("flavor_id", "flavor_id") if kind == "flavor" else ("shape_code", "config")
        item = next((d for d in devices if d.get(key) == details.get(field)), None)
        wanted = ["running_cost" if running else "stopped_cost"]
    else:
        item, rates, _ = _priced_item(kind, devices, details)
        wanted = ["storage_cost", *(rates if running else ())]
    if item is None:
        return []
    return [f for f in wanted if _price(item.get(f)) is None]


def _price(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _num(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def hourly(provider_id: str, details: dict, catalog: dict[str, list[dict]], running: bool) -> float | None:
    """USD per hour of a VM of this shape, running or stopped; None when the catalog does
    not price it (an unknown flavor, or a cost field it leaves out: never counted as $0)."""
    if unpriced(provider_id, details, catalog, running):
        return None
    devices = catalog.get(provider_id) or []
    kind = style(devices)
    if kind in ("flavor", "shape"):
        key, field = ("flavor_id", "flavor_id") if kind == "flavor" else ("shape_code", "config")
        item = next((d for d in devices if d.get(key) == details.get(field)), None)
        if item is None:
            return None
        return _num(item.get("running_cost" if running else "stopped_cost"))
    item, rates, disk = _priced_item(kind, devices, details)
    if item is None:
        return None
    storage = _num(item.get("storage_cost")) * _num(details.get(disk))  # a stopped VM still pays its disk
    if not running:
        return storage
    return storage + sum(_num(item.get(rate)) * _num(details.get(field)) for rate, field in rates.items())


# -- GPUs ------------------------------------------------------------------------------------
def gpus(provider_id: str, details: dict, catalog: dict[str, list[dict]]) -> tuple[tuple[str, ...], int] | None:
    """The GPU names a VM of this shape has (gpu_code and gpu_type, as the catalogue gives
    them) and how many: a flavor's or shape's own count, a hostnode's or machine type's
    `gpu_count` detail. None: the catalogue does not know the shape."""
    devices = catalog.get(provider_id) or []
    kind = style(devices)
    if kind in ("flavor", "shape"):
        key, field = ("flavor_id", "flavor_id") if kind == "flavor" else ("shape_code", "config")
        item = next((d for d in devices if d.get(key) == details.get(field)), None)
        count = item.get("gpu_count") if item else None
    else:
        item, _rates, _disk = _priced_item(kind, devices, details)
        count = details.get("gpu_count")
    if item is None:
        return None
    names = tuple(str(item[k]) for k in ("gpu_code", "gpu_type") if item.get(k))
    return names, count if isinstance(count, int) and not isinstance(count, bool) else 0
