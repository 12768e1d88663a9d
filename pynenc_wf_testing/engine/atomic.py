"""Atomic store operations the engine needs across processes, per pynenc state backend.

pynenc's state backend offers plain get/set of workflow data: two processes that read, then
write (the next signal slot, a workflow id, a wake-up) can both act on the same read. The
engine's cross-process decisions go through this module instead, which uses each backend's
own atomic primitives on the backend's own store:

- **SQLite** (pynenc's ``SQLiteStateBackend``): three tables of the backend's database file,
  every read-modify-write in one ``BEGIN IMMEDIATE`` transaction.
- **Redis** (pynenc-redis' ``RedisStateBackend``): ``SET NX``, ``INCR``, ``SADD``, ``ZADD``
  and a compare-and-set Lua script on the backend's client.
- **Memory** (pynenc's ``MemStateBackend``): one process by nature; a lock.

Any other backend raises ``UnsupportedStateBackend`` when the engine first needs an atomic
operation in production (the simulator serializes everything itself and does not use this
module). Keys are built by ``schema`` and scoped to the app id.
"""

from __future__ import annotations

import sqlite3
import threading
import weakref
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pynenc.app import Pynenc

from pynenc_wf_testing.engine._errors import UnsupportedStateBackend

__all__ = ["AtomicStore", "atomic_store"]


class AtomicStore(ABC):
    """Atomic operations on one app's store: strings under keys, sets of strings, and a
    due-time index (a sorted set of members scored by a POSIX timestamp)."""

    @abstractmethod
    def get(self, key: str) -> str | None:
        """The value under ``key``, or None."""

    @abstractmethod
    def set(self, key: str, value: str) -> None:
        """Store ``value`` under ``key`` (a plain write: heartbeats)."""

    @abstractmethod
    def put_if_absent(self, key: str, value: str) -> str | None:
        """Store ``value`` unless ``key`` holds one: None if stored, else the value found."""

    def put_many_if_absent(self, items: list[tuple[str, str]]) -> list[bool]:
        """``put_if_absent`` of each (key, value), in one round trip where the backend
        allows: for each, whether it was stored."""
        return [self.put_if_absent(key, value) is None for key, value in items]

    @abstractmethod
    def compare_and_set(self, key: str, expected: str | None, value: str | None) -> bool:
        """Replace ``expected`` (None: absent) by ``value`` (None: delete), atomically."""

    @abstractmethod
    def incr(self, key: str) -> int:
        """Add 1 to the counter under ``key`` (0 if absent) and return the new value."""

    @abstractmethod
    def add_member(self, key: str, member: str) -> None:
        """Add ``member`` to the set under ``key``."""

    @abstractmethod
    def remove_member(self, key: str, member: str) -> None:
        """Remove ``member`` from the set under ``key`` (no-op if absent)."""

    @abstractmethod
    def members(self, key: str) -> list[str]:
        """The members of the set under ``key``, sorted."""

    @abstractmethod
    def schedule(self, index: str, member: str, due: float) -> None:
        """Put ``member`` in the due-time index ``index`` at ``due`` (replacing its time)."""

    def schedule_many(self, index: str, members: list[str], due: float) -> None:
        """``schedule`` each of ``members`` at ``due``, in one round trip where the backend
        allows."""
        for member in members:
            self.schedule(index, member, due)

    @abstractmethod
    def unschedule(self, index: str, member: str) -> None:
        """Take ``member`` out of the due-time index ``index`` (no-op if absent)."""

    def unschedule_many(self, index: str, members: list[str]) -> None:
        """``unschedule`` each of ``members``, in one round trip where the backend allows."""
        for member in members:
            self.unschedule(index, member)

    @abstractmethod
    def due(self, index: str, until: float, limit: int = 1000) -> list[tuple[str, float]]:
        """Members of ``index`` due at or before ``until``, earliest first (one read)."""

    def due_and_next(
        self, index: str, until: float, limit: int = 1000
    ) -> tuple[list[tuple[str, float]], float | None]:
        """``due`` plus the earliest time after ``until`` that a member of ``index`` is due
        (None: none), in one round trip where the backend allows (the timer service sleeps
        until that time instead of a whole tick)."""
        found = self.due(index, until, limit)
        later = [when for _, when in self.due(index, float("inf"), len(found) + 1) if when > until]
        return found, (later[0] if later else None)


# ---------------------------------------------------------------------- memory


class MemAtomicStore(AtomicStore):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, str] = {}
        self._sets: dict[str, set[str]] = {}
        self._due: dict[str, dict[str, float]] = {}

    def get(self, key: str) -> str | None:
        with self._lock:
            return self._values.get(key)

    def set(self, key: str, value: str) -> None:
        with self._lock:
            self._values[key] = value

    def put_if_absent(self, key: str, value: str) -> str | None:
        with self._lock:
            found = self._values.get(key)
            if found is None:
                self._values[key] = value
            return found

    def compare_and_set(self, key: str, expected: str | None, value: str | None) -> bool:
        with self._lock:
            if self._values.get(key) != expected:
                return False
            if value is None:
                self._values.pop(key, None)
            else:
                self._values[key] = value
            return True

    def incr(self, key: str) -> int:
        with self._lock:
            value = int(self._values.get(key) or 0) + 1
            self._values[key] = str(value)
            return value

    def add_member(self, key: str, member: str) -> None:
        with self._lock:
            self._sets.setdefault(key, set()).add(member)

    def remove_member(self, key: str, member: str) -> None:
        with self._lock:
            self._sets.get(key, set()).discard(member)

    def members(self, key: str) -> list[str]:
        with self._lock:
            return sorted(self._sets.get(key, ()))

    def schedule(self, index: str, member: str, due: float) -> None:
        with self._lock:
            self._due.setdefault(index, {})[member] = due

    def unschedule(self, index: str, member: str) -> None:
        with self._lock:
            self._due.get(index, {}).pop(member, None)

    def due(self, index: str, until: float, limit: int = 1000) -> list[tuple[str, float]]:
        return self.due_and_next(index, until, limit)[0]

    def due_and_next(
        self, index: str, until: float, limit: int = 1000
    ) -> tuple[list[tuple[str, float]], float | None]:
        with self._lock:
            entries = sorted((when, member) for member, when in self._due.get(index, {}).items())
        found = [(member, when) for when, member in entries if when <= until][:limit]
        later = min((when for when, _ in entries if when > until), default=None)
        return found, later


# ---------------------------------------------------------------------- SQLite

_SQLITE_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS pynenc_wf_atomic_kv "
    "(app TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (app, key))",
    "CREATE TABLE IF NOT EXISTS pynenc_wf_atomic_sets "
    "(app TEXT NOT NULL, key TEXT NOT NULL, member TEXT NOT NULL, PRIMARY KEY (app, key, member))",
    "CREATE TABLE IF NOT EXISTS pynenc_wf_atomic_due "
    "(app TEXT NOT NULL, idx TEXT NOT NULL, member TEXT NOT NULL, due REAL NOT NULL, "
    "PRIMARY KEY (app, idx, member))",
    "CREATE INDEX IF NOT EXISTS pynenc_wf_atomic_due_by_time "
    "ON pynenc_wf_atomic_due (app, idx, due)",
)


class SQLiteAtomicStore(AtomicStore):
    """Tables in the SQLite backend's own database file; each operation one transaction
    (``BEGIN IMMEDIATE`` takes the write lock before reading, so a read-modify-write is not
    interleaved with another process's)."""

    def __init__(self, db_path: str, app_id: str) -> None:
        self.db_path = db_path
        self.app_id = app_id
        self._created = False

    def _connect(self) -> sqlite3.Connection:
        # autocommit mode: transactions are opened explicitly below. The tables are created
        # by the first write, so that reading a store (a report, a query) never writes to it.
        conn = sqlite3.connect(self.db_path, timeout=30.0, isolation_level=None)
        return conn

    def _create(self, conn: sqlite3.Connection) -> None:
        if not self._created:
            for statement in _SQLITE_SCHEMA:
                conn.execute(statement)
            self._created = True

    def _read(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        conn = self._connect()
        try:
            return conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError as error:
            if "no such table" in str(error):
                return []  # nothing written yet
            raise
        finally:
            conn.close()

    def _write(self, sql: str, params: tuple[Any, ...]) -> None:
        conn = self._connect()
        try:
            self._create(conn)
            conn.execute(sql, params)
        finally:
            conn.close()

    def get(self, key: str) -> str | None:
        rows = self._read(
            "SELECT value FROM pynenc_wf_atomic_kv WHERE app = ? AND key = ?",
            (self.app_id, key),
        )
        return str(rows[0][0]) if rows else None

    def set(self, key: str, value: str) -> None:
        self._write(
            "INSERT OR REPLACE INTO pynenc_wf_atomic_kv (app, key, value) VALUES (?, ?, ?)",
            (self.app_id, key, value),
        )

    def put_if_absent(self, key: str, value: str) -> str | None:
        conn = self._connect()
        try:
            self._create(conn)
            conn.execute("BEGIN IMMEDIATE")
            rows = conn.execute(
                "SELECT value FROM pynenc_wf_atomic_kv WHERE app = ? AND key = ?",
                (self.app_id, key),
            ).fetchall()
            if rows:
                conn.execute("COMMIT")
                return str(rows[0][0])
            conn.execute(
                "INSERT INTO pynenc_wf_atomic_kv (app, key, value) VALUES (?, ?, ?)",
                (self.app_id, key, value),
            )
            conn.execute("COMMIT")
            return None
        finally:
            conn.close()

    def put_many_if_absent(self, items: list[tuple[str, str]]) -> list[bool]:
        conn = self._connect()
        try:
            self._create(conn)
            conn.execute("BEGIN IMMEDIATE")
            stored = []
            for key, value in items:
                cursor = conn.execute(
                    "INSERT OR IGNORE INTO pynenc_wf_atomic_kv (app, key, value) VALUES (?, ?, ?)",
                    (self.app_id, key, value),
                )
                stored.append(cursor.rowcount == 1)
            conn.execute("COMMIT")
            return stored
        finally:
            conn.close()

    def compare_and_set(self, key: str, expected: str | None, value: str | None) -> bool:
        conn = self._connect()
        try:
            self._create(conn)
            conn.execute("BEGIN IMMEDIATE")
            rows = conn.execute(
                "SELECT value FROM pynenc_wf_atomic_kv WHERE app = ? AND key = ?",
                (self.app_id, key),
            ).fetchall()
            found = str(rows[0][0]) if rows else None
            if found != expected:
                conn.execute("COMMIT")
                return False
            if value is None:
                conn.execute(
                    "DELETE FROM pynenc_wf_atomic_kv WHERE app = ? AND key = ?",
                    (self.app_id, key),
                )
            else:
                conn.execute(
                    "INSERT OR REPLACE INTO pynenc_wf_atomic_kv (app, key, value) "
                    "VALUES (?, ?, ?)",
                    (self.app_id, key, value),
                )
            conn.execute("COMMIT")
            return True
        finally:
            conn.close()

    def incr(self, key: str) -> int:
        conn = self._connect()
        try:
            self._create(conn)
            conn.execute("BEGIN IMMEDIATE")
            rows = conn.execute(
                "SELECT value FROM pynenc_wf_atomic_kv WHERE app = ? AND key = ?",
                (self.app_id, key),
            ).fetchall()
            value = (int(rows[0][0]) if rows else 0) + 1
            conn.execute(
                "INSERT OR REPLACE INTO pynenc_wf_atomic_kv (app, key, value) VALUES (?, ?, ?)",
                (self.app_id, key, str(value)),
            )
            conn.execute("COMMIT")
            return value
        finally:
            conn.close()

    def add_member(self, key: str, member: str) -> None:
        self._write(
            "INSERT OR IGNORE INTO pynenc_wf_atomic_sets (app, key, member) VALUES (?, ?, ?)",
            (self.app_id, key, member),
        )

    def remove_member(self, key: str, member: str) -> None:
        self._write(
            "DELETE FROM pynenc_wf_atomic_sets WHERE app = ? AND key = ? AND member = ?",
            (self.app_id, key, member),
        )

    def members(self, key: str) -> list[str]:
        rows = self._read(
            "SELECT member FROM pynenc_wf_atomic_sets WHERE app = ? AND key = ? ORDER BY member",
            (self.app_id, key),
        )
        return [str(row[0]) for row in rows]

    def schedule(self, index: str, member: str, due: float) -> None:
        self._write(
            "INSERT OR REPLACE INTO pynenc_wf_atomic_due (app, idx, member, due) "
            "VALUES (?, ?, ?, ?)",
            (self.app_id, index, member, due),
        )

    def unschedule(self, index: str, member: str) -> None:
        self._write(
            "DELETE FROM pynenc_wf_atomic_due WHERE app = ? AND idx = ? AND member = ?",
            (self.app_id, index, member),
        )

    def schedule_many(self, index: str, members: list[str], due: float) -> None:
        conn = self._connect()
        try:
            self._create(conn)
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "INSERT OR REPLACE INTO pynenc_wf_atomic_due (app, idx, member, due) "
                "VALUES (?, ?, ?, ?)",
                [(self.app_id, index, member, due) for member in members],
            )
            conn.execute("COMMIT")
        finally:
            conn.close()

    def unschedule_many(self, index: str, members: list[str]) -> None:
        conn = self._connect()
        try:
            self._create(conn)
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "DELETE FROM pynenc_wf_atomic_due WHERE app = ? AND idx = ? AND member = ?",
                [(self.app_id, index, member) for member in members],
            )
            conn.execute("COMMIT")
        finally:
            conn.close()

    _DUE_SQL = (
        "SELECT member, due FROM pynenc_wf_atomic_due WHERE app = ? AND idx = ? AND due <= ? "
        "ORDER BY due, member LIMIT ?"
    )

    def due(self, index: str, until: float, limit: int = 1000) -> list[tuple[str, float]]:
        rows = self._read(self._DUE_SQL, (self.app_id, index, until, limit))
        return [(str(member), float(when)) for member, when in rows]

    def due_and_next(
        self, index: str, until: float, limit: int = 1000
    ) -> tuple[list[tuple[str, float]], float | None]:
        conn = self._connect()
        try:
            rows = conn.execute(self._DUE_SQL, (self.app_id, index, until, limit)).fetchall()
            later = conn.execute(  # the (app, idx, due) index answers this at once
                "SELECT MIN(due) FROM pynenc_wf_atomic_due WHERE app = ? AND idx = ? AND due > ?",
                (self.app_id, index, until),
            ).fetchone()[0]
        except sqlite3.OperationalError as error:
            if "no such table" in str(error):
                return [], None  # nothing written yet
            raise
        finally:
            conn.close()
        found = [(str(member), float(when)) for member, when in rows]
        return found, (None if later is None else float(later))


# ---------------------------------------------------------------------- Redis

# KEYS[1]: the key; ARGV[1]: expected ("" with ARGV[3] == "1": absent); ARGV[2]: new value
# (ARGV[4] == "1": delete). Returns 1 if replaced.
_CAS_SCRIPT = """
local current = redis.call('GET', KEYS[1])
if ARGV[3] == '1' then
  if current then return 0 end
elseif current ~= ARGV[1] then
  return 0
end
if ARGV[4] == '1' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[2]) end
return 1
"""


class RedisAtomicStore(AtomicStore):
    """Redis' own atomic commands on the state backend's client, under the app's prefix."""

    def __init__(self, client: Any, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self._cas = client.register_script(_CAS_SCRIPT)

    def _key(self, key: str) -> str:
        return self.prefix + key

    @staticmethod
    def _text(value: Any) -> str:
        return value.decode() if isinstance(value, bytes) else str(value)

    def get(self, key: str) -> str | None:
        value = self.client.get(self._key(key))
        return None if value is None else self._text(value)

    def set(self, key: str, value: str) -> None:
        self.client.set(self._key(key), value)

    def put_if_absent(self, key: str, value: str) -> str | None:
        full = self._key(key)
        while True:
            if self.client.set(full, value, nx=True):
                return None
            found = self.client.get(full)
            if found is not None:  # else deleted in between: try again
                return self._text(found)

    def put_many_if_absent(self, items: list[tuple[str, str]]) -> list[bool]:
        pipe = self.client.pipeline(transaction=False)
        for key, value in items:
            pipe.set(self._key(key), value, nx=True)
        return [bool(done) for done in pipe.execute()]

    def compare_and_set(self, key: str, expected: str | None, value: str | None) -> bool:
        args = [expected or "", value or "", "1" if expected is None else "0",
                "1" if value is None else "0"]
        return bool(self._cas(keys=[self._key(key)], args=args))

    def incr(self, key: str) -> int:
        return int(self.client.incr(self._key(key)))

    def add_member(self, key: str, member: str) -> None:
        self.client.sadd(self._key(key), member)

    def remove_member(self, key: str, member: str) -> None:
        self.client.srem(self._key(key), member)

    def members(self, key: str) -> list[str]:
        return sorted(self._text(m) for m in self.client.smembers(self._key(key)))

    def schedule(self, index: str, member: str, due: float) -> None:
        self.client.zadd(self._key(index), {member: due})

    def unschedule(self, index: str, member: str) -> None:
        self.client.zrem(self._key(index), member)

    def schedule_many(self, index: str, members: list[str], due: float) -> None:
        if members:
            self.client.zadd(self._key(index), dict.fromkeys(members, due))

    def unschedule_many(self, index: str, members: list[str]) -> None:
        if members:
            self.client.zrem(self._key(index), *members)

    def due(self, index: str, until: float, limit: int = 1000) -> list[tuple[str, float]]:
        rows = self.client.zrangebyscore(
            self._key(index), "-inf", until, start=0, num=limit, withscores=True
        )
        return [(self._text(member), float(score)) for member, score in rows]

    def due_and_next(
        self, index: str, until: float, limit: int = 1000
    ) -> tuple[list[tuple[str, float]], float | None]:
        pipe = self.client.pipeline(transaction=False)  # one round trip
        pipe.zrangebyscore(self._key(index), "-inf", until, start=0, num=limit, withscores=True)
        pipe.zrangebyscore(self._key(index), f"({until!r}", "+inf", start=0, num=1, withscores=True)
        rows, later = pipe.execute()
        found = [(self._text(member), float(score)) for member, score in rows]
        return found, (float(later[0][1]) if later else None)


# ---------------------------------------------------------------------- per app

# Per state-backend object (a weak key: an app rebuilt with a new backend gets a new store).
_STORES: weakref.WeakKeyDictionary[Any, AtomicStore] = weakref.WeakKeyDictionary()
_STORES_LOCK = threading.Lock()


def _build(app: Pynenc) -> AtomicStore:
    backend = app.state_backend
    from pynenc.state_backend.mem_state_backend import MemStateBackend
    from pynenc.state_backend.sqlite_state_backend import SQLiteStateBackend

    if isinstance(backend, SQLiteStateBackend):
        return SQLiteAtomicStore(str(backend.sqlite_db_path), app.app_id)
    if isinstance(backend, MemStateBackend):
        return MemAtomicStore()
    try:
        from pynenc_redis.state_backend.redis_state_backend import (  # type: ignore[import-untyped]
            RedisStateBackend,
        )
    except ImportError:  # pragma: no cover - pynenc-redis not installed
        RedisStateBackend = None
    if RedisStateBackend is not None and isinstance(backend, RedisStateBackend):
        # Under the backend's own key prefix: a backend that namespaces its keys (several
        # stores in one Redis database) keeps the engine's keys apart the same way.
        key = getattr(backend, "key", None)
        base = getattr(key, "prefix", None)
        prefix = base if isinstance(base, str) and base else f"pynenc:{app.app_id}:state_backend:"
        return RedisAtomicStore(backend.client, f"{prefix}wf_atomic:")
    raise UnsupportedStateBackend(
        f"app {app.app_id!r} uses state backend {type(backend).__name__}, for which the "
        "durable-workflow engine has no atomic operations (signal slots, workflow ids, "
        "wake-ups across processes need them). Use pynenc's SQLite or Memory backend or "
        "pynenc-redis' Redis backend, or add an AtomicStore for it in "
        "pynenc_wf_testing.engine.atomic."
    )


def atomic_store(app: Pynenc) -> AtomicStore:
    """The atomic operations on ``app``'s store (built once per app and backend object)."""
    backend = app.state_backend
    with _STORES_LOCK:
        store = _STORES.get(backend)
        if store is None:
            store = _build(app)
            _STORES[backend] = store
        return store
