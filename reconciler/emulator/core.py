"""What every part of the emulator shares: configuration, the sandbox identities, the
request log, fault injection, and small request/response helpers."""
from __future__ import annotations

import asyncio
import json
import random
import re
import threading
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, TypedDict

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from reconciler.emulator import quirks
from reconciler.emulator.store import Store

class SandboxIds(TypedDict):
    """The identities a fresh sandbox holds. Fixed values, so docs and tests can name them."""

    valdi_email: str
    valdi_password: str
    valdi_user_id: int
    valohai_token: str
    valohai_username: str
    valohai_user_id: int
    valohai_project_id: str
    valohai_project_name: str
    valohai_store_id: str
    valohai_store_name: str
    valohai_bucket: str
    codeocean_token: str
    codeocean_user_id: str
    codeocean_email: str


SANDBOX: SandboxIds = {
    "valdi_email": "sandbox@valdi.example",
    "valdi_password": "valdi-sandbox-pw-7f3a9c",
    "valdi_user_id": 8,
    "valohai_token": "vh-sandbox-token-2b8e41",
    "valohai_username": "sandbox",
    "valohai_user_id": 1,
    "valohai_project_id": "0189f0e2-5b1a-7c3d-9e4f-a1b2c3d4e5f6",
    "valohai_project_name": "sandbox",
    "valohai_store_id": "0189f0e2-6c2b-7d4e-8f50-b2c3d4e5f607",
    "valohai_store_name": "sandbox-store",
    "valohai_bucket": "sandbox-bucket",
    "codeocean_token": "cop_sandbox_token_5d9c07",
    "codeocean_user_id": "6a1c0b7e-2f4d-4e8a-9b3c-5d6e7f809a1b",
    "codeocean_email": "sandbox@codeocean.example",
}


@dataclass
class EmulatorConfig:
    valdi_access_ttl: float = 300.0  # seconds an access token lives
    valdi_refresh_ttl: float = 30 * 24 * 3600.0
    vm_provision_delay: float = 1.0  # seconds from provision to "running"
    vm_start_delay: float = 0.0
    vm_destroy_delay: float = 0.2  # seconds a destroyed VM stays listed (quirk valdi-vm-state-unrecognised)
    asset_ready_delay: float = 0.5  # seconds from create to "ready" / "failed"
    latency_ms: float = 0.0  # added to every API request
    fault_rate: float = 0.0  # share of API requests answered with a fault
    seed: int | None = None  # RNG seed for faults (reproducible runs)
    vm_final_state: str = "running"  # what a VM becomes after provisioning ("error": a failed one)
    quirks: list = field(default_factory=list)  # named alternatives to undocumented shapes (quirks.py)

    def update(self, values: dict) -> None:
        for key, value in values.items():
            if not hasattr(self, key):
                raise KeyError(key)
            if key == "quirks":
                self.quirks = quirks.parse(value)
                continue
            setattr(self, key, type(getattr(self, key))(value) if getattr(self, key) is not None else value)


class HTTPError(Exception):
    """Raised by handlers; rendered as a JSON response with the API's own error shape."""

    def __init__(self, status: int, body: Any, headers: dict | None = None):
        self.status, self.body, self.headers = status, body, headers or {}


@dataclass
class Fault:
    """One injected misbehaviour. `kinds` are picked at random per matching request:
    429, 500, 503 (or any status from 400 up, e.g. 401, 403), "html" (200 with an HTML
    page, as a gateway or sign-in proxy answers), "empty_object" (200 with `{}`: no
    listing key), "drop" (connection dropped before the handler acts), "drop_after"
    (handler acts, then the connection drops: the client cannot know), "stall" (the
    request hangs `stall_seconds` before being handled), "stall_after" (handled at once,
    the answer held back `stall_seconds`: the crash harness kills the client then)."""

    pattern: str = ".*"  # regex searched in "METHOD /path"
    rate: float = 1.0
    kinds: list = field(default_factory=lambda: [429, 500, "drop"])
    retry_after: float = 0.05
    times: int | None = None  # stop after this many injections
    skip: int = 0  # let this many matching requests through first
    stall_seconds: float = 30.0
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    hits: int = 0
    seen: int = 0


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def iso_z(ts: float | None = None) -> str:
    """2019-06-23T14:26:35.604807Z (Valohai)."""
    return datetime.fromtimestamp(ts if ts is not None else time.time(), timezone.utc) \
        .strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def iso_naive(ts: float | None = None) -> str:
    """2023-12-12T23:41:05.232767 (VALDI: naive UTC)."""
    return datetime.fromtimestamp(ts if ts is not None else time.time(), timezone.utc) \
        .replace(tzinfo=None).isoformat(timespec="microseconds")


def time_ordered_uuid() -> str:
    """A UUIDv7-like id: time-ordered, as Valohai's are."""
    ms = int(time.time() * 1000)
    rand = uuid.uuid4().int & ((1 << 80) - 1)
    value = (ms << 80) | (0x7 << 76) | (rand & ((1 << 76) - 1))
    value = (value & ~(0xC << 60)) | (0x8 << 60)
    return str(uuid.UUID(int=value))


class Emulator:
    """The shared state of one emulator app."""

    def __init__(self, store: Store, config: EmulatorConfig):
        self.store = store
        self.config = config
        self.faults: list[Fault] = []
        self.log: list[dict] = []  # {"method", "route", "path", "status", "api"}
        self._log_lock = threading.Lock()
        self.rng = random.Random(config.seed)
        self.base_url = ""  # set by the server when it knows its port; else from requests

    def quirk(self, name: str) -> bool:
        """Whether the named quirk (quirks.py) is on."""
        assert name in quirks.QUIRKS, name
        return name in self.config.quirks

    # -- request log ---------------------------------------------------------------
    def record(self, method: str, route: str, path: str, status: int, fault: str | None) -> None:
        with self._log_lock:
            self.log.append({"method": method, "route": route, "path": path, "status": status,
                             "fault": fault, "at": time.time()})

    def counts(self) -> dict[str, int]:
        with self._log_lock:
            return dict(Counter(f"{e['method']} {e['route']}" for e in self.log))

    def clear_log(self) -> None:
        with self._log_lock:
            self.log.clear()

    # -- faults --------------------------------------------------------------------
    def pick_fault(self, method: str, path: str) -> tuple[Fault, Any] | None:
        target = f"{method} {path}"
        with self._log_lock:
            for fault in self.faults:
                if not re.search(fault.pattern, target):
                    continue
                fault.seen += 1
                if fault.seen <= fault.skip:
                    continue
                if fault.times is not None and fault.hits >= fault.times:
                    continue
                if self.rng.random() < fault.rate:
                    fault.hits += 1
                    return fault, self.rng.choice(fault.kinds)
            if self.config.fault_rate and self.rng.random() < self.config.fault_rate:
                return Fault(), self.rng.choice([429, 500, "drop"])
        return None

    def url(self, request: Request, path: str) -> str:
        base = self.base_url or str(request.base_url).rstrip("/")
        return base + path


def json_response(body: Any, status: int = 200, headers: dict | None = None) -> Response:
    return JSONResponse(body, status_code=status, headers=headers)


def empty_response(status: int = 204) -> Response:
    return Response(status_code=status)


def require_json_type(request: Request, error: Any) -> None:
    """415 for a body sent under a media type that is not JSON (text/plain, form data), as
    Django REST Framework's JSONParser answers; no Content-Type at all is read as JSON."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media and media != "application/json" and not media.endswith("+json"):
        raise HTTPError(415, error(media) if callable(error) else error)


async def read_json(request: Request, error: Any = None, *, allow_empty: bool = False) -> Any:
    """The request body as JSON, or a 400 in the API's own error shape."""
    try:
        raw = await request.body()
    except ClientDisconnect:  # the client died (a killed apply): nothing was done, nobody to answer
        raise HTTPError(400, {"detail": "client disconnected before sending its body"}) from None
    if not raw.strip():
        if allow_empty:
            return None
        raise HTTPError(400, error if error is not None else {"detail": "request body is empty"})
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise HTTPError(400, error if error is not None else {"detail": "malformed JSON body"})


async def read_json_or_form(request: Request) -> dict:
    """Valohai's CLI posts form-encoded bodies on some endpoints; JSON elsewhere."""
    ctype = request.headers.get("content-type", "")
    if "application/x-www-form-urlencoded" in ctype:  # stdlib: no python-multipart needed
        from urllib.parse import parse_qsl
        return dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))
    body = await read_json(request, {"detail": "malformed JSON body"}, allow_empty=True)
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise HTTPError(400, {"detail": "expected a JSON object"})
    return body


def config_dict(config: EmulatorConfig) -> dict:
    return asdict(config)


async def sleep(seconds: float) -> None:
    if seconds > 0:
        await asyncio.sleep(seconds)
