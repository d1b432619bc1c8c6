"""State in PostgreSQL, for teams whose pipelines run on many machines.

    postgresql://USER[:PASSWORD]@HOST:PORT/DB?workspace=NAME[&history=N]

Tables (created on first use):
    reconciler_state    one row per workspace: the document, lineage, serial
    reconciler_history  the last N serials written (history=N, default 100): who, when,
                        which command, the document zlib-compressed (a 2,000-entry state
                        is ~25 kB a serial as JSON, a tenth of that packed)
    reconciler_locks    the holder of each workspace's lock, for the error message

Writes are compare-and-swap on (lineage, serial) in one transaction. The lock is a
session-level advisory lock held on its own connection: when the holding process dies,
its connection closes and PostgreSQL frees the lock at once. The holder row is written
in the same transaction that takes the lock (and removed in the one that frees it), the
row written first: a contender's own write waits on that row until the holder commits,
so whoever finds the lock taken also finds who holds it.

While this process holds the lock, its writes go through the lock's own session: if that
session ends (the server restarts, `pg_terminate_backend`, a dropped connection), the
lock is gone with it, so the write fails instead of landing unlocked, and the apply stops
(`check_lock` before each batch of API calls) with one line saying the lock was lost.
"""
from __future__ import annotations

import contextlib
import getpass
import hashlib
import json
import time
import zlib
from typing import TYPE_CHECKING, Any, Iterator, Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from reconciler.errors import LockError, StaleStateError, StateError
from reconciler.state import crypto
from reconciler.state.base import STATE_VERSION, LockInfo, StateDoc
from reconciler.state.check import check

if TYPE_CHECKING:
    import psycopg  # optional: the postgres extra

SCHEMA = """
CREATE TABLE IF NOT EXISTS reconciler_state (
    workspace text PRIMARY KEY, lineage text NOT NULL, serial integer NOT NULL,
    doc jsonb NOT NULL, updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS reconciler_history (
    workspace text NOT NULL, serial integer NOT NULL, lineage text NOT NULL,
    at timestamptz NOT NULL DEFAULT now(), who text NOT NULL, command text NOT NULL,
    doc jsonb NOT NULL, PRIMARY KEY (workspace, lineage, serial));
ALTER TABLE reconciler_history ADD COLUMN IF NOT EXISTS packed bytea;
ALTER TABLE reconciler_history ALTER COLUMN doc DROP NOT NULL;
CREATE TABLE IF NOT EXISTS reconciler_locks (
    workspace text PRIMARY KEY, lock_id text NOT NULL, who text NOT NULL, pid integer NOT NULL,
    backend_pid integer NOT NULL, command text NOT NULL, started double precision NOT NULL);
"""


HISTORY_KEEP = 100  # serials of history kept per workspace unless the URL says history=N


def split_url(url: str) -> tuple[str, str, str]:
    """(dsn without ?workspace, workspace, location with the password hidden)."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    workspace = query.pop("workspace", "default") or "default"
    query.pop("history", None)
    dsn = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))
    netloc = parts.netloc
    if parts.password:
        netloc = netloc.replace(f":{parts.password}@", ":***@")
    location = urlunsplit((parts.scheme, netloc, parts.path, f"workspace={workspace}", ""))
    return dsn, workspace, location


def _lock_key(workspace: str) -> int:
    return int.from_bytes(hashlib.sha256(f"reconciler:{workspace}".encode()).digest()[:8], "big", signed=True)


def _scalar(conn: psycopg.Connection, query: str, params: tuple = ()) -> Any:
    """The value of a one-row, one-column SELECT (of a function: it always gives a row)."""
    row = conn.execute(query, params).fetchone()
    assert row is not None, query
    return row[0]


class PostgresStateStore:
    def __init__(self, url: str, env: Mapping[str, str] | None = None):
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise StateError("PostgreSQL state needs psycopg: pip install 'reconciler[postgres]'") from None
        self.dsn, self.workspace, self.location = split_url(url)
        keep = dict(parse_qsl(urlsplit(url).query)).get("history")
        if keep is not None and not (keep.isdigit() and int(keep) > 0):
            raise StateError(f"{self.location}: history={keep} is not a number of serials (1 or more)")
        self.keep = int(keep) if keep else HISTORY_KEEP
        self.env = env
        self.command = "unknown"
        self._ready = False
        self._held: psycopg.Connection | None = None  # the lock's session, while this process holds it

    def _connect(self) -> psycopg.Connection:
        import psycopg

        try:
            conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=10)
        except psycopg.Error as e:
            raise StateError(f"{self.location}: cannot connect to PostgreSQL "
                             f"({e.__class__.__name__}: {str(e).splitlines()[0] if str(e) else ''})".replace(
                                 self.dsn, self.location)) from None
        if not self._ready:
            conn.execute(SCHEMA)
            self._ready = True
        return conn

    def read(self) -> StateDoc:
        with self._connect() as conn:
            row = conn.execute("SELECT doc FROM reconciler_state WHERE workspace = %s",
                               (self.workspace,)).fetchone()
        if row is None:
            return StateDoc()
        check(row[0], self.location, STATE_VERSION)
        return StateDoc.from_dict(crypto.open_doc(row[0], self.env), self.location)

    def write(self, doc: StateDoc) -> None:
        new_serial = doc.serial + 1
        body = doc.to_dict()
        body["serial"] = new_serial
        sealed = crypto.seal_doc(body, self.env)
        held = self._held
        if held is None:
            with self._connect() as conn:
                self._swap(conn, doc, new_serial, sealed)
        else:
            with self._on_lock_session(held):  # the lock and the write share a session: never unlocked
                self._swap(held, doc, new_serial, sealed)
        doc.serial = new_serial

    def _swap(self, conn: psycopg.Connection, doc: StateDoc, new_serial: int, sealed: dict) -> None:
        """The compare-and-swap on (lineage, serial) and its history row, one transaction."""
        from psycopg.types.json import Jsonb

        with conn.transaction():
            if doc.serial == 0:
                cur = conn.execute(
                    "INSERT INTO reconciler_state (workspace, lineage, serial, doc) VALUES (%s, %s, %s, %s) "
                    "ON CONFLICT (workspace) DO NOTHING", (self.workspace, doc.lineage, new_serial, Jsonb(sealed)))
            else:
                cur = conn.execute(
                    "UPDATE reconciler_state SET doc = %s, serial = %s, updated_at = now() "
                    "WHERE workspace = %s AND serial = %s AND lineage = %s",
                    (Jsonb(sealed), new_serial, self.workspace, doc.serial, doc.lineage))
            if cur.rowcount != 1:
                row = conn.execute("SELECT serial, lineage FROM reconciler_state WHERE workspace = %s",
                                   (self.workspace,)).fetchone()
                moved = f"serial {row[0]}" if row else "nothing"
                raise StaleStateError(
                    f"{self.location}: the state is at {moved} but this run read serial {doc.serial}; "
                    "another run wrote it in between. Nothing was overwritten; plan again.")
            self._remember(conn, new_serial, doc.lineage, self.command, sealed)

    def check_lock(self) -> None:
        """StateError if the lock this process took has been lost (its session ended):
        an apply asks before each batch of API calls."""
        held = self._held
        if held is not None:
            with self._on_lock_session(held):
                held.execute("SELECT 1")

    @contextlib.contextmanager
    def _on_lock_session(self, conn: psycopg.Connection) -> Iterator[None]:
        import psycopg

        try:
            yield
        except psycopg.Error as e:
            if not conn.closed:
                raise
            raise StateError(f"{self.location}: the state lock was lost (its PostgreSQL session ended: "
                             f"{e.__class__.__name__}); stopped before any further change or state write. "
                             "Run `reconciler plan` to see where things stand.") from None

    def _remember(self, conn: psycopg.Connection, serial: int, lineage: str, command: str, sealed: dict) -> None:
        """One history row, packed, and the serials older than the last `keep` dropped."""
        conn.execute("INSERT INTO reconciler_history (workspace, serial, lineage, who, command, packed) "
                     "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                     (self.workspace, serial, lineage, _who(), command, _pack(sealed)))
        conn.execute("DELETE FROM reconciler_history WHERE workspace = %s AND serial <= %s",
                     (self.workspace, serial - self.keep))

    @contextlib.contextmanager
    def lock(self, operation: str, timeout: float = 0.0) -> Iterator[LockInfo]:
        conn = self._connect()
        key = _lock_key(self.workspace)
        deadline = time.monotonic() + timeout
        info = LockInfo.new(operation)
        try:
            misses = 0
            while not self._take(conn, key, info):
                holder = self._holder(conn)
                if holder is None and misses < 10:  # freed since our try: try again at once
                    misses += 1
                    continue
                if time.monotonic() >= deadline:
                    raise LockError(f"{self.location} is locked: {holder or 'another process'}. A killed "
                                    "process frees its lock at once; use --lock-timeout to wait.")
                time.sleep(0.2)
            self._held = conn
            try:
                yield info
            finally:
                self._held = None
                with contextlib.suppress(Exception), conn.transaction():
                    conn.execute("DELETE FROM reconciler_locks WHERE workspace = %s AND lock_id = %s",
                                 (self.workspace, info.id))
                    conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
        finally:
            conn.close()

    def _take(self, conn: psycopg.Connection, key: int, info: LockInfo) -> bool:
        """The lock and its holder row in one transaction, the row first (see the module)."""
        import psycopg

        try:
            with conn.transaction():
                conn.execute(
                    "INSERT INTO reconciler_locks (workspace, lock_id, who, pid, backend_pid, command, started) "
                    "VALUES (%s, %s, %s, %s, pg_backend_pid(), %s, %s) ON CONFLICT (workspace) DO UPDATE SET "
                    "lock_id = EXCLUDED.lock_id, who = EXCLUDED.who, pid = EXCLUDED.pid, "
                    "backend_pid = EXCLUDED.backend_pid, command = EXCLUDED.command, started = EXCLUDED.started",
                    (self.workspace, info.id, info.who, info.pid, info.operation, info.created))
                if not _scalar(conn, "SELECT pg_try_advisory_lock(%s)", (key,)):
                    raise _Taken()
        except _Taken:
            return False  # rolled back: the holder's row stands
        except psycopg.Error as e:
            raise StateError(f"{self.location}: cannot take the state lock ({e.__class__.__name__})") from None
        return True

    def _holder(self, conn: psycopg.Connection) -> str | None:
        row = conn.execute("SELECT lock_id, who, pid, command, started FROM reconciler_locks WHERE workspace = %s",
                           (self.workspace,)).fetchone()
        if row is None:
            return None
        return LockInfo(id=row[0], who=row[1], pid=row[2], operation=row[3], created=row[4]).describe()

    def unlock(self, lock_id: str) -> None:
        """Ends the session that holds the lock (its advisory lock goes with it), after
        pg_locks confirms that session holds this workspace's lock: a recorded pid may
        have been reused by a session of someone else."""
        key = _lock_key(self.workspace) & 0xFFFFFFFFFFFFFFFF
        with self._connect() as conn:
            row = conn.execute("SELECT lock_id, backend_pid FROM reconciler_locks WHERE workspace = %s",
                               (self.workspace,)).fetchone()
            if row is None or row[0] != lock_id:
                raise StateError(f"{self.location}: no lock with id {lock_id}")
            holds = conn.execute(
                "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = %s "
                "AND classid::bigint = %s AND objid::bigint = %s AND objsubid = 1",
                (row[1], key >> 32, key & 0xFFFFFFFF)).fetchone()
            if holds:
                conn.execute("SELECT pg_terminate_backend(%s)", (row[1],))
            conn.execute("DELETE FROM reconciler_locks WHERE workspace = %s AND lock_id = %s",
                         (self.workspace, lock_id))

    def managed_elsewhere(self, ids: set[str]) -> dict[str, tuple[str, str]]:
        """Which of these remote ids another workspace of this database manages:
        id -> (workspace, address). Two states adopting one datum would fight over it."""
        if not ids:
            return {}
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT s.workspace, r.key, r.value->>'id' FROM reconciler_state s, "
                "jsonb_each(s.doc->'resources') r WHERE s.workspace <> %s AND r.value->>'id' = ANY(%s)",
                (self.workspace, sorted(ids))).fetchall()
        return {row[2]: (row[0], row[1]) for row in rows}

    def history(self, limit: int = 20) -> list[dict]:
        with self._connect() as conn:
            rows = conn.execute("SELECT serial, at, who, command, doc, packed FROM reconciler_history "
                                "WHERE workspace = %s ORDER BY at DESC, serial DESC LIMIT %s",
                                (self.workspace, limit)).fetchall()
        return [{"serial": r[0], "at": r[1].isoformat(timespec="seconds"), "who": r[2], "command": r[3],
                 "addresses": sorted((r[4] if r[5] is None else _unpack(r[5])).get("resources", {}))}
                for r in rows]

    def replace_all(self, doc: StateDoc) -> None:
        """Write a document as it is (state migrate): lineage and serial kept."""
        from psycopg.types.json import Jsonb

        sealed = crypto.seal_doc(doc.to_dict(), self.env)
        with self._connect() as conn, conn.transaction():
            conn.execute("INSERT INTO reconciler_state (workspace, lineage, serial, doc) VALUES (%s, %s, %s, %s) "
                         "ON CONFLICT (workspace) DO UPDATE SET lineage = EXCLUDED.lineage, serial = EXCLUDED.serial, "
                         "doc = EXCLUDED.doc, updated_at = now()",
                         (self.workspace, doc.lineage, doc.serial, Jsonb(sealed)))
            self._remember(conn, doc.serial, doc.lineage, "state migrate", sealed)


class _Taken(Exception):
    """The advisory lock is held by another session: roll the holder row back."""


def _pack(doc: dict) -> bytes:
    return zlib.compress(json.dumps(doc, separators=(",", ":")).encode(), 6)


def _unpack(packed: bytes) -> dict:
    return json.loads(zlib.decompress(packed))


def _who() -> str:
    import socket
    try:
        user = getpass.getuser()
    except Exception:  # no login name in some containers
        user = "unknown"
    return f"{user}@{socket.gethostname()}"
