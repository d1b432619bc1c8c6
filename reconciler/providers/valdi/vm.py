"""valdi.vm: a GPU virtual machine of one of VALDI's four provider shapes, kept running
or stopped as declared.

    check     details against GET /v1/devices/available before any write: the field
              and the allowed values on a mismatch
    observe   one GET /v1/vm; a recorded VM it leaves out, one GET /v1/vm/{id} (a 404 is gone);
              a journaled create is found by name (and provider)
    create    provision, wait for provisioning -> running (progress, timeout), stop it
              if `power: stopped`
    update    power only (start / stop); VALDI cannot resize or rename a VM, so any
              other change is a replacement, named in the plan
    delete    destroy, in any state, then wait until the VM is gone (prevent_destroy is the engine's)
    states    read by meaning (VM_STATES, case-insensitive); a word not listed there is in
              transition: waited on, then reported, never a failure or a replacement
    cost      running and stopped USD/hour from the catalog
"""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from reconciler.config.model import Resource
from reconciler.errors import ApiError, CreatedIncomplete, Problem
from reconciler.plan.diffing import left_diff
from reconciler.plan.model import FieldChange
from reconciler.providers.contract import (
    DeletionPolicy,
    Diff,
    Kind,
    KindContext,
    Live,
    Wanted,
)
from reconciler.providers.shared import newest_unclaimed, problem, wait_for
from reconciler.providers.states import Phase, Status, classify
from reconciler.providers.valdi import catalog
from reconciler.providers.valdi.client import ValdiClient

# details fields a VM listing echoes under another name
ECHOED_AS = {"boot_disk_size": "storage", "gpu_model": "gpu_model"}
# the words seed 002 and the emulator use; any other word is in transition (unrecognised)
VM_STATES = {"running": Phase.RUNNING, "stopped": Phase.STOPPED, "stopping": Phase.IN_TRANSITION,
             "provisioning": Phase.IN_TRANSITION, "starting": Phase.IN_TRANSITION,
             "error": Phase.FAILED, "failed": Phase.FAILED, "destroyed": Phase.GONE, "deleted": Phase.GONE}


def vm_status(vm: dict) -> Status:
    return classify(vm.get("status"), VM_STATES)


class VmKind(Kind[ValdiClient]):
    name = "valdi.vm"
    schema = "valdi.vm.schema.json"
    sensitive = {"password"}  # details.password
    outputs = {"id", "ip", "port_forwards", "status", "name"}
    deletion_policies = ("delete",)
    natural_key_conflicts = True  # name + provider: VALDI allows repeats, we never make one
    deletion_effects = {"delete": DeletionPolicy("delete", "the VM is destroyed in VALDI (its disk too)")}

    # -- reading ------------------------------------------------------------------------------
    def observe(self, ctx: KindContext[ValdiClient], wanted: list[Wanted]) -> dict[str, Live | None]:
        api: ValdiClient = ctx.api
        vms = api.vms()
        by_id = {v["server"]: v for v in vms}
        claimed = {w.id for w in wanted if w.id}
        # a recorded VM the listing leaves out (VALDI documents only `running` in it) is read by
        # its id: only a 404 there says it is gone, and then the plan may make it again
        unlisted = [w.id for w in wanted if w.id and w.id not in by_id]
        if unlisted:
            with ThreadPoolExecutor(max_workers=8) as pool:
                by_id.update((i, v) for i, v in zip(unlisted, pool.map(api.vm, unlisted))
                             if v is not None and vm_status(v).phase is not Phase.GONE)
        out: dict[str, Live | None] = {}
        for w in wanted:
            spec = w.spec or {}
            vm = by_id.get(w.id) if w.id else None
            if vm is None and (w.lookup or w.probe) and spec:  # a crash's provision, or a name taken
                key = (spec.get("name"), spec.get("provider_id"))
                vm = newest_unclaimed(vms, lambda v: (v.get("user_provided_name"), v.get("provider_id")) == key,
                                      lambda v: v["server"], lambda v: v.get("created_at") or "", claimed)
            out[w.address] = None if vm is None else make_live(vm, w.last_applied or spec)
        return out

    def discover(self, ctx: KindContext[ValdiClient]) -> list[Live]:
        """Each VM with the details its listing shows (no password: the API never returns
        one); a fixed-flavour VM's flavor_id found in the catalogue when not listed."""
        api: ValdiClient = ctx.api
        devices = api.devices()
        out = []
        for vm in api.vms():
            status = vm_status(vm)
            if not vm.get("user_provided_name") or status.phase not in (Phase.RUNNING, Phase.STOPPED):
                continue  # on its way, failed or gone: nothing to take over yet
            style = catalog.style(devices.get(str(vm.get("provider_id")), []))
            details = {f: vm[ECHOED_AS.get(f, f)] for f in DISCOVERED_DETAILS.get(style or "", ())
                       if vm.get(ECHOED_AS.get(f, f)) is not None}
            if style == "flavor":
                flavor = vm.get("flavor_id") or _flavor_of(vm, devices.get(vm["provider_id"], []))
                details = {"flavor_id": flavor, **details} if flavor else details
                details["ipv4"] = vm["ipv4"] if isinstance(vm.get("ipv4"), bool) else "." in str(vm.get("ip") or "")
            spec = {"name": vm["user_provided_name"], "provider_id": vm.get("provider_id"), "details": details,
                    "power": "stopped" if status.phase is Phase.STOPPED else "running"}
            out.append(Live(vm["server"], spec))
        return out

    def check(self, ctx: KindContext[ValdiClient], resources: list[Resource]) -> list[Problem]:
        """Every VM's details against the catalog, before any provisioning call."""
        api: ValdiClient = ctx.api
        devices = api.devices()
        existing = {(v.get("user_provided_name"), v.get("provider_id")) for v in api.vms()}
        problems = []
        for r in resources:
            details = r.spec.get("details")
            provider_id = r.spec.get("provider_id")
            if not isinstance(details, dict) or not isinstance(provider_id, str):
                continue
            images = partial(api.shape_images, provider_id)  # read only for shape VMs
            for issue in catalog.check(provider_id, details, devices, images):
                if issue.capacity and (r.spec.get("name"), provider_id) in existing:
                    continue  # it already holds its share of the capacity
                field = issue.field
                problems.append(problem(r, f"details.{field}" if field != "provider_id" else field, issue.message))
        return problems

    def hourly_cost(self, ctx: KindContext[ValdiClient], attrs: dict) -> float | None:
        details = attrs.get("details")
        if not isinstance(details, dict) or not isinstance(attrs.get("provider_id"), str):
            return None
        return catalog.hourly(attrs["provider_id"], details, ctx.api.devices(),
                              running=attrs.get("power", "running") != "stopped")

    def cost_unknown(self, ctx: KindContext[ValdiClient], attrs: dict) -> str | None:
        """Why this VM's hourly cost is unknown (cost fields the catalog leaves out), or None."""
        details = attrs.get("details")
        if not isinstance(details, dict) or not isinstance(attrs.get("provider_id"), str):
            return None
        missing = catalog.unpriced(attrs["provider_id"], details, ctx.api.devices(),
                                   running=attrs.get("power", "running") != "stopped")
        return (f"hourly cost unknown: VALDI's catalog gives no {', '.join(missing)} for this "
                "shape") if missing else None

    def gpus(self, ctx: KindContext[ValdiClient], attrs: dict) -> tuple[tuple[str, ...], int] | None:
        details = attrs.get("details")
        if not isinstance(details, dict) or not isinstance(attrs.get("provider_id"), str):
            return None
        return catalog.gpus(attrs["provider_id"], details, ctx.api.devices())

    # -- comparing ----------------------------------------------------------------------------
    def diff(self, spec: dict, live: Live, last_applied: dict | None) -> Diff:
        want = {"name": spec.get("name"), "provider_id": spec.get("provider_id"),
                "details": spec.get("details") or {}, "power": spec.get("power", "running")}
        # a detail dropped from the manifest is a change too (VALDI applies details only at provisioning)
        changes = left_diff(want, live.attrs, last_applied, replace_on=("name", "provider_id", "details"),
                            opaque=("details.sec_group_rules",), sensitive=self.sensitive)
        notes = []
        status = classify(live.attrs.get("status"), VM_STATES)
        if status.phase is Phase.FAILED:  # a word VALDI uses for a failure, never an unknown one
            changes.append(FieldChange("status", status.word, "running", forces_replacement=True))
            notes.append(f"the live VM is {status.word!r}: it is destroyed and provisioned again")
        elif not status.known:
            notes.append(f"the live VM is {status}: waited on, never replaced for it")
        replaced = any(c.forces_replacement for c in changes)
        for c in changes:
            if c.path == "power" and not replaced:  # a replace destroys the VM: no stop keeps its data
                notes.append("the VM will be started" if c.new == "running" else
                             "the VM will be stopped (local data kept; a stopped VM still costs its stopped rate)")
        return Diff(changes, notes)

    # -- writing ------------------------------------------------------------------------------
    def create(self, ctx: KindContext[ValdiClient], spec: dict) -> Live:
        api: ValdiClient = ctx.api
        before = {v["server"] for v in api.vms()}
        server = api.provision(spec["provider_id"], spec["name"], dict(spec.get("details") or {}))
        if server is None:  # the answer named no id: the VM is the new one with this name
            key = (spec["name"], spec["provider_id"])
            made = newest_unclaimed(api.vms(), lambda v: (v.get("user_provided_name"), v.get("provider_id")) == key,
                                    lambda v: v["server"], lambda v: v.get("created_at") or "", set(before))
            if made is None:
                raise ApiError(f"provisioned VM {spec['name']} but VALDI's answer had no id and GET /v1/vm shows "
                               "no new VM of that name; the next apply looks for it again", api="valdi",
                               endpoint="POST /v1/vm/provision")
            server = made["server"]
        try:
            vm = self._wait_running(ctx, server, spec["name"])
            if spec.get("power") == "stopped":
                api.vm_action("stop", server)
                vm = api.vm(server) or vm
        except ApiError as e:  # it exists (and bills): into the state, so plan and destroy see it
            made = api.vm(server)
            if made is None:
                raise
            raise CreatedIncomplete(make_live(made, spec), e) from None
        return make_live(vm, spec)

    def _wait_running(self, ctx: KindContext[ValdiClient], server: str, name: str) -> dict:
        api: ValdiClient = ctx.api
        seen: dict[str, Any] = {}

        def check() -> tuple[bool, str]:
            vm = api.vm(server)
            if vm is None:
                raise ApiError(f"VM {name} ({server}) disappeared while starting", api="valdi")
            seen["vm"] = vm
            status = vm_status(vm)
            if status.phase in (Phase.FAILED, Phase.STOPPED, Phase.GONE):  # waiting will not help
                raise ApiError(f"VM {name} ({server}) is {status.word!r}, not running (VALDI ended provisioning "
                               "there); destroy it or run apply again to replace it", api="valdi",
                               endpoint=f"GET /v1/vm/{server}")
            return status.phase is Phase.RUNNING, str(status)  # an unrecognised word: wait on

        timeout = float(ctx.options.get("vm_timeout") or api.vm_timeout)
        wait_for(check, f"VM {name}", timeout, ctx.progress, api="valdi")
        return seen["vm"]

    def update(self, ctx: KindContext[ValdiClient], live: Live, spec: dict, diff: Diff) -> Live:
        api: ValdiClient = ctx.api
        power = spec.get("power", "running")
        if any(c.path == "power" for c in diff.changes):
            if power == "stopped":
                api.vm_action("stop", live.id)
                vm = api.vm(live.id)
            else:
                api.vm_action("start", live.id)
                vm = self._wait_running(ctx, live.id, spec["name"])
            if vm is None:
                raise ApiError(f"VM {spec['name']} ({live.id}) is gone", api="valdi")
            return make_live(vm, spec)
        return live

    def delete(self, ctx: KindContext[ValdiClient], live: Live, policy: str, last_applied: dict | None) -> None:
        """Destroy in any state, then wait until the listing no longer holds the VM: a
        destroy answered 'success' is not yet a VM that stopped billing."""
        api: ValdiClient = ctx.api
        api.vm_action("destroy", live.id)

        def gone() -> tuple[bool, str]:
            vm = api.vm(live.id)
            status = vm_status(vm) if vm is not None else None
            return status is None or status.phase is Phase.GONE, f"{status} (destroy asked)"

        name = live.attrs.get("name") or live.id
        wait_for(gone, f"VM {name}", float(ctx.options.get("vm_timeout") or api.vm_timeout), ctx.progress,
                 api="valdi")


# the details fields a listing shows, per provider style (the rest were given at provisioning only)
DISCOVERED_DETAILS = {"flavor": ("ssh_key_id",),
                      "hostnode": ("hostnode", "gpu_model", "operating_system", "gpu_count", "vcpus", "ram", "storage",
                                   "ssh_key_id"),
                      "shape": ("config", "image_id", "ssh_key_id"),
                      "machine": ("data_center_id", "machine_type", "ssh_key_id", "boot_disk_size", "vcpus", "ram",
                                  "gpu_count")}


def _flavor_of(vm: dict, devices: list[dict]) -> str | None:
    """The one flavour with the VM's shape, when the listing does not name it."""
    found = [d.get("flavor_id") for d in devices if (d.get("gpu_count"), d.get("cpu_core_count"), d.get("main_ram"),
             d.get("storage")) == (vm.get("gpu_count"), vm.get("vcpus"), vm.get("ram"), vm.get("storage"))]
    return found[0] if len(found) == 1 else None


def make_live(vm: dict, prior: dict | None) -> Live:
    """The VM in manifest shape. `details` holds what the listing echoes; fields it does
    not (password, ports as given, security rules, extra storage) are as we applied them."""
    prior = prior or {}
    applied = dict(prior.get("details") or {})
    details: dict[str, Any] = {}
    for field, value in applied.items():
        echoed = ECHOED_AS.get(field, field)
        if field == "storage" and "additional_storage" in applied:
            details[field] = value  # the listing shows shape storage + additional
        elif echoed in vm and vm[echoed] is not None and field not in ("password",):
            details[field] = vm[echoed]
        else:
            details[field] = value
    status = vm.get("status")
    word = vm_status(vm).word
    attrs = {"name": vm.get("user_provided_name"), "provider_id": vm.get("provider_id"), "details": details,
             "power": "stopped" if word in ("stopped", "stopping") else "running", "status": status}
    try:
        forwards = json.loads(vm.get("port_forwards") or "{}")
    except (TypeError, ValueError):
        forwards = {}
    outputs = {"id": vm["server"], "ip": vm.get("ip"), "port_forwards": forwards, "status": status,
               "name": vm.get("user_provided_name")}
    return Live(vm["server"], attrs, outputs)
