"""One cached SQLite connection per simulated store, instead of one per operation.

pynenc's SQLite components open a new connection (five PRAGMAs each) for every operation:
``with sqlite_conn(self.sqlite_db_path) as conn:`` where ``sqlite_conn`` is a module-level name
imported into each component module. A subclass cannot reach that name without copying every
method (about 90), so while a simulated store is open the name is replaced in those modules
(and ``pynenc.util.sqlite_utils.create_sqlite_connection`` itself) with :func:`_connect`: for a
database file of a simulated store it hands out one cached connection when that connection is
idle (not inside a ``with`` block and not in a transaction) and a new one otherwise, exactly
what pynenc does. Every ``with`` block still commits (or rolls back) at its end: data becomes
durable at the same points as with pynenc's own connections. Other paths get pynenc's own
connections. (``SQLiteClientDataStore`` calls ``sqlite3.connect`` itself, only for values above
its size threshold: left as it is.)

Installed when the first store registers its file (:func:`register_pool`) and undone by its
:class:`PatchSet` when the last one is unregistered (:func:`unregister_pool`).
"""

from __future__ import annotations

import sqlite3
import weakref
from collections.abc import Callable
from typing import Any, Self

import pynenc.broker.sqlite_broker as _broker_mod
import pynenc.orchestrator.sqlite_orchestrator as _orch_mod
import pynenc.state_backend.sqlite_state_backend as _sb_mod
import pynenc.trigger.sqlite_trigger as _trigger_mod
import pynenc.util.sqlite_utils as _sqlite_utils
from pynenc.util.sqlite_utils import SQLiteConnection

from pynenc_wf_testing.runtime.monkeypatches.registry import PatchSet

__all__ = ["POOLS", "register_pool", "unregister_pool"]

_ORIGINAL_CONNECT: Callable[[Any], SQLiteConnection] = _sqlite_utils.create_sqlite_connection
_PATCHED_MODULES: tuple[tuple[Any, str], ...] = (
    (_orch_mod, "sqlite_conn"),
    (_sb_mod, "sqlite_conn"),
    (_broker_mod, "sqlite_conn"),
    (_trigger_mod, "sqlite_conn"),
    (_sqlite_utils, "create_sqlite_connection"),
)
#: database path -> its pool, while a simulated store uses that file.
POOLS: dict[str, _Pool] = {}
_patches = PatchSet()


class _PooledConnection(SQLiteConnection):  # type: ignore[misc]
    """pynenc's connection wrapper that knows whether a ``with`` block is using it."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        super().__init__(conn)
        self.depth = 0

    def __enter__(self) -> Self:
        self._conn.__enter__()
        self.depth += 1
        return self

    def __exit__(self, exc_type: object, exc_val: object, exc_tb: object) -> None:
        self.depth -= 1
        self._conn.__exit__(exc_type, exc_val, exc_tb)


class _Pool:
    """The cached connection of one database file, plus the extra ones handed out while it
    was busy (kept weakly, so a crash can close what a dead invocation left open)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.conn: _PooledConnection | None = None
        self.extra: weakref.WeakSet[SQLiteConnection] = weakref.WeakSet()

    def get(self) -> SQLiteConnection:
        conn = self.conn
        if conn is None:
            conn = self.conn = _PooledConnection(_ORIGINAL_CONNECT(self.path)._conn)
            # pynenc sets synchronous=NORMAL: in WAL mode that fsyncs only at checkpoints.
            # A commit still writes its WAL frames to the file before it returns, so a killed
            # process loses nothing it committed; only an operating-system crash could, and
            # no simulation models one. Skipping the checkpoint fsyncs is worth ~20%.
            conn._conn.execute("PRAGMA synchronous=OFF")
        if conn.depth == 0:
            if conn.in_transaction:
                # Left open outside a ``with`` block: pynenc's own connection would have been
                # garbage-collected, which rolls back.
                conn.rollback()
            return conn
        extra = _ORIGINAL_CONNECT(self.path)
        self.extra.add(extra)
        return extra

    def close(self) -> None:
        """Close every connection of this file, rolling back what is uncommitted (what the
        operating system does to the connections of a process that dies)."""
        conns: list[Any] = list(self.extra)
        if self.conn is not None:
            conns.append(self.conn)
        self.conn = None
        self.extra = weakref.WeakSet()
        for conn in conns:
            try:
                if conn.in_transaction:
                    conn.rollback()
                conn.close()
            except sqlite3.Error:  # pragma: no cover - already closed
                pass
        # A connection this pool never saw (pynenc's client data store opens its own, and a
        # traceback can keep one alive) would leave the data in the -wal file until the
        # garbage collector closes it; its checkpoint then rewrites the main file later,
        # under whoever reads it. Checkpoint now: the file is complete when the store closes.
        try:
            checkpoint = sqlite3.connect(self.path)
            try:
                checkpoint.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                checkpoint.close()
        except sqlite3.Error:  # pragma: no cover - file gone or locked: nothing to move
            pass


def _connect(sqlite_db_path: Any) -> SQLiteConnection:
    pool = POOLS.get(str(sqlite_db_path))
    if pool is None:
        return _ORIGINAL_CONNECT(sqlite_db_path)
    return pool.get()


def register_pool(path: str) -> _Pool:
    """The pool of ``path``, a simulated store's database file (the first one installs the
    patch)."""
    if not POOLS:
        for module, name in _PATCHED_MODULES:
            _patches.set_attr(module, name, _connect)
    pool = POOLS.get(path)
    if pool is None:
        pool = POOLS[path] = _Pool(path)
    return pool


def unregister_pool(path: str) -> None:
    """Close the connections of ``path`` (the last one undoes the patch)."""
    pool = POOLS.pop(path, None)
    if pool is not None:
        pool.close()
    if not POOLS:
        _patches.undo()
