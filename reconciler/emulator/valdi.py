"""The VALDI API in the emulator, at the root of the emulator's URL with VALDI's own mixed
prefixes (/account, /sshkeys, /volume unversioned; /v1/devices, /v1/vm).

Auth: login and refresh hand out JWTs (valdi_auth.py); every other endpoint wants
`Authorization: Bearer <access token>`, else 401 {"detail"}. Errors are FastAPI-style
{"detail": "..."}. The choices where the reference says [UNKNOWN] are in
contracts/valdi.md and repeated in the modules that implement them.

Admin: POST /_emulator/valdi/users {email, password, user_id?} seeds another account.
"""
from __future__ import annotations

from starlette.requests import Request
from starlette.routing import Route

from reconciler.emulator import valdi_auth as auth
from reconciler.emulator.core import SANDBOX, Emulator, HTTPError, json_response, read_json

_BAD_JSON = {"detail": "malformed JSON body"}


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


def routes(emu: Emulator) -> list[Route]:
    store = emu.store
    remembered: dict = {}

    def key() -> bytes:
        return auth.signing_key(store, remembered)

    def authenticate(request: Request) -> dict:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise HTTPError(401, {"detail": "Not authenticated"}, {"WWW-Authenticate": "Bearer"})
        try:
            user_id = auth.verify(key(), token.strip(), auth.ACCESS, emu.config.valdi_access_ttl)
        except auth.TokenError as e:
            raise HTTPError(401, {"detail": str(e)}, {"WWW-Authenticate": "Bearer"}) from None
        user = store.get(auth.USER, str(user_id))
        if user is None:
            raise HTTPError(401, {"detail": "Could not validate credentials"}, {"WWW-Authenticate": "Bearer"})
        return user

    # -- account ----------------------------------------------------------------------
    async def login(request: Request):
        body = await body_object(request)
        email, password = body.get("email"), body.get("password")
        if not isinstance(email, str) or not isinstance(password, str) or not email or not password:
            raise HTTPError(400, {"detail": "email and password are required"})
        user = auth.user_by_email(store, email)
        if user is None or not auth.password_matches(user, password):
            raise HTTPError(401, {"detail": "Incorrect email or password"})
        k = key()
        return json_response({
            "access_token": auth.issue(k, user["user_id"], auth.ACCESS, emu.config.valdi_access_ttl),
            "token_type": "Bearer",
            "refresh_token": auth.issue(k, user["user_id"], auth.REFRESH, emu.config.valdi_refresh_ttl)})

    async def refresh(request: Request):
        body = await body_object(request)
        token = body.get("token")
        if not isinstance(token, str) or not token:
            raise HTTPError(400, {"detail": "token: the refresh token is required"})
        try:
            user_id = auth.verify(key(), token, auth.REFRESH, emu.config.valdi_refresh_ttl)
        except auth.TokenError as e:
            raise HTTPError(401, {"detail": str(e)}) from None
        if store.get(auth.USER, str(user_id)) is None:
            raise HTTPError(401, {"detail": "Could not validate credentials"})
        return json_response({"access_token": auth.issue(key(), user_id, auth.ACCESS,
                                                         emu.config.valdi_access_ttl),
                              "token_type": "Bearer"})

    async def account(request: Request):
        return json_response(auth.account(authenticate(request)))

    # -- admin -----------------------------------------------------------------------------
    async def admin_users(request: Request):
        body = await body_object(request)
        email, password, user_id = body.get("email"), body.get("password"), body.get("user_id")
        if not isinstance(email, str) or not email or not isinstance(password, str) or not password:
            raise HTTPError(400, {"detail": "email and password are required"})
        if user_id is not None and (isinstance(user_id, bool) or not isinstance(user_id, int)):
            raise HTTPError(400, {"detail": "user_id: an integer"})
        user = auth.add_user(store, email, password, user_id=user_id)
        return json_response({"user_id": user["user_id"], "email": user["email"]}, status=201)

    return [
        Route("/account/login", login, methods=["POST"]),
        Route("/account/refresh_token", refresh, methods=["POST"]),
        Route("/account", account, methods=["GET"]),
        Route("/_emulator/valdi/users", admin_users, methods=["POST"]),
    ]
