"""Emulator persistence: JSON documents and S3-like blobs in SQLite, cached in memory.

Reads come from memory (listings of thousands of objects stay fast); every write goes
through to SQLite at once, so the state survives a restart of the process.
"""
from __future__ import annotations

import json
import os
import sqlite3
import threading
from pathlib import Path
from typing import Iterator


class Store:
    def __init__(self, path: str | Path | None = None):
        self.path = str(path) if path else ":memory:"
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            # it holds the sandbox's volume keys and passwords: private, like the state
            # (SQLite gives its -wal and -shm files the database file's mode)
            os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
            os.chmod(path, 0o600)
        self.lock = threading.RLock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL" if path else "PRAGMA journal_mode=MEMORY")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS docs (kind TEXT, id TEXT, seq INTEGER, "
                         "body TEXT, PRIMARY KEY (kind, id))")
        self._db.execute("CREATE TABLE IF NOT EXISTS blobs (key TEXT PRIMARY KEY, body BLOB, "
                         "meta TEXT)")
        self._docs: dict[str, dict[str, dict]] = {}
        self._seq = 0
        for kind, id_, seq, body in self._db.execute("SELECT kind, id, seq, body FROM docs ORDER BY seq"):
            self._docs.setdefault(kind, {})[id_] = json.loads(body)
            self._seq = max(self._seq, seq)

    # -- documents ---------------------------------------------------------------
    def get(self, kind: str, id_: str) -> dict | None:
        with self.lock:
            doc = self._docs.get(kind, {}).get(id_)
            return json.loads(json.dumps(doc)) if doc is not None else None

    def put(self, kind: str, id_: str, doc: dict) -> dict:
        body = json.dumps(doc)
        with self.lock:
            bucket = self._docs.setdefault(kind, {})
            if id_ not in bucket:
                self._seq += 1
                seq = self._seq
                self._db.execute("INSERT INTO docs (kind, id, seq, body) VALUES (?,?,?,?)",
                                 (kind, id_, seq, body))
            else:
                self._db.execute("UPDATE docs SET body=? WHERE kind=? AND id=?", (body, kind, id_))
            bucket[id_] = json.loads(body)
        return doc

    def delete(self, kind: str, id_: str) -> bool:
        with self.lock:
            existed = self._docs.get(kind, {}).pop(id_, None) is not None
            self._db.execute("DELETE FROM docs WHERE kind=? AND id=?", (kind, id_))
            return existed

    def all(self, kind: str) -> list[dict]:
        """Every document of a kind, in insertion order (copies)."""
        with self.lock:
            return [json.loads(json.dumps(d)) for d in self._docs.get(kind, {}).values()]

    def iter_raw(self, kind: str) -> Iterator[dict]:
        """Documents without copying: callers must not mutate them."""
        with self.lock:
            docs = list(self._docs.get(kind, {}).values())
        return iter(docs)

    def count(self, kind: str) -> int:
        with self.lock:
            return len(self._docs.get(kind, {}))

    # -- blobs (the emulated S3) -------------------------------------------------
    def put_blob(self, key: str, body: bytes, meta: dict | None = None) -> None:
        with self.lock:
            self._db.execute("INSERT OR REPLACE INTO blobs (key, body, meta) VALUES (?,?,?)",
                             (key, body, json.dumps(meta or {})))

    def get_blob(self, key: str) -> bytes | None:
        with self.lock:
            row = self._db.execute("SELECT body FROM blobs WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def blob_meta(self, key: str) -> dict | None:
        with self.lock:
            row = self._db.execute("SELECT meta, length(body) FROM blobs WHERE key=?", (key,)).fetchone()
        if not row:
            return None
        meta = json.loads(row[0])
        meta["size"] = row[1]
        return meta

    def list_blobs(self, prefix: str) -> list[tuple[str, int]]:
        """(key, size) of every blob whose key starts with prefix, sorted by key."""
        like = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        with self.lock:
            rows = self._db.execute("SELECT key, length(body) FROM blobs WHERE key LIKE ? ESCAPE '\\' "
                                    "ORDER BY key", (like,)).fetchall()
        return [(k, n) for k, n in rows]

    def delete_blobs(self, prefix: str, exact: bool = False) -> int:
        with self.lock:
            if exact:
                cur = self._db.execute("DELETE FROM blobs WHERE key=?", (prefix,))
            else:
                like = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
                cur = self._db.execute("DELETE FROM blobs WHERE key LIKE ? ESCAPE '\\'", (like,))
            return cur.rowcount

    # -- whole store -------------------------------------------------------------
    def clear(self) -> None:
        with self.lock:
            self._db.execute("DELETE FROM docs")
            self._db.execute("DELETE FROM blobs")
            self._docs.clear()

    def close(self) -> None:
        with self.lock:
            self._db.close()
