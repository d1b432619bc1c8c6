"""Saved plans: what a reviewer approved is exactly what runs.

A plan file is one signed header line, `reconciler-plan 2 key=SOURCE hmac-sha256=HEX`,
then JSON: the manifest paths (and the folder they were given from), the digest of
what the manifests say (per file, so a refusal names the file; a comment or a reflow
changes nothing), the state lineage and serial, a fingerprint
of every live object read, the options, the input pins, and the actions. The signature
(reconciler.plan.signing: a key never in the file) is checked over the raw bytes before
anything else is read, so a forged or edited file is refused whole. It holds no secret:
sensitive values are masked; `apply PLANFILE` re-reads secrets from the manifests and
the environment, re-plans, and refuses unless the fresh plan has the same actions and
nothing it fingerprinted moved. Written 0600 and atomically (config.privatefile).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from dataclasses import asdict
from typing import Any

from reconciler.config.model import UNKNOWN
from reconciler.config.privatefile import write_private
from reconciler.errors import PlanError
from reconciler.plan.model import (
    Action,
    ActionType,
    Drift,
    FieldChange,
    ItemChange,
    Plan,
    PolicyResult,
    TimeNote,
)
from reconciler.plan import signing

FORMAT = "reconciler-plan"
VERSION = 2
MAX_BYTES = 256 * 1024 * 1024  # far above any real plan; a bigger "plan" is not read
_HEADER = re.compile(rb"reconciler-plan (\d+) key=([A-Za-z_]+) hmac-sha256=([0-9a-f]{64})")


def fingerprint(attrs: dict) -> str:
    return hashlib.sha256(json.dumps(attrs, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _safe(value: Any, sensitive: bool) -> Any:
    if value is UNKNOWN:
        return {"$unknown": True}
    if sensitive and value is not None:
        return {"$sensitive": True}
    if isinstance(value, dict):
        return {k: _safe(v, False) for k, v in value.items()}
    if isinstance(value, list):
        return [_safe(v, False) for v in value]
    return value


def _unsafe(value: Any) -> Any:
    if isinstance(value, dict):
        if value == {"$unknown": True}:
            return UNKNOWN
        return {k: _unsafe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unsafe(v) for v in value]
    return value


def _change_dict(c: FieldChange) -> dict:
    return {"path": c.path, "old": _safe(c.old, c.sensitive), "new": _safe(c.new, c.sensitive),
            "forces_replacement": c.forces_replacement, "sensitive": c.sensitive,
            "items": [asdict(i) for i in c.items]}


def _change_from(c: dict) -> FieldChange:
    return FieldChange(c["path"], _unsafe(c["old"]), _unsafe(c["new"]), c["forces_replacement"],
                       c["sensitive"], tuple(ItemChange(**i) for i in c.get("items", ())))


def _action_dict(a: Action) -> dict:
    d = asdict(a)
    d["type"] = a.type.name
    d["changes"] = [_change_dict(c) for c in a.changes]
    return d


def _action_from(d: dict) -> Action:
    changes = [_change_from(c) for c in d.get("changes", [])]
    return Action(address=d["address"], kind=d["kind"], type=ActionType[d["type"]], reasons=d["reasons"],
                  changes=changes, remote_id=d.get("remote_id"), depends_on=d.get("depends_on", []),
                  warnings=d.get("warnings", []), cost_before=d.get("cost_before"),
                  cost_after=d.get("cost_after"), adopt=bool(d.get("adopt")), policy=d.get("policy"),
                  effect=d.get("effect"), remote_name=d.get("remote_name"), moved_from=d.get("moved_from"),
                  imported=bool(d.get("imported")))


def save(plan: Plan, path, *, manifest_paths: list[str], options: dict,
         inputs: dict | None = None, overrides: list[dict] | None = None, key: signing.Key | None = None,
         manifest_files: dict[str, str] | None = None, manifest_folder: str | None = None) -> None:
    """`inputs`: {"salt": nonce, "pins": {field: keyed hash}, "secrets_left_out": n}
    (reconciler.engine.pins). `overrides`: [{policies, reason, who, at}] given with the
    plan: apply honours them. `manifest_files`: each manifest's digest, to name the file
    that moved; `manifest_folder`: the absolute folder the paths were given from, so an
    apply started elsewhere on this machine finds the manifests."""
    body = {"policy_results": [asdict(r) for r in plan.policy_results],
            "time_notes": [asdict(n) for n in plan.time_notes], "overrides": overrides or [],
            "inputs": inputs or {}, "format": FORMAT, "format_version": VERSION, "manifest_paths": manifest_paths,
            "manifest_files": manifest_files or {}, "manifest_folder": manifest_folder,
            "manifest_digest": plan.manifest_digest, "state_lineage": plan.state_lineage,
            "state_serial": plan.state_serial, "fingerprints": plan.fingerprints, "options": options,
            "destroy": plan.destroy, "refresh_only": plan.refresh_only, "warnings": plan.warnings,
            "actions": [_action_dict(a) for a in plan.actions],
            "drift": [{**asdict(d), "changes": [_change_dict(c) for c in d.changes]} for d in plan.drift],
            "partial": plan.partial, "unpriced": plan.unpriced, "moves": plan.moves,
            "output_changes": [{"name": c.path, "old": _safe(c.old, c.sensitive), "new": _safe(c.new, c.sensitive),
                                "sensitive": c.sensitive} for c in plan.output_changes]}
    _write(path, body, key or signing.key())


def _write(path, body: dict, key: signing.Key) -> None:
    """The body under its signed header line, 0600 and atomically."""
    text = json.dumps(body, indent=1, sort_keys=True) + "\n"
    header = f"{FORMAT} {VERSION} key={key.source} hmac-sha256={key.sign(text.encode())}\n"
    try:
        write_private(path, header + text)
    except OSError as e:
        raise PlanError(f"{path}: cannot write the plan file ({e.strerror or e.__class__.__name__})") from None


def _verified(path, key: signing.Key | None) -> bytes:
    """The JSON body, once the signature over its raw bytes is the one `key` makes."""
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise PlanError(f"{path}: not a regular file, so not a plan file")
        if info.st_size > MAX_BYTES:
            raise PlanError(f"{path}: {info.st_size:,} bytes is not a plan file (the limit is {MAX_BYTES:,})")
        with open(path, "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as e:
        raise PlanError(f"{path}: not a readable plan file ({e.strerror or e.__class__.__name__})") from None
    first, _, rest = data.partition(b"\n")
    m = _HEADER.fullmatch(first)
    if m is None:
        if first.lstrip().startswith(b"{"):
            raise PlanError(f"{path}: the plan file is not signed (made by an older reconciler, or written by "
                            "hand); apply runs only signed plans; make a new plan")
        raise PlanError(f"{path}: not a reconciler plan file")
    if int(m[1]) != VERSION:
        raise PlanError(f"{path}: plan format version {int(m[1])} is not supported "
                        f"(this reconciler reads version {VERSION}); make a new plan")
    key = key or signing.key()
    if not key.verify(rest, m[3].decode()):
        made_with = m[2].decode()
        if made_with == key.source == signing.MACHINE:
            hint = (f"it was changed after it was made, or made on another machine: set {signing.PLAN_ENV} "
                    "where plans are made and applied")
        elif made_with == key.source:
            hint = f"it was changed after it was made, or {made_with} has another value now"
        elif made_with == signing.MACHINE:
            hint = f"it was signed with the key of the machine that made it; set {signing.PLAN_ENV} there too"
        else:
            hint = f"it was signed with {made_with[:40]}: set it to the value the plan was made with"
        raise PlanError(f"{path}: the plan file's signature does not match ({hint}); "
                        "nothing was applied; make a new plan")
    return rest


def load(path, key: signing.Key | None = None) -> tuple[Plan, dict]:
    rest = _verified(path, key)
    try:
        body = json.loads(rest)
    except ValueError as e:
        raise PlanError(f"{path}: not a readable plan file ({e.__class__.__name__})") from None
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise PlanError(f"{path}: not a reconciler plan file")
    if body.get("format_version") != VERSION:
        raise PlanError(f"{path}: plan format version {body.get('format_version')} is not supported "
                        f"(this reconciler reads version {VERSION}); make a new plan")
    _check(body, path)
    plan = Plan(actions=[_action_from(a) for a in body["actions"]], warnings=body.get("warnings", []),
                manifest_digest=body["manifest_digest"], state_lineage=body["state_lineage"],
                state_serial=body["state_serial"], fingerprints=body.get("fingerprints", {}),
                destroy=body.get("destroy", False), refresh_only=body.get("refresh_only", False),
                drift=[Drift(**{**d, "changes": [_change_from(c) for c in d["changes"]]})
                       for d in body.get("drift", [])],
                partial=body.get("partial"), unpriced=body.get("unpriced", []),
                moves=[list(m) for m in body.get("moves", [])],
                output_changes=[FieldChange(c["name"], _unsafe(c["old"]), _unsafe(c["new"]), False, c["sensitive"])
                                for c in body.get("output_changes", [])],
                policy_results=[PolicyResult(**r) for r in body.get("policy_results", [])],
                time_notes=[TimeNote(**n) for n in body.get("time_notes", [])])
    return plan, {"manifest_paths": body["manifest_paths"], "options": body.get("options", {}),
                  "inputs": body.get("inputs") or {}, "overrides": body.get("overrides") or [],
                  "manifest_files": body.get("manifest_files") or {}, "manifest_folder": body.get("manifest_folder")}


def record_override(path, override: dict, key: signing.Key | None = None) -> None:
    """`apply PLANFILE --override-policy NAME --reason TEXT`: the plan file keeps who
    overrode which policy and why, beside what it was reviewed as (signed again: the
    applier holds the key the file was verified with)."""
    key = key or signing.key()
    body = json.loads(_verified(path, key))
    body["overrides"] = [*(body.get("overrides") or []), override]
    _write(path, body, key)


_TOP = {"manifest_paths": list, "manifest_digest": str, "state_lineage": str, "state_serial": int,
        "actions": list}
_OPTIONAL = {"fingerprints": dict, "options": dict, "warnings": list, "destroy": bool, "refresh_only": bool,
             "inputs": dict, "output_changes": list, "policy_results": list, "time_notes": list, "overrides": list,
             "moves": list, "manifest_files": dict}
_POLICY_RESULT = {"name": str, "enforcement": str, "passed": bool, "message": str}
_ACTION = {"address": str, "kind": str, "type": str, "reasons": list}
_CHANGE = {"path": str, "forces_replacement": bool, "sensitive": bool}


def _check(body: dict, path) -> None:
    """A hand-edited or damaged plan file: one line naming the file and the field."""
    def fail(field: str, message: str) -> None:
        raise PlanError(f"{path}: {field}: {message}; make a new plan")

    def need(d: dict, where: str, fields: dict, optional: bool = False) -> None:
        for name, typ in fields.items():
            if name not in d:
                if not optional:
                    fail(f"{where}{name}", "missing")
                continue
            if not isinstance(d[name], typ) or (typ is int and isinstance(d[name], bool)):
                fail(f"{where}{name}", f"expected {typ.__name__}, got {type(d[name]).__name__}")

    need(body, "", _TOP)
    need(body, "", _OPTIONAL, optional=True)
    for i, a in enumerate(body["actions"]):
        if not isinstance(a, dict):
            fail(f"actions[{i}]", "expected a mapping")
        need(a, f"actions[{i}].", _ACTION)
        if a["type"] not in ActionType.__members__:
            fail(f"actions[{i}].type", f"{a['type']!r} is not an action type "
                 f"({', '.join(ActionType.__members__)})")
        changes = a.get("changes", [])
        if not isinstance(changes, list):
            fail(f"actions[{i}].changes", "expected a list")
        for j, c in enumerate(changes):
            if not isinstance(c, dict):
                fail(f"actions[{i}].changes[{j}]", "expected a mapping")
            need(c, f"actions[{i}].changes[{j}].", _CHANGE)
            for name in ("old", "new"):
                if name not in c:
                    fail(f"actions[{i}].changes[{j}].{name}", "missing")
    for i, m in enumerate(body.get("moves", [])):
        if not (isinstance(m, list) and len(m) == 2 and all(isinstance(x, str) for x in m)):
            fail(f"moves[{i}]", "expected [from, to]")
    for i, r in enumerate(body.get("policy_results", [])):
        if not isinstance(r, dict) or set(r) - set(PolicyResult.__dataclass_fields__):
            fail(f"policy_results[{i}]", "expected a policy result")
        need(r, f"policy_results[{i}].", _POLICY_RESULT)
    for i, n in enumerate(body.get("time_notes", [])):
        if not isinstance(n, dict) or set(n) - set(TimeNote.__dataclass_fields__) \
                or not all(isinstance(n.get(k), str) for k in ("address", "what", "text")):
            fail(f"time_notes[{i}]", "expected an expiry or schedule note")
    for i, o in enumerate(body.get("overrides", [])):
        if not isinstance(o, dict) or not isinstance(o.get("policies"), list) or not isinstance(o.get("reason"), str):
            fail(f"overrides[{i}]", "expected {policies, reason, who, at}")
    for i, c in enumerate(body.get("output_changes", [])):
        if not isinstance(c, dict):
            fail(f"output_changes[{i}]", "expected a mapping")
        need(c, f"output_changes[{i}].", {"name": str, "sensitive": bool})
        for name in ("old", "new"):
            if name not in c:
                fail(f"output_changes[{i}].{name}", "missing")


def already_applied(saved: Plan, fresh: Plan, state_serial: int) -> str | None:
    """The one reason worth giving when a plan is applied twice: it changed something, the
    state moved on since, and nothing it would do is left to do."""
    if saved.has_changes and not fresh.has_changes and state_serial > saved.state_serial:
        return (f"this plan was already applied (the state is at serial {state_serial} now, "
                f"it was made at serial {saved.state_serial}); nothing it would change is left to do")
    return None


def moved_files(saved: dict[str, str], fresh: dict[str, str]) -> list[str]:
    """The manifest files whose content (not layout or comments) differs."""
    out = []
    for name in sorted(set(saved) | set(fresh)):
        if name not in fresh:
            out.append(f"{name} is gone")
        elif name not in saved:
            out.append(f"{name} is new")
        elif saved[name] != fresh[name]:
            out.append(f"{name} changed")
    return out


def stale_reasons(saved: Plan, *, manifest_digest: str, state_lineage: str, state_serial: int,
                  fingerprints: dict[str, str | None], saved_files: dict[str, str] | None = None,
                  fresh_files: dict[str, str] | None = None) -> list[str]:
    reasons = []
    if saved.manifest_digest != manifest_digest:
        files = moved_files(saved_files, fresh_files or {}) if saved_files else []
        reasons.append("the manifests changed since the plan was made"
                       + (f" ({', '.join(files)})" if files else ""))
    if saved.state_serial == 0 and state_serial == 0:
        pass  # no state written yet, then or now: a new state's lineage is made on first write
    elif saved.state_lineage != state_lineage:
        reasons.append("the state is a different one (its lineage changed)")
    elif saved.state_serial != state_serial:
        reasons.append(f"the state moved from serial {saved.state_serial} to {state_serial}")
    for address in sorted(set(saved.fingerprints) | set(fingerprints)):
        before, after = saved.fingerprints.get(address), fingerprints.get(address)
        if before == after:
            continue
        if before is None:
            reasons.append(f"{address} appeared in the live service since the plan was made")
        elif after is None:
            reasons.append(f"{address} disappeared from the live service since the plan was made")
        else:
            reasons.append(f"{address} changed in the live service since the plan was made")
    return reasons


def _key(a: Action) -> tuple:
    return (a.type.name, a.adopt, a.imported, a.policy, tuple((c.path, c.forces_replacement) for c in a.changes))


def same_actions(saved: Plan, fresh: Plan) -> list[str]:
    old = {a.address: _key(a) for a in saved.actions if a.is_change}
    new = {a.address: _key(a) for a in fresh.actions if a.is_change}
    diffs = []
    for address in sorted(set(old) | set(new)):
        if old.get(address) != new.get(address):
            diffs.append(f"{address}: the saved plan and a fresh plan disagree")
    if saved.moves != fresh.moves:
        diffs.append("the moves (moved:) of the saved plan and a fresh plan disagree")
    return diffs
