"""`--notify URL`: a POST of a small JSON document when drift appears, when it clears,
when an apply fails and when a failing resource applies again (`recovered`). It carries a Slack-compatible `text`, so a Slack (or Mattermost,
Teams-via-workflow) incoming webhook shows it as it is:

    {"event": "drift", "text": "reconciler: drift in 1 resource: codeocean.data_asset.data (tags)",
     "resources": [{"address": "codeocean.data_asset.data", "kind": "codeocean.data_asset",
                    "what": "changed", "fields": ["tags"]}],
     "state": "postgresql://reconciler:***@db:5432/reconciler?workspace=prod"}

It names resources and fields, never values: a drifted password or access key is not
sent anywhere. Posts go from one background thread, so a slow webhook never holds a
run back; a failed post is logged and dropped.
"""
from __future__ import annotations

import queue
import threading
from typing import Any, Callable

import httpx

from reconciler.config import walk
from reconciler.config.sensitivity import scrub
from reconciler.watch.drift import Moved

TIMEOUT = 5.0


def drift_payload(event: str, moved: list[Moved], state: str) -> dict[str, Any]:
    what = "drift in" if event == "drift" else "drift cleared in"
    names = ", ".join(_named(m, event == "drift") for m in moved)
    return {"event": event, "text": f"reconciler: {what} {_count(len(moved))}: {names}",
            "resources": [{"address": m.address, "kind": m.kind, "what": m.what,
                           "fields": [f.path for f in m.fields]} for m in moved],
            "state": state}


def failure_payload(failures: dict[str, tuple[str, int, float]], state: str) -> dict[str, Any]:
    """failures: address -> (error message, failures in a row, seconds to the next try)."""
    names = "; ".join(f"{a}: {err}" for a, (err, _, _) in failures.items())
    return {"event": "apply_failed",
            "text": f"reconciler: apply failed for {_count(len(failures))}: {names}",
            "resources": [{"address": a, "error": err, "failures": n, "retry_in_seconds": round(wait, 1)}
                          for a, (err, n, wait) in failures.items()],
            "state": state}


def recovered_payload(addresses: list[str], state: str) -> dict[str, Any]:
    """A failure cleared: the resources applied again after failing."""
    return {"event": "recovered",
            "text": f"reconciler: recovered: {_count(len(addresses))} applied again after failing: "
                    + ", ".join(addresses),
            "resources": [{"address": a} for a in addresses], "state": state}


def _count(n: int) -> str:
    return f"{n} resource" + ("" if n == 1 else "s")


def _named(m: Moved, show_fields: bool) -> str:
    if m.what == "deleted":
        return f"{m.address} (deleted)"
    if show_fields and m.fields:
        return f"{m.address} ({', '.join(f.path for f in m.fields)})"
    return m.address


class Notifier:
    def __init__(self, url: str, on_error: Callable[[str], None] = lambda m: None,
                 post: Callable[[str, dict], None] | None = None):
        self.url = url
        self.on_error = on_error
        self._post = post or _post
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._drain, name="notify", daemon=True)
        self._thread.start()

    def send(self, payload: dict[str, Any]) -> None:
        """Queued with every secret the run handles scrubbed, at any depth (an API error
        quoting a name built from a key is sent as its redacted form)."""
        self._queue.put(walk.masked(payload, lambda key: False, "", scrub))

    def close(self, timeout: float = 2.0) -> None:
        """Deliver what is queued, waiting at most `timeout` seconds."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _drain(self) -> None:
        while True:
            payload = self._queue.get()
            if payload is None:
                return
            try:
                self._post(self.url, payload)
            except Exception as e:  # noqa: BLE001 - a webhook down must not stop the watch
                # the URL is not shown: a webhook's path is its secret (Slack's is)
                self.on_error(f"a {payload.get('event')} notification was not delivered: "
                              f"{e if isinstance(e, NotDelivered) else e.__class__.__name__}")


class NotDelivered(Exception):
    pass


def _post(url: str, payload: dict[str, Any]) -> None:
    response = httpx.post(url, json=payload, timeout=TIMEOUT)
    if response.status_code >= 400:
        raise NotDelivered(f"the webhook answered HTTP {response.status_code}")
