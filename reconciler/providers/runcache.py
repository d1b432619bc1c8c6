"""Listings read once per run and shared by every kind and thread that asks, until a
write makes them stale. Each provider client keeps one."""
from __future__ import annotations

import threading
from typing import Any, Callable


class RunCache:
    def __init__(self) -> None:
        self._values: dict[str, Any] = {}
        self._lock = threading.RLock()
        self._loading: dict[str, threading.RLock] = {}  # one lock per key: listings load side by side

    def get(self, key: str, load: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._values:
                return self._values[key]
            key_lock = self._loading.setdefault(key, threading.RLock())
        with key_lock:  # one fetch even when several kinds observe at once
            with self._lock:
                if key in self._values:
                    return self._values[key]
            value = load()
            with self._lock:
                self._values[key] = value
            return value

    def drop(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._values.pop(key, None)

    def clear(self, keep: tuple[str, ...] = ()) -> None:
        with self._lock:
            for key in [k for k in self._values if k not in keep]:
                del self._values[key]
