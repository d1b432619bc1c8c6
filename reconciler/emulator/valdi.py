"""The VALDI API in the emulator, at the root of the emulator's URL with VALDI's own mixed
prefixes (/account, /sshkeys, /volume unversioned; /v1/devices, /v1/vm).

Auth: login and refresh hand out JWTs (valdi_auth.py); every other endpoint wants
`Authorization: Bearer <access token>`, else 401 {"detail"}. Errors are FastAPI-style
{"detail": "..."}: 400 names the field and the allowed values, 404 unknown id, 409
conflict (no capacity, a bucket name taken, stop/start while provisioning).

Choices where the API reference says [UNKNOWN]: provision answers {"message": "success",
"server": id}; GET /v1/vm/{id} is the bare VM; an uploaded SSH key answers
{"ssh_key_id", "private_key": null}; volume contents are a flat sorted list of
{path, type: file|folder, size, etag (md5), last_modified}; folder creation answers
{"message": "Folder created"}. Presigned links point at /gateway/valdi/<user>/<bucket>/<path>
on the emulator itself: no Bearer token there, an HMAC signature and expiry instead.
Catalog and provision rules: valdi_catalog.py; object semantics: valdi_model.py.
Each other plausible answer is a named quirk (quirks.py): no id from provision or key
upload, capitalised statuses, other contents shapes, a catalog without prices.

Admin: POST /_emulator/valdi/users {email, password, user_id?} seeds another account.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import datetime, timezone
from urllib.parse import quote

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from reconciler.emulator import valdi_auth as auth
from reconciler.emulator import valdi_catalog as cat
from reconciler.emulator import valdi_model as m
from reconciler.emulator.core import (
    SANDBOX,
    Emulator,
    HTTPError,
    json_response,
    read_json,
)

_BAD_JSON = {"detail": "malformed JSON body"}
LINK_TTL = 3600  # seconds a presigned upload/download link lives


def seed(emu: Emulator) -> None:
    """A fresh sandbox: the SANDBOX account (user 8), nothing else."""
    if emu.store.get(auth.USER, str(SANDBOX["valdi_user_id"])) is None:
        auth.add_user(emu.store, SANDBOX["valdi_email"], SANDBOX["valdi_password"],
                      user_id=SANDBOX["valdi_user_id"])


async def body_object(request: Request) -> dict:
    body = await read_json(request, _BAD_JSON)
    if not isinstance(body, dict):
        raise HTTPError(400, {"detail": "expected a JSON object"})
    return body


class ValdiAPI:
    """The VALDI routes (and its admin seeding), one method per route."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.store = emu.store
        self.remembered: dict = {}  # the signing key, read once from the store

    def key(self) -> bytes:
        return auth.signing_key(self.store, self.remembered)

    def authenticate(self, request: Request) -> dict:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise HTTPError(401, {"detail": "Not authenticated"}, {"WWW-Authenticate": "Bearer"})
        try:
            user_id = auth.verify(self.key(), token.strip(), auth.ACCESS, self.emu.config.valdi_access_ttl)
        except auth.TokenError as e:
            raise HTTPError(401, {"detail": str(e)}, {"WWW-Authenticate": "Bearer"}) from None
        user = self.store.get(auth.USER, str(user_id))
        if user is None:
            raise HTTPError(401, {"detail": "Could not validate credentials"}, {"WWW-Authenticate": "Bearer"})
        return user

    # -- account ----------------------------------------------------------------------
    async def login(self, request: Request):
        body = await body_object(request)
        email, password = body.get("email"), body.get("password")
        if not isinstance(email, str) or not isinstance(password, str) or not email or not password:
            raise HTTPError(400, {"detail": "email and password are required"})
        user = auth.user_by_email(self.store, email)
        if user is None or not auth.password_matches(user, password):
            raise HTTPError(401, {"detail": "Incorrect email or password"})
        k = self.key()
        return json_response({
            "access_token": auth.issue(k, user["user_id"], auth.ACCESS, self.emu.config.valdi_access_ttl),
            "token_type": "Bearer",
            "refresh_token": auth.issue(k, user["user_id"], auth.REFRESH, self.emu.config.valdi_refresh_ttl)})

    async def refresh(self, request: Request):
        body = await body_object(request)
        token = body.get("token")
        if not isinstance(token, str) or not token:
            raise HTTPError(400, {"detail": "token: the refresh token is required"})
        try:
            user_id = auth.verify(self.key(), token, auth.REFRESH, self.emu.config.valdi_refresh_ttl)
        except auth.TokenError as e:
            raise HTTPError(401, {"detail": str(e)}) from None
        if self.store.get(auth.USER, str(user_id)) is None:
            raise HTTPError(401, {"detail": "Could not validate credentials"})
        return json_response({"access_token": auth.issue(self.key(), user_id, auth.ACCESS,
                                                         self.emu.config.valdi_access_ttl),
                              "token_type": "Bearer"})

    async def account(self, request: Request):
        return json_response(auth.account(self.authenticate(request)))

    # -- devices -----------------------------------------------------------------------------
    async def devices(self, request: Request):
        self.authenticate(request)
        return json_response(cat.render_devices(lambda provider_id, item: m.free(self.store, provider_id, item),
                                                costs=not self.emu.quirk("valdi-catalog-no-unit-costs")))

    async def images(self, request: Request):
        self.authenticate(request)
        found = cat.shape(request.path_params["shape_id"]) \
            if request.path_params["provider_id"] == cat.PROVIDER_C else None
        if found is None:
            raise m.not_found("shape")
        return json_response({"shape_code": found["shape_code"], "available_images": found["_images"]})

    # -- SSH keys --------------------------------------------------------------------------------
    async def sshkeys(self, request: Request):
        user = self.authenticate(request)
        return json_response({"ssh_keys": [m.render_sshkey(k) for k in m.sshkeys_of(self.store, user)]})

    async def sshkey_create(self, request: Request):
        user = self.authenticate(request)
        body = await body_object(request)
        name, public_key = body.get("name"), body.get("public_key")
        if not isinstance(name, str) or not name.strip():
            raise HTTPError(400, {"detail": "name: is required"})
        if public_key is not None:
            if not isinstance(public_key, str):
                raise HTTPError(400, {"detail": "public_key: must be a string"})
            doc = m.add_sshkey(self.store, user, name, m.check_public_key(public_key))
            return self.key_made(doc, None)
        private_key, public_key = m.generate_keypair()  # the private half is shown once, never stored
        doc = m.add_sshkey(self.store, user, name, public_key)
        return self.key_made(doc, private_key)

    def key_made(self, doc: dict, private_key: str | None):
        if self.emu.quirk("valdi-sshkey-no-id"):
            return json_response({"message": "success", "private_key": private_key}, status=201)
        return json_response({"ssh_key_id": doc["ssh_key_id"], "private_key": private_key}, status=201)

    # -- VMs ---------------------------------------------------------------------------------------
    def vm_of(self, request: Request, user: dict) -> dict:
        vm = m.settle(self.store, m.owned(self.store, m.VM, request.path_params["id"], user, "VM"), self.emu.config)
        if vm is None:  # its termination ended just now
            raise m.not_found("VM")
        return vm

    async def vms(self, request: Request):
        user = self.authenticate(request)
        mine = [m.settle(self.store, vm, self.emu.config) for vm in self.store.all(m.VM) if vm["user_id"] == user["user_id"]]
        if self.emu.quirk("valdi-vm-listing-running-only"):  # the others only through GET /v1/vm/{id}
            mine = [vm for vm in mine if vm is not None and m.render_vm(vm)["status"] == "running"]
        return json_response({"virtual_machines": [self.shown_vm(vm) for vm in mine if vm is not None]})

    def shown_vm(self, vm: dict) -> dict:
        body = m.render_vm(vm)
        if self.emu.quirk("valdi-vm-state-unrecognised") and body["status"] in ("provisioning", "starting"):
            body["status"] = "pending"
        if self.emu.quirk("valdi-vm-listing-seed-fields"):  # seed 002's fields, none of the details echoed
            body = {k: v for k, v in body.items() if k in m.VM_FIELDS or k == "status"}
        if self.emu.quirk("valdi-vm-status-case"):
            body["status"] = str(body["status"]).capitalize()
        return body

    async def vm(self, request: Request):
        return json_response(self.shown_vm(self.vm_of(request, self.authenticate(request))))

    async def provision(self, request: Request):
        user = self.authenticate(request)
        body = await body_object(request)
        name = body.get("user_provided_name")
        if not isinstance(name, str) or not name.strip():
            raise HTTPError(400, {"detail": "user_provided_name: is required"})
        keys = {k["ssh_key_id"] for k in m.sshkeys_of(self.store, user)}
        fields = cat.vm_fields(body.get("provider_id"), body.get("details"), keys)
        created = m.add_vm(self.store, user, body["provider_id"], name, fields)
        if self.emu.quirk("valdi-provision-no-id"):
            return json_response({"message": "success"})
        return json_response({"message": "success", "server": created["server"]})

    async def stop(self, request: Request):
        m.stop_vm(self.store, self.vm_of(request, self.authenticate(request)), self.emu.config)
        return json_response({"message": "success"})

    async def start(self, request: Request):
        m.start_vm(self.store, self.vm_of(request, self.authenticate(request)), self.emu.config)
        return json_response({"message": "success"})

    async def destroy(self, request: Request):
        found = m.owned(self.store, m.VM, request.path_params["id"], self.authenticate(request), "VM")
        if self.emu.quirk("valdi-vm-state-unrecognised"):  # listed as `terminating` for a while first
            m.terminate_vm(self.store, found)
        else:
            self.store.delete(m.VM, found["server"])  # its claim on capacity goes with it
        return json_response({"message": "success"})

    # -- volumes -------------------------------------------------------------------------------------
    def volume_of(self, request: Request, user: dict) -> dict:
        return m.owned(self.store, m.VOLUME, request.path_params["id"], user, "volume")

    async def volumes(self, request: Request):
        user = self.authenticate(request)
        if request.method == "POST":
            body = await body_object(request)
            bucket = body.get("bucket_name")
            if not isinstance(bucket, str) or not bucket:  # seed 002: any characters
                raise HTTPError(400, {"detail": "bucket_name: a non-empty name is required"})
            return json_response(m.render_volume(m.add_volume(self.store, user, bucket), with_keys=True))
        return json_response({"volumes": [m.render_volume(v) for v in self.store.all(m.VOLUME)
                                          if v["user_id"] == user["user_id"]]})

    async def volume(self, request: Request):
        user = self.authenticate(request)
        doc = self.volume_of(request, user)
        if request.method == "DELETE":
            m.delete_volume(self.store, doc)
            return json_response({"message": "Successfully deleted"})
        listed = None
        if request.query_params.get("include_contents", "") in ("True", "true", "1"):
            subdirs = request.query_params.get("subdirs")
            listed = m.contents(self.store, doc, subdirs)
            if self.emu.quirk("valdi-contents-toplevel"):  # one level: the rest through `subdirs`
                listed = m.one_level(listed, subdirs)
            listed = [self.contents_entry(e) for e in listed]
            if self.emu.quirk("valdi-contents-object"):
                return json_response(m.render_volume(doc, contents={
                    e["path"]: {k: v for k, v in e.items() if k != "path"} for e in listed}))
        return json_response(m.render_volume(doc, contents=listed))

    def contents_entry(self, entry: dict):
        """One contents item, in the shape the quirks ask for."""
        if self.emu.quirk("valdi-contents-plain"):
            return entry["path"]
        if self.emu.quirk("valdi-contents-s3-style"):
            return {"Key": entry["path"], "Size": entry.get("size", 0),
                    **({"ETag": f'"{entry["etag"]}"', "LastModified": entry["last_modified"]}
                       if entry["type"] == "file" else {})}
        if self.emu.quirk("valdi-contents-no-etag"):
            return {k: v for k, v in entry.items() if k not in ("etag", "last_modified")}
        return entry

    async def folder(self, request: Request):
        doc = self.volume_of(request, self.authenticate(request))
        m.make_folder(self.store, doc, m.decode_path(request.path_params["path"]))
        return json_response({"message": "Folder created"})

    async def upload_link(self, request: Request):
        doc = self.volume_of(request, self.authenticate(request))
        blob = m.prefix_of(doc) + m.decode_path(request.path_params["path"])
        expires = int(time.time()) + LINK_TTL
        signature = base64.b64encode(hmac.new(self.key(), f"PUT\n{blob}\n{expires}".encode(), hashlib.sha1).digest())
        query = f"AWSAccessKeyId={self.gateway_key_id()}&Signature={quote(signature.decode(), safe='')}&Expires={expires}"
        return json_response({"upload_link": self.emu.url(request, "/gateway/" + quote(blob)) + "?" + query})

    async def object_(self, request: Request):
        user = self.authenticate(request)
        doc = self.volume_of(request, user)
        path = m.decode_path(request.path_params["path"])
        blob = m.prefix_of(doc) + path
        if request.method == "DELETE":
            m.delete_path(self.store, doc, path, request.query_params.get("path_type"))
            return json_response({"message": "Successfully deleted"})
        if self.store.blob_meta(blob) is None:
            raise m.not_found(f"object {path!r}")
        now = datetime.now(timezone.utc)
        stamp = now.strftime("%Y%m%dT%H%M%SZ")
        credential = f"{self.gateway_key_id()}/{now:%Y%m%d}/us-west-2/s3/aws4_request"
        signature = hmac.new(self.key(), f"GET\n{blob}\n{stamp}\n{LINK_TTL}".encode(), hashlib.sha256).hexdigest()
        query = ("response-content-disposition=attachment&X-Amz-Algorithm=AWS4-HMAC-SHA256"
                 f"&X-Amz-Credential={quote(credential, safe='')}&X-Amz-Date={stamp}&X-Amz-Expires={LINK_TTL}"
                 f"&X-Amz-SignedHeaders=host&X-Amz-Signature={signature}")
        return json_response({"download_link": self.emu.url(request, "/gateway/" + quote(blob)) + "?" + query})

    # -- the gateway: presigned links, no Bearer token, a signature instead ----------------------------
    def gateway_key_id(self) -> str:
        return hmac.new(self.key(), b"gateway-access-key-id", hashlib.sha256).hexdigest()[:28]

    def signed_upload(self, blob: str, q) -> bool:
        try:
            expires = int(q.get("Expires", ""))
        except ValueError:
            return False
        wanted = base64.b64encode(hmac.new(self.key(), f"PUT\n{blob}\n{expires}".encode(), hashlib.sha1).digest())
        return expires >= time.time() and hmac.compare_digest(q.get("Signature", "").encode(), wanted)

    def signed_download(self, blob: str, q) -> bool:
        stamp, ttl = q.get("X-Amz-Date", ""), q.get("X-Amz-Expires", "")
        try:
            issued = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc).timestamp()
            alive = issued + int(ttl) >= time.time()
        except ValueError:
            return False
        wanted = hmac.new(self.key(), f"GET\n{blob}\n{stamp}\n{ttl}".encode(), hashlib.sha256).hexdigest()
        return alive and hmac.compare_digest(q.get("X-Amz-Signature", ""), wanted)

    async def gateway(self, request: Request):
        blob = f"{m.BLOB_BUCKET}/{request.path_params['key']}"
        if request.method == "PUT":
            if request.headers.get("content-type", "").strip():  # part of the signature: must be empty
                raise HTTPError(403, {"detail": "SignatureDoesNotMatch: the Content-Type header must be empty "
                                                "(it is signed as empty)"})
            if not self.signed_upload(blob, request.query_params):
                raise HTTPError(403, {"detail": "SignatureDoesNotMatch: the link is expired or not signed for this"})
            owner, _, rest = request.path_params["key"].partition("/")
            volume_doc = m.volume_holding(self.store, int(owner), rest) if owner.isdigit() else None
            if volume_doc is None:
                raise HTTPError(404, {"detail": "NoSuchBucket: the volume no longer exists"})
            try:
                body = await request.body()
            except ClientDisconnect:
                raise HTTPError(400, {"detail": "client disconnected before sending its body"}) from None
            m.put_object(self.store, blob, body)
            return Response(status_code=200, headers={"ETag": f'"{hashlib.md5(body).hexdigest()}"'})
        if not self.signed_download(blob, request.query_params):
            raise HTTPError(403, {"detail": "SignatureDoesNotMatch: the link is expired or not signed for this"})
        content = self.store.get_blob(blob)
        if content is None:
            raise HTTPError(404, {"detail": "NoSuchKey: the object does not exist"})
        name = blob.rsplit("/", 1)[-1]
        return Response(content, media_type="application/octet-stream",
                        headers={"Content-Disposition": f'attachment; filename="{quote(name)}"'})

    # -- admin -----------------------------------------------------------------------------
    async def admin_users(self, request: Request):
        body = await body_object(request)
        email, password, user_id = body.get("email"), body.get("password"), body.get("user_id")
        if not isinstance(email, str) or not email or not isinstance(password, str) or not password:
            raise HTTPError(400, {"detail": "email and password are required"})
        if user_id is not None and (isinstance(user_id, bool) or not isinstance(user_id, int)):
            raise HTTPError(400, {"detail": "user_id: an integer"})
        user = auth.add_user(self.store, email, password, user_id=user_id)
        return json_response({"user_id": user["user_id"], "email": user["email"]}, status=201)



def routes(emu: Emulator) -> list[Route]:
    api = ValdiAPI(emu)
    return [
        Route("/account/login", api.login, methods=["POST"]),
        Route("/account/refresh_token", api.refresh, methods=["POST"]),
        Route("/account", api.account, methods=["GET"]),
        Route("/v1/devices/available", api.devices, methods=["GET"]),
        Route("/v1/devices/available/{provider_id}/{shape_id}", api.images, methods=["GET"]),
        Route("/sshkeys", api.sshkeys, methods=["GET"]),
        Route("/sshkeys/sshkey", api.sshkey_create, methods=["POST"]),
        Route("/v1/vm", api.vms, methods=["GET"]),
        Route("/v1/vm/provision", api.provision, methods=["POST"]),
        Route("/v1/vm/stop/{id}", api.stop, methods=["POST"]),
        Route("/v1/vm/start/{id}", api.start, methods=["POST"]),
        Route("/v1/vm/destroy/{id}", api.destroy, methods=["POST"]),
        Route("/v1/vm/{id}", api.vm, methods=["GET"]),
        Route("/volume", api.volumes, methods=["GET", "POST"]),
        Route("/volume/{id}", api.volume, methods=["GET", "DELETE"]),
        Route("/volume/{id}/folder/{path:path}", api.folder, methods=["PUT"]),
        Route("/volume/{id}/upload/{path:path}", api.upload_link, methods=["GET"]),
        Route("/volume/{id}/object/{path:path}", api.object_, methods=["GET", "DELETE"]),
        Route("/gateway/valdi/{key:path}", api.gateway, methods=["GET", "PUT"]),
        Route("/_emulator/valdi/users", api.admin_users, methods=["POST"]),
    ]
