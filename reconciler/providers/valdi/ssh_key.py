"""valdi.ssh_key: a public key uploaded to VALDI, or a key pair VALDI generates (the
private key is returned once; we write it to `private_key_file`, mode 0600).

VALDI has no endpoint to update or delete a key. A changed key is a new key (the old one
stays in the account); a key that leaves the manifest is forgotten, not deleted. The
plan says both, plainly.

    observe   one GET /sshkeys; a journaled create is found by name (and public key)
"""
from __future__ import annotations

import re
from pathlib import Path

from reconciler.config.localfiles import write_output
from reconciler.config.boundedread import Refused, read_bytes
from reconciler.config.model import Resource
from reconciler.config.validation import check_local_path
from reconciler.errors import ApiError, CreatedIncomplete, Problem
from reconciler.plan.diffing import left_diff
from reconciler.providers.contract import (
    DeletionPolicy,
    Diff,
    Kind,
    KindContext,
    Live,
    Wanted,
)
from reconciler.providers.shared import newest_unclaimed, problem
from reconciler.providers.valdi.client import ValdiClient

CANNOT_DELETE = ("VALDI has no API to delete SSH keys: the old key stays in your VALDI account "
                 "(remove it in the web console if it must go)")


def key_body(public_key: str | None) -> str | None:
    """`type base64` without the comment: what identifies a public key."""
    if not isinstance(public_key, str):
        return None
    parts = public_key.split()
    return " ".join(parts[:2]) if len(parts) >= 2 else public_key.strip()


PUBLIC_KEY = re.compile(r"^(ssh-rsa|ssh-ed25519|ssh-dss|ecdsa-sha2-nistp(256|384|521)|sk-\S+@openssh\.com) "
                        r"[A-Za-z0-9+/=]+(\s.*)?$")


def looks_public(text: str | None) -> bool:
    return bool(text) and bool(PUBLIC_KEY.fullmatch(str(text).strip()))


MAX_PUBLIC_KEY_BYTES = 64 * 1024  # an RSA-16384 public key is under 3 KB


def read_text(path: Path) -> str | None:
    """A key file's text, or None when it cannot be read or is far too big to be a key
    (validate reports why)."""
    try:  # a FIFO or a device is refused unread (config/boundedread)
        return read_bytes(path, MAX_PUBLIC_KEY_BYTES).decode("utf-8")
    except (Refused, OSError, UnicodeDecodeError):
        return None


class SshKeyKind(Kind[ValdiClient]):
    name = "valdi.ssh_key"
    schema = "valdi.ssh_key.schema.json"
    sensitive = {"private_key"}
    outputs = {"id", "name", "public_key", "private_key"}
    deletion_policies = ("forget",)  # the API cannot delete a key
    natural_key_conflicts = True  # the key name
    local_files = {"public_key_file": "read", "private_key_file": "write"}  # held to reconciler.config.localfiles' rules
    deletion_effects = {"forget": DeletionPolicy("forget", "VALDI has no API to delete SSH keys: the key stays in "
                                                         "your VALDI account; only reconciler's state entry is removed")}

    def observe(self, ctx: KindContext[ValdiClient], wanted: list[Wanted]) -> dict[str, Live | None]:
        api: ValdiClient = ctx.api
        keys = api.ssh_keys()
        by_id = {k["ssh_key_id"]: k for k in keys}
        claimed = {w.id for w in wanted if w.id}
        out: dict[str, Live | None] = {}
        for w in wanted:
            spec = w.spec or {}
            local = self._desired_key(spec, w)
            key = by_id.get(w.id) if w.id else None
            lost_private = False
            if key is None and (w.lookup or w.probe) and spec:  # a crash's create, or a name taken
                name = spec.get("name")
                key = newest_unclaimed(  # a probe: the name alone (VALDI allows repeats; we never make one)
                    keys, lambda k: k.get("name") == name and (w.probe or local in (None, key_body(k.get("public_key")))),
                    lambda k: k["ssh_key_id"], lambda k: k.get("created_at") or "", claimed)
                lost_private = key is not None and local is None and w.lookup  # generated: lost with the crash
            out[w.address] = None if key is None else self._live(key, local, lost_private)
        return out

    @staticmethod
    def _desired_key(spec: dict, w: Wanted) -> str | None:
        if isinstance(spec.get("public_key"), str):
            return key_body(spec["public_key"])
        path = spec.get("public_key_file")
        return key_body(read_text(w.resolve_path(path))) if isinstance(path, str) and path else None

    @staticmethod
    def _live(key: dict, local: str | None, lost_private: bool = False) -> Live:
        attrs = {"name": key.get("name"), "public_key": key_body(key.get("public_key"))}
        if lost_private:
            attrs["private_key_lost"] = True
        return Live(key["ssh_key_id"], attrs,
                    {"id": key["ssh_key_id"], "name": key.get("name"), "public_key": key.get("public_key")},
                    local={"public_key": local})

    def discover(self, ctx: KindContext[ValdiClient]) -> list[Live]:
        """A key's public half is no secret; VALDI never lists the private one."""
        return [Live(k["ssh_key_id"], {"name": k.get("name"), "public_key": k.get("public_key")})
                for k in ctx.api.ssh_keys() if k.get("name") and k.get("public_key")]

    def check_offline(self, resources: list[Resource]) -> list[Problem]:
        problems = []
        for r in resources:
            if "public_key_file" in r.spec:
                found = check_local_path(r, "spec.public_key_file", r.spec["public_key_file"])
                if found:
                    problems.append(found)
                elif isinstance(r.spec["public_key_file"], str):
                    path = Path(r.base_dir) / r.spec["public_key_file"]
                    size = path.stat().st_size
                    if size > MAX_PUBLIC_KEY_BYTES:
                        problems.append(problem(r, "public_key_file", f"'{r.spec['public_key_file']}' is {size} "
                                                f"bytes; a public key is under {MAX_PUBLIC_KEY_BYTES // 1024} KiB"))
                    else:
                        problems += self._not_public(r, read_text(path))
            if "public_key" in r.spec and "public_key_file" in r.spec:
                problems.append(problem(r, "public_key_file", "give public_key or public_key_file, not both"))
            if "private_key_file" in r.spec and ("public_key" in r.spec or "public_key_file" in r.spec):
                problems.append(problem(r, "private_key_file", "only for a key VALDI generates: leave out "
                                        "public_key and public_key_file, or drop private_key_file"))
        return problems

    @staticmethod
    def _not_public(r: Resource, text: str | None) -> list[Problem]:
        """A file that is no public key (often the private one) fails here, not at apply."""
        if looks_public(text):
            return []
        hint = " (it looks like a private key: name the .pub file)" if "PRIVATE KEY" in (text or "") else ""
        return [problem(r, "public_key_file", f"'{r.spec['public_key_file']}' does not hold an OpenSSH public "
                        f"key (ssh-ed25519 AAAA...){hint}")]

    def diff(self, spec: dict, live: Live, last_applied: dict | None) -> Diff:
        want = {"name": spec.get("name")}
        local = live.local.get("public_key")
        if local is not None:
            want["public_key"] = local
        changes = left_diff(want, {k: live.attrs.get(k) for k in ("name", "public_key")},
                            replace_on=("name", "public_key"))
        return Diff(changes)

    def plan_notes(self, spec: dict | None, live: Live | None, last_applied: dict | None) -> list[str]:
        if live is None:
            return []
        if spec is None:
            return []  # a removal: deletion_effects says what happens
        notes = []
        if live.attrs.get("private_key_lost"):
            notes.append("this generated key was made by an interrupted apply and its private key was lost: "
                         "run `reconciler apply --replace <address>` for a new key pair")
        if self.diff(spec, live, last_applied).changed:
            notes.append(f"a new key is uploaded; {CANNOT_DELETE}")
        return notes

    def create(self, ctx: KindContext[ValdiClient], spec: dict) -> Live:
        api: ValdiClient = ctx.api
        public_key = spec.get("public_key")
        if public_key is None and spec.get("public_key_file"):
            public_key = ctx.resolve_path(spec["public_key_file"]).read_text().strip()
        before = {k["ssh_key_id"] for k in api.ssh_keys()}
        answer = api.create_ssh_key(spec["name"], public_key)
        answer = answer if isinstance(answer, dict) else {}
        key_id = answer.get("ssh_key_id")
        if not key_id:  # the documents show no answer body: the key is the new one of this name
            body = key_body(public_key)
            made = newest_unclaimed(api.ssh_keys(), lambda k: k.get("name") == spec["name"] and
                                    body in (None, key_body(k.get("public_key"))),
                                    lambda k: k["ssh_key_id"], lambda k: k.get("created_at") or "", set(before))
            if made is None:
                raise ApiError(f"VALDI made SSH key {spec['name']} but its answer had no ssh_key_id and GET /sshkeys "
                               "lists no new key of that name", api="valdi", endpoint="POST /sshkeys/sshkey")
            key_id = made["ssh_key_id"]
        private = answer.get("private_key")
        outputs = {"id": key_id, "name": spec["name"], "public_key": public_key}
        secrets: dict[str, str] = {}
        if private:
            private = private.replace("\\n", "\n")  # the API may return escaped line breaks
            if not private.endswith("\n"):
                private += "\n"
            secrets = {"private_key": private}
            if spec.get("private_key_file"):
                write_output(ctx.base_dir, spec["private_key_file"], private)
            try:
                listed = next((k for k in api.ssh_keys() if k["ssh_key_id"] == key_id), None)
            except ApiError as e:  # the private key exists only here: the engine records it first
                raise CreatedIncomplete(Live(key_id, {"name": spec["name"], "public_key": None}, outputs,
                                             secrets=secrets), e) from None
            outputs["public_key"] = (listed or {}).get("public_key")
        return Live(key_id, {"name": spec["name"], "public_key": key_body(outputs["public_key"])}, outputs,
                    local={"public_key": key_body(public_key)}, secrets=secrets)

    def update(self, ctx: KindContext[ValdiClient], live: Live, spec: dict, diff: Diff) -> Live:
        raise ApiError("VALDI cannot change an SSH key in place", api="valdi")  # diff only replaces

    def delete(self, ctx: KindContext[ValdiClient], live: Live, policy: str, last_applied: dict | None) -> None:
        """Nothing to call: the key stays in the account (the plan said so)."""

