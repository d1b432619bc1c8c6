"""Named quirks: each answers one question the API documents leave open, the other way.

By default the emulator answers as the documents say, and where they are silent it
picks one shape (see each API module's docstring). A real service may have picked
another; each quirk switches the emulator to one such plausible alternative, so the
providers are tested against every shape, not one. Turn them on with
`reconciler emulator serve --quirks a,b` or `POST /_emulator/config {"quirks": [...]}`;
`GET /_emulator/quirks` lists them.
"""
from __future__ import annotations

QUIRKS: dict[str, str] = {
    # Valohai: datum properties and tags
    "valohai-metadata-list": "datum `metadata` is a list of {key, value} pairs, not an object",
    "valohai-metadata-absent": "datums carry neither `metadata` nor `tags`",
    # Valohai: reserved property keys and batch writes
    "valohai-tags-add": "`valohai.tags` adds to a datum's tags instead of replacing them",
    "valohai-alias-null-refused": "`valohai.alias: null` is refused with a 400",
    "valohai-alias-null-ignored": "`valohai.alias: null` is answered 200 but leaves the aliases where they are",
    "valohai-tags-objects": "datum `tags` are objects {name}, not strings",
    "valohai-metadata-per-datum": "metadata/apply and apply-all update the datums they can and list "
                                  "the others as errors, instead of all or nothing",
    # Valohai: adoption
    "valohai-adopt-bulk": "adopt also takes a `urls` list (seed 000 shows one `url`; the web UI adopts many "
                          "at once)",
    "valohai-adopt-409": "adopting a URL that is already a datum is answered 409 (not 400), "
                         "with the wording `Datum for <url> exists`",
    "valohai-adopt-store-scoped": "'already exists' is judged per store, so the datum may live in "
                                  "another project",
    # Valohai: listings
    "valohai-stores-bare-list": "GET /api/v0/stores/ answers a bare list, not a DRF page",
    # VALDI
    "valdi-provision-no-id": "POST /v1/vm/provision answers {\"message\": \"success\"} without the VM's id",
    "valdi-vm-status-case": "VM statuses are capitalised (Provisioning, Running, Stopped)",
    "valdi-vm-state-unrecognised": "a VM being provisioned or started is `pending` (a word the documents do "
                                   "not list), and a destroyed one stays listed as `terminating` for a while",
    "valdi-vm-listing-seed-fields": "VMs are listed with seed 002's fields only (no flavor_id, ipv4, config, "
                                    "image_id, hostnode ... echoed from the details)",
    "valdi-vm-listing-running-only": "GET /v1/vm lists running VMs only (seed 002 documents `running` alone); "
                                     "a stopped or provisioning VM is seen only through GET /v1/vm/{id}",
    "valdi-sshkey-no-id": "POST /sshkeys/sshkey answers without `ssh_key_id`",
    "valdi-contents-s3-style": "volume contents use S3's names: {Key, Size, ETag (quoted), LastModified}",
    "valdi-contents-no-etag": "volume contents are {path, type, size} with no etag",
    "valdi-contents-toplevel": "volume contents list one level: a folder's own contents only through "
                               "`subdirs=<folder>`",
    "valdi-contents-object": "volume contents are an object {path: {type, size, etag, last_modified}}, "
                             "not a list",
    "valdi-contents-plain": "volume contents are plain path strings (folders end in /)",
    "valdi-catalog-no-unit-costs": "the device catalog has no cost fields (vcpu_cost, cpu_cost, ram_cost, "
                                   "storage_cost, gpu_cost, running_cost, stopped_cost)",
    # Code Ocean
    "codeocean-no-archived": "data assets carry no `archived` field",
    "codeocean-no-external": "a data asset's `source_bucket` carries no `external` flag",
    "codeocean-metadata-merge": "PUT merges `custom_metadata` into the asset's (null removes a key) "
                                "instead of replacing it",
}


def parse(value) -> list[str]:
    """Quirk names from a list or a comma-separated string; ValueError names an unknown one."""
    names = [n.strip() for n in (value.split(",") if isinstance(value, str) else list(value or []))]
    names = [n for n in names if n]
    unknown = [n for n in names if n not in QUIRKS]
    if unknown:
        raise ValueError(f"unknown quirk {unknown[0]!r} (known: {', '.join(QUIRKS)})")
    return list(dict.fromkeys(names))
