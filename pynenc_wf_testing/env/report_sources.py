"""Report models read from a production store or a history file, never written to.

An operator looks at a live system the way a test author looks at a test: these functions
read what pynenc and the engine stored and return the :class:`~pynenc_wf_testing.env.
report_model.ReportData` that ``render_text``/``render_html`` draw.

- :func:`read_sqlite_store`: pynenc's SQLite store (the file a ``PynencBuilder().sqlite(...)``
  app writes), opened with ``immutable=1``, or copied first while a ``-wal`` file shows a
  live database (see ``_open_read_only``): the file, its side files and their bytes stay as
  they were.
- :func:`read_redis_store`: a Redis server (pynenc-redis's key layout), with read commands
  only (``SCAN``, ``GET``, ``LRANGE``).
- :func:`read_history`: a ``pynenc-wf-history`` document (``env.history_json()``,
  ``--wf-record``, ``pynenc-wf export``).

What a store gives: every invocation of the app (task, parent, workflow), pynenc's status
history of each with its real timestamps and the runner that wrote it, and the workflows'
data (the engine's timers, signals, halts, retries). From it: step names (``charge#2``, by
order of first record within the calling workflow, as the simulator names them), runs (each
``RUNNING`` record starts one; ``SUCCESS``/``FAILED``/``RETRY`` end it; ``RUNNING_RECOVERY``
or ``KILLED`` mark it ``crashed``, grouped per runner into one crash line), the steps table
and, for an unfinished workflow, what it waits for (a timer until its deadline, a signal wait
with a timeout, a halt, a child that has not finished). Payloads are read as JSON, never
unpickled: reading a store runs no code of the app, so the app's modules need not import.

Errors (:class:`~pynenc_wf_testing.errors.StoreReadError`) name the problem and the fix: a
missing file, a file that is not a database or holds no pynenc store, an unknown app id (the
message lists the ones present), an unreachable Redis server, an unknown workflow id.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pynenc_wf_testing.engine import schema as engine_schema
from pynenc_wf_testing.env.report_model import InvocationView, ReportData, RunView, run_links
from pynenc_wf_testing.errors import HistoryFormatError, StoreReadError
from pynenc_wf_testing.runtime.history import Step

if TYPE_CHECKING:
    import sqlite3

__all__ = ["read_history", "read_redis_store", "read_sqlite_store"]

#: pynenc statuses that end a run, and the run's outcome.
_ENDS = {
    "success": "success",
    "failed": "failed",
    "retry": "retry",
    "killed": "crashed",
    "running_recovery": "crashed",
    "paused": "suspended",  # a durable wait gave its worker back (or a halt)
}
_FINAL = ("success", "failed")

_EPOCH_ISO = "1970-01-01T00:00:00+00:00"
#: pynenc's own workflow-data prefixes of deterministic values (``random:1`` ...).
_PYNENC_VALUES = ("random:", "uuid:", "utc_now:", "time:")


@dataclass
class _Record:
    """One invocation row of a store."""

    invocation_id: str
    task: str
    parent_invocation_id: str | None
    workflow_id: str | None
    parent_workflow_id: str | None
    statuses: list[tuple[str, str, str | None]] = field(default_factory=list)  # iso, status, runner

    @property
    def is_workflow(self) -> bool:
        return self.workflow_id == self.invocation_id

    @property
    def owner(self) -> str | None:
        """The workflow its routing and result belong to (a sub-workflow's: the parent)."""
        if self.is_workflow:
            return self.parent_workflow_id or None
        return self.workflow_id or None


# ---------------------------------------------------------------------- SQLite


def read_sqlite_store(
    path: str | os.PathLike[str], *, app_id: str | None = None, workflow_id: str | None = None
) -> ReportData:
    """The report model of pynenc's SQLite store at ``path``, read-only.

    ``app_id``: the app whose tables to read; may be omitted when the file holds one app.
    ``workflow_id``: only that workflow, its sub-workflows and their tasks.
    """
    import sqlite3

    if not isinstance(path, (str, os.PathLike)):
        from pynenc_wf_testing.errors import InvalidArgument

        raise InvalidArgument(
            f"read_sqlite_store() expects the path of a SQLite file, got "
            f"{type(path).__name__}: {path!r}."
        )
    text = os.fspath(path)
    where = f"--sqlite {text!r}"
    if not os.path.exists(text):
        raise StoreReadError(f"{where}: no such file; give the path of the app's SQLite database.")
    if os.path.isdir(text):
        raise StoreReadError(f"{where} is a directory; give the database file.")
    if not os.access(text, os.R_OK):
        raise StoreReadError(f"{where}: permission denied.")
    import tempfile

    with tempfile.TemporaryDirectory(prefix="pynenc-wf-report-") as workdir:
        try:
            conn = _open_read_only(text, workdir)
        except (sqlite3.Error, OSError) as error:
            raise StoreReadError(f"{where}: cannot open it read-only ({error}).") from None
        return _read_sqlite(conn, text, where, app_id, workflow_id)


def _open_read_only(path: str, workdir: str) -> sqlite3.Connection:
    """A connection that cannot change ``path`` or its side files.

    Without a ``-wal`` file everything is in the main file, and ``immutable=1`` reads it in
    place without locks, creating no side file. A ``-wal`` file means a live database, whose
    readers write their read marks into the ``-shm`` file: the main file and the ``-wal``
    are copied instead (the main file's size and mtime checked unchanged across the copy, so
    no checkpoint ran in between; a frame the writer was appending fails its checksum and is
    ignored), and the copy is read.
    """
    import shutil
    import sqlite3

    if not os.path.exists(path + "-wal"):
        uri = "file:" + os.path.abspath(path).replace("?", "%3f").replace("#", "%23")
        return sqlite3.connect(uri + "?immutable=1", uri=True)
    copy = os.path.join(workdir, "snapshot.db")
    for _ in range(5):
        before = os.stat(path)
        shutil.copyfile(path, copy)
        if os.path.exists(path + "-wal"):
            shutil.copyfile(path + "-wal", copy + "-wal")
        after = os.stat(path)
        if (before.st_size, before.st_mtime_ns) == (after.st_size, after.st_mtime_ns):
            break
    return sqlite3.connect(copy)


def _read_sqlite(
    conn: sqlite3.Connection, text: str, where: str, app_id: str | None, workflow_id: str | None
) -> ReportData:
    import sqlite3

    try:
        try:
            tables = sorted(
                row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            )
        except sqlite3.DatabaseError as error:
            raise StoreReadError(
                f"{where}: not a SQLite database ({error}); give the file a pynenc app's "
                "SQLite backend writes (PynencBuilder().sqlite(path))."
            ) from None
        suffix = "__state_backend_invocations"
        prefixes = [t[: -len(suffix)] for t in tables if t.endswith(suffix)]
        # Table names hold a sanitized app id (``shop_8d9001d3``); pynenc's app info row
        # holds the app id itself.
        apps = {_sqlite_app_id(conn, prefix, tables): prefix for prefix in prefixes}
        name = _choose_app(sorted(apps), app_id, where, "the file", aliases=apps)
        prefix = apps[name]
        records = _sqlite_records(conn, prefix)
        data = _sqlite_data(conn, prefix)
    except sqlite3.DatabaseError as error:
        raise StoreReadError(f"{where}: reading the store failed ({error}).") from None
    finally:
        conn.close()
    source = f"sqlite store {text}, app {name}"
    return _from_store(records, data, source, workflow_id)


def _sqlite_app_id(conn: sqlite3.Connection, prefix: str, tables: list[str]) -> str:
    table = f"{prefix}__state_backend_app_info"
    if table in tables:
        row = conn.execute(f"SELECT app_id FROM {table} LIMIT 1").fetchone()
        if row and isinstance(row[0], str):
            return row[0]
    return prefix


def _choose_app(
    apps: list[str], app_id: str | None, where: str, what: str,
    aliases: Mapping[str, str] | None = None,
) -> str:
    """The app to read: ``app_id`` among ``apps`` (or one of their ``aliases``: the table
    prefix of a SQLite app), or the only one."""
    if not apps:
        raise StoreReadError(
            f"{where}: {what} holds no pynenc store (no state backend tables/keys); give the "
            "database a pynenc app writes to."
        )
    if app_id is None:
        if len(apps) > 1:
            raise StoreReadError(
                f"{where}: {what} holds the stores of several apps ({', '.join(apps)}); "
                "choose one with --app-id."
            )
        return apps[0]
    if app_id in apps:
        return app_id
    for name, alias in (aliases or {}).items():
        if alias == app_id:
            return name
    raise StoreReadError(
        f"{where}: no store of app {app_id!r}; {what} holds: {', '.join(apps)}. "
        "Give one of these with --app-id."
    )


def _sqlite_records(conn: sqlite3.Connection, prefix: str) -> dict[str, _Record]:
    table = f"{prefix}__state_backend"
    records: dict[str, _Record] = {}
    for row in conn.execute(
        f"SELECT invocation_id, task_id_key, parent_invocation_id, workflow_id, "
        f"parent_workflow_id FROM {table}_invocations"
    ):
        records[row[0]] = _Record(row[0], row[1], row[2] or None, row[3] or None, row[4] or None)
    for inv_id, history_json in conn.execute(
        f"SELECT invocation_id, history_json FROM {table}_history "
        "ORDER BY history_timestamp, rowid"
    ):
        record = records.get(inv_id)
        if record is not None:
            record.statuses.append(_status_entry(history_json))
    return records


def _sqlite_data(conn: sqlite3.Connection, prefix: str) -> dict[str, list[tuple[str, Any]]]:
    found: dict[str, list[tuple[str, Any]]] = {}
    for wf_id, key, value in conn.execute(
        f"SELECT workflow_id, data_key, data_value FROM {prefix}__state_backend_workflow_data "
        "ORDER BY rowid"
    ):
        found.setdefault(wf_id, []).append((key, _decode(value)))
    return found


def _status_entry(history_json: str | bytes) -> tuple[str, str, str | None]:
    entry = json.loads(history_json)
    record = entry.get("status_record") or {}
    when = record.get("timestamp") or entry.get("_timestamp")
    return _normal_iso(str(when)), str(record.get("status")), record.get("runner_id")


def _normal_iso(text: str) -> str:
    when = dt.datetime.fromisoformat(text)
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC).isoformat()


def _decode(value: Any) -> Any:
    """A stored payload as JSON (pynenc's jsonpickle writes JSON); never unpickled."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


# ---------------------------------------------------------------------- Redis


def read_redis_store(
    redis: str | Any, *, app_id: str | None = None, workflow_id: str | None = None
) -> ReportData:
    """The report model of a pynenc-redis store: ``redis`` is a URL (``redis://host:6379/0``)
    or a ``redis.Redis`` client. Only read commands are sent. ``app_id`` may be omitted when
    the server holds one app; ``workflow_id`` as for :func:`read_sqlite_store`."""
    if not isinstance(redis, str) and not hasattr(redis, "scan_iter"):
        from pynenc_wf_testing.errors import InvalidArgument

        raise InvalidArgument(
            f"read_redis_store() expects a redis URL (redis://host:6379/0) or a redis.Redis "
            f"client, got {type(redis).__name__}: {redis!r}."
        )
    if isinstance(redis, str):
        import redis as redis_lib

        where = f"--redis {redis!r}"
        try:
            client = redis_lib.Redis.from_url(redis, socket_timeout=5, socket_connect_timeout=5)
        except ValueError as error:
            raise StoreReadError(
                f"{where}: not a Redis URL ({error}); e.g. redis://127.0.0.1:6379/0."
            ) from None
    else:
        client = redis
        where = "redis client"
    try:
        return _read_redis(client, where, app_id, workflow_id)
    except StoreReadError:
        raise
    except Exception as error:
        name = type(error).__name__
        if "Connection" in name or "Timeout" in name or isinstance(error, OSError):
            raise StoreReadError(
                f"{where}: cannot reach the Redis server ({error}); check the URL and that "
                "the server runs."
            ) from None
        raise StoreReadError(f"{where}: reading the store failed ({name}: {error}).") from None
    finally:
        if isinstance(redis, str):
            client.close()


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _glob(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[]\\" else c for c in text)


def _read_redis(client: Any, where: str, app_id: str | None, workflow_id: str | None) -> ReportData:
    base = "__pynenc__:"
    marker = ":state_backend:invocation:"
    apps = sorted(
        {
            key[len(base): key.index(marker)]
            for key in (_text(k) for k in client.scan_iter(f"{base}*{marker}*", count=1000))
            if key.startswith(base) and marker in key
        }
    )
    app = _choose_app(apps, app_id, where, "the server")
    prefix = f"{base}{app}:state_backend:"
    records: dict[str, _Record] = {}
    for raw in client.scan_iter(_glob(prefix + "invocation:") + "*", count=1000):
        value = client.get(raw)
        if value is None:
            continue
        row = json.loads(_text(value))
        inv_id = str(row["invocation_id"])
        records[inv_id] = _Record(
            inv_id, str(row["task_id_key"]), row.get("parent_invocation_id") or None,
            row.get("workflow_id") or None, row.get("parent_workflow_id") or None,
        )
    for inv_id, record in records.items():
        entries = [_status_entry(_text(h)) for h in client.lrange(prefix + f"history:{inv_id}", 0, -1)]
        record.statuses = sorted(entries, key=lambda entry: entry[0])
    data: dict[str, list[tuple[str, Any]]] = {}
    head = prefix + "workflow:"
    for raw in client.scan_iter(_glob(head) + "*:data:*", count=1000):
        wf_id, marker_, key = _text(raw)[len(head):].partition(":data:")
        value = client.get(raw)
        if marker_ and ":" not in wf_id and value is not None:
            data.setdefault(wf_id, []).append((key, _decode(value)))
    for items in data.values():
        items.sort(key=lambda item: item[0])  # Redis keeps no write order: by key, stably
    source = f"redis store {where.removeprefix('--redis ').strip(chr(39))}, app {app}"
    return _from_store(records, data, source, workflow_id, write_order=False)


# ---------------------------------------------------------------------- store -> model


def _unique_prefix(wanted: str, ids: Iterable[str]) -> str:
    """``wanted``, or the one id it is a prefix of (the short ids the reports show)."""
    matches = [i for i in ids if i.startswith(wanted)]
    return matches[0] if len(matches) == 1 else wanted


def _selected(records: dict[str, _Record], workflow_id: str | None, source: str) -> list[_Record]:
    if workflow_id is None:
        return list(records.values())
    root = records.get(workflow_id)
    if root is None or not root.is_workflow:
        known = sorted(r.invocation_id for r in records.values() if r.is_workflow and not r.owner)
        listed = ", ".join(known[:5]) + (", ..." if len(known) > 5 else "")
        raise StoreReadError(
            f"{source}: no workflow {workflow_id!r}; its top-level workflows are: "
            f"{listed or 'none'}. Give one of them with --workflow-id."
        )
    keep = {workflow_id}
    changed = True
    while changed:  # sub-workflows of sub-workflows
        changed = False
        for record in records.values():
            if record.is_workflow and record.parent_workflow_id in keep and record.invocation_id not in keep:
                keep.add(record.invocation_id)
                changed = True
    return [
        r for r in records.values()
        if r.invocation_id in keep or r.workflow_id in keep or r.parent_invocation_id in keep
    ]


def _from_store(
    records: dict[str, _Record],
    data: dict[str, list[tuple[str, Any]]],
    source: str,
    workflow_id: str | None,
    *,
    write_order: bool = True,
) -> ReportData:
    """The model of a store's ``records`` and workflow ``data`` (``write_order``: the data
    of each workflow is listed in the order it was written)."""
    if workflow_id is not None:
        workflow_id = _unique_prefix(
            workflow_id, sorted(r.invocation_id for r in records.values() if r.is_workflow)
        )
    chosen = _selected(records, workflow_id, source)
    # Order of first record; ties by id, so that the same store always reads the same.
    chosen.sort(key=lambda r: (r.statuses[0][0] if r.statuses else "~", r.invocation_id))
    names: dict[str, str] = {}
    counters: dict[tuple[str | None, str], int] = {}
    for record in chosen:
        func = record.task.rsplit(".", 1)[-1]
        slot = (record.owner, func)
        counters[slot] = counters.get(slot, 0) + 1
        names[record.invocation_id] = f"{func}#{counters[slot]}"

    steps: list[tuple[str, int, Step]] = []  # (iso, order, step)
    runs: list[RunView] = []
    crashes: dict[str, list[tuple[str, str, _Record]]] = {}  # runner -> [(iso, status, record)]
    for record in chosen:
        inv_id, name, owner = record.invocation_id, names[record.invocation_id], record.owner
        open_run: tuple[str, str | None] | None = None  # (started, runner)
        attempt = 0
        for position, (when, status, runner) in enumerate(record.statuses):
            if position == 0:
                steps.append((when, len(steps), Step(
                    0, "route", f"route:{name}", owner, inv_id, when, record.task,
                )))
            if status == "running":
                if open_run is not None:  # a second start without an end: the first was lost
                    attempt += 1
                    runs.append(RunView(inv_id, name, attempt, "crashed", open_run[0], when))
                open_run = (when, runner)
                continue
            if status in _FINAL:
                steps.append((when, len(steps), Step(
                    0, "result", name, owner, inv_id, when, record.task, {"status": status},
                )))
            elif status == "retry":
                steps.append((when, len(steps), Step(
                    0, "retry", f"retry:{name}", owner, inv_id, when, record.task,
                )))
            outcome = _ENDS.get(status)
            if outcome is not None and open_run is None and status in (*_FINAL, "retry"):
                # Its RUNNING record was lost: pynenc's SQLite history keeps one row per
                # (invocation, instant, status), so a run that ends at the instant another
                # one started (a retry at once, on a frozen clock) shares its row.
                open_run = (record.statuses[position - 1][0] if position else when, runner)
            if outcome is not None and open_run is not None:
                attempt += 1
                runs.append(RunView(inv_id, name, attempt, outcome, open_run[0], when))
                if outcome == "crashed":
                    lost = open_run[1] or "unknown"
                    crashes.setdefault(lost, []).append((when, status, record))
                open_run = None
        if open_run is not None:
            attempt += 1
            runs.append(RunView(inv_id, name, attempt, "running", open_run[0], None))

    for runner, hits in crashes.items():
        when = min(at for at, _, _ in hits)
        killed = all(status == "killed" for _, status, _ in hits)
        reason = (
            f"runner {runner[:8]} stopped: its invocations were killed and rerouted" if killed
            else f"runner {runner[:8]} lost: pynenc recovered its invocations"
        )
        # Shown inside the innermost workflow the crash interrupted, if there is one.
        hit_wfs = {r.invocation_id if r.is_workflow else r.workflow_id for _, _, r in hits}
        outer = {r.parent_workflow_id for _, _, r in hits if r.is_workflow}
        inner = sorted(wf for wf in hit_wfs if wf and wf not in outer)
        steps.append((when, len(steps), Step(
            None, "crash", "worker-lost", inner[0] if len(inner) == 1 else None, None, when,
            None, {"reason": reason, "worker": runner[:8]},
        )))

    first_run = {r.invocation_id: r.started for r in reversed(runs)}
    statuses = {r.invocation_id: (r.statuses[-1][1] if r.statuses else "unknown") for r in chosen}
    times = {
        r.invocation_id: (
            r.statuses[0][0], r.statuses[-1][0] if r.statuses[-1][1] in _FINAL else None
        )
        for r in chosen if r.statuses
    }
    blocked: dict[str, str] = {}
    for record in chosen:
        if not record.is_workflow:
            continue
        items = data.get(record.invocation_id, [])
        began = first_run.get(record.invocation_id) or (
            record.statuses[0][0] if record.statuses else _EPOCH_ISO
        )
        for when, step in _data_steps(items, record, names, times, began, write_order):
            steps.append((when, len(steps), step))
        if statuses[record.invocation_id] not in _FINAL:
            waits = _waiting_on(items, record, chosen, names, statuses)
            if waits:
                blocked[record.invocation_id] = waits

    steps.sort(key=lambda item: (item[0], item[1]))
    numbered: list[Step] = []
    number = 0
    for _, _, step in steps:
        if step.number is not None:
            number += 1
            step = step._replace(number=number)
        numbered.append(step)
    invocations = tuple(
        InvocationView(
            invocation_id=r.invocation_id,
            name=names[r.invocation_id],
            task=r.task,
            is_workflow=r.is_workflow,
            status=statuses[r.invocation_id],
            parent_invocation_id=r.parent_invocation_id,
            owner_workflow_id=r.owner,
            workflow_id=r.workflow_id,
            first_seen=r.statuses[0][0] if r.statuses else None,
            blocked=blocked.get(r.invocation_id),
            **(run_links(dict(data.get(r.invocation_id, []))) if r.is_workflow else {}),
        )
        for r in chosen
    )
    instants = [s.time for s in numbered] + [r.started for r in runs]
    start = min(instants, default=_EPOCH_ISO)
    now = max(instants + [r.finished for r in runs if r.finished], default=start)
    notes = (f"workflow {workflow_id} only",) if workflow_id else ()
    return ReportData(
        source=source,
        clock="real",
        start=start,
        now=now,
        invocations=invocations,
        steps=tuple(numbered),
        runs=tuple(sorted(runs, key=lambda r: (r.started, r.invocation_id, r.attempt))),
        notes=notes,
    )


def _data_steps(
    items: list[tuple[str, Any]],
    record: _Record,
    names: dict[str, str],
    times: dict[str, tuple[str, str | None]],
    began: str,
    write_order: bool,
) -> Iterable[tuple[str, Step]]:
    """The workflow's recorded data as steps.

    A record's instant: its own where it carries or implies one (a timer's wake-up is its
    deadline, a signal's arrival its ``at``, a child's id the child's routing); a record
    written by the workflow itself is never before the one written before it (SQLite keeps
    the write order), so one without an instant takes the previous one's, marked
    ``time=not recorded``. Without the write order (Redis), such a record is put at the start
    of the workflow's first run.
    """
    values = dict(items)
    wf_id = record.invocation_id
    previous = began
    for key, value in items:
        own = _instant_of(key, value, values, times)
        external = key.startswith(engine_schema.PREFIX + "signal:")  # written by the sender
        if not write_order:
            when = own if own is not None else began
        else:
            when = own if own is not None and (external or own >= previous) else previous
        if not external and write_order:
            previous = when
        if key.startswith("task_invocation:"):
            continue  # pynenc's record of a child id: the child's own route step shows it
        if engine_schema.is_engine_key(key):
            classified = engine_schema.classify(key, value, names.get)
            if classified is None:
                continue
            kind, name = classified
        elif key.startswith(_PYNENC_VALUES):
            kind, name = "value", key.replace(":", "#", 1)
        else:
            kind, name = "data", f"data:{key}"
        detail: dict[str, Any] = {"key": key}
        if own is None:
            detail["time"] = "not recorded"
        yield when, Step(0, kind, name, wf_id, wf_id, when, record.task, detail)


def _instant_of(
    key: str, value: Any, values: Mapping[str, Any], times: dict[str, tuple[str, str | None]]
) -> str | None:
    """The instant a record carries or implies (``times``: first and final instant of
    each invocation), or None."""
    parts = key.removeprefix(engine_schema.PREFIX).split(":")
    try:
        if key.startswith("task_invocation:") or engine_schema.records_child(key):
            return times[str(value)][0]
        if parts[0] == "timer_fired":
            return _normal_iso(str(values[engine_schema.timer(int(parts[-1]))]))
        if parts[0] in ("now", "deadline") and isinstance(value, str):
            return _normal_iso(value)
        if parts[0] in ("signal", "state") and isinstance(value, Mapping):
            return _normal_iso(str(value["at"]))
        if parts[0] == "signal_wait" and isinstance(value, Mapping):
            name, j = ":".join(parts[1:-1]), int(parts[-1])
            if "slot" in value:
                return _normal_iso(str(values[engine_schema.signal(name, int(value["slot"]))]["at"]))
            return _normal_iso(str(values[engine_schema.signal_deadline(name, j)]))
        if parts[0] == "task_wait" and isinstance(value, Mapping) and "done" in value:
            return times[str(value["done"])][1]
    except (KeyError, TypeError, ValueError):
        return None
    return None


def _waiting_on(
    items: list[tuple[str, Any]],
    record: _Record,
    chosen: list[_Record],
    names: dict[str, str],
    statuses: dict[str, str],
) -> str | None:
    """What an unfinished workflow waits for, as far as its records tell."""
    values = dict(items)
    halted = values.get(engine_schema.HALTED)
    if halted:
        return f"halted: {halted} (resume it with resume_workflow)"
    suspension = values.get(engine_schema.SUSPENDED)
    if statuses.get(record.invocation_id) == "paused" and isinstance(suspension, Mapping):
        what = str(suspension.get("what", "a wake-up"))
        deadline = suspension.get("deadline")
        if deadline and "until" not in what:
            what += f" (until {deadline})"
        return f"suspended: waits for {what}"
    for key, value in reversed(items):
        parts = key.removeprefix(engine_schema.PREFIX).split(":")
        if parts[0] == "timer" and engine_schema.timer_fired(int(parts[-1])) not in values:
            return f"waits for timer sleep#{parts[-1]} (until {value})"
        if parts[0] == "signal_deadline":
            name, j = ":".join(parts[1:-1]), int(parts[-1])
            if engine_schema.signal_wait(name, j) not in values:
                return f"waits for signal {name!r} (until {value})"
    for other in chosen:
        if other.parent_invocation_id == record.invocation_id and statuses[other.invocation_id] not in _FINAL:
            return (
                f"waits for the result of {names[other.invocation_id]} "
                f"[{other.invocation_id[:8]}] (status: {statuses[other.invocation_id]})"
            )
    return None


# ---------------------------------------------------------------------- history files


def read_history(source: str | os.PathLike[str] | Mapping[str, Any], *, workflow_id: str | None = None) -> ReportData:
    """The report model of a ``pynenc-wf-history`` document (a path, JSON text or a dict),
    validated by ``load_history``. Its steps carry their virtual (or, for an export, real)
    instants; runs are inferred from them (a retry step ends a run, a result step the last
    one). An export of a production store holds no steps, hence no times: read the store
    itself for the timeline."""
    from pynenc_wf_testing.checks.replay import load_history

    if not isinstance(source, (str, os.PathLike, Mapping)):
        from pynenc_wf_testing.errors import InvalidArgument

        raise InvalidArgument(
            f"read_history() expects the path of a history file, its JSON text or the parsed "
            f"dict, got {type(source).__name__}: {source!r}."
        )
    is_path = isinstance(source, (str, os.PathLike)) and not str(source).lstrip().startswith("{")
    if is_path and not os.path.exists(os.fspath(source)):  # type: ignore[arg-type]
        raise StoreReadError(f"history file {os.fspath(source)!r}: no such file.")  # type: ignore[arg-type]
    try:
        history = load_history(source)
    except HistoryFormatError as error:
        raise StoreReadError(str(error)) from None
    label = os.fspath(source) if is_path else "document"  # type: ignore[arg-type]
    steps = list(history.steps)
    records = history.workflows
    if workflow_id is not None:
        workflow_id = _unique_prefix(workflow_id, sorted(w["workflow_id"] for w in records))
        keep = {workflow_id}
        if not any(w["workflow_id"] == workflow_id for w in records):
            known = ", ".join(w["workflow_id"] for w in records[:5]) or "none"
            raise StoreReadError(
                f"history {label}: no workflow {workflow_id!r}; it records: {known}. "
                "Give one of them with --workflow-id."
            )
        changed = True
        while changed:
            changed = False
            for w in records:
                for child in w["children"]:
                    if w["workflow_id"] in keep and child.get("is_workflow") and child["invocation_id"] not in keep:
                        keep.add(child["invocation_id"])
                        changed = True
        records = [w for w in records if w["workflow_id"] in keep]
        steps = [s for s in steps if s.workflow_id in keep or s.invocation_id in keep]

    names: dict[str, str] = {}
    owners: dict[str, str | None] = {}
    tasks: dict[str, str] = {}
    for step in steps:
        if step.invocation_id is None:
            continue
        tasks.setdefault(step.invocation_id, step.task or "")
        if step.kind in ("route", "result", "retry"):
            base = step.name
            for prefix in ("route:", "retry:"):
                base = base.removeprefix(prefix)
            names.setdefault(step.invocation_id, base)
            owners.setdefault(step.invocation_id, step.workflow_id)
    statuses: dict[str, str] = {}
    is_workflow: dict[str, bool] = {}
    parents: dict[str, str] = {}
    links: dict[str, dict[str, Any]] = {}
    for w in records:
        wf_id = w["workflow_id"]
        links[wf_id] = run_links({key: _decode(text) for key, text in w["data"].items()})
        statuses[wf_id] = w["status"]
        is_workflow[wf_id] = True
        tasks.setdefault(wf_id, w["task"])
        for child in w["children"] + w.get("awaited", []):
            inv_id = child["invocation_id"]
            statuses.setdefault(inv_id, child["status"])
            is_workflow.setdefault(inv_id, bool(child.get("is_workflow")))
            tasks.setdefault(inv_id, child["task"])
            if child in w["children"]:
                parents.setdefault(inv_id, wf_id)
    order: list[str] = []
    for step in steps:
        if step.invocation_id is not None and step.invocation_id not in order:
            order.append(step.invocation_id)
    for w in records:
        for inv_id in [w["workflow_id"]] + [c["invocation_id"] for c in w["children"]]:
            if inv_id not in order:
                order.append(inv_id)
    counters: dict[tuple[str | None, str], int] = {}
    for inv_id in order:
        if inv_id not in names:
            func = tasks.get(inv_id, "?").rsplit(".", 1)[-1]
            slot = (parents.get(inv_id), func)
            counters[slot] = counters.get(slot, 0) + 1
            names[inv_id] = f"{func}#{counters[slot]}"

    runs: list[RunView] = []
    last_end: dict[str, str] = {}
    attempts: dict[str, int] = {}
    for step in steps:
        inv_id = step.invocation_id
        if inv_id is None:
            continue
        if step.kind == "route":
            last_end.setdefault(inv_id, step.time)
        elif step.kind in ("result", "retry"):
            outcome = "retry" if step.kind == "retry" else str(step.detail.get("status", "success"))
            attempts[inv_id] = attempts.get(inv_id, 0) + 1
            runs.append(RunView(
                inv_id, names[inv_id], attempts[inv_id], outcome,
                last_end.get(inv_id, step.time), step.time,
            ))
            last_end[inv_id] = step.time
    for inv_id in order:
        if statuses.get(inv_id) == "running" and inv_id in last_end:
            attempts[inv_id] = attempts.get(inv_id, 0) + 1
            runs.append(RunView(inv_id, names[inv_id], attempts[inv_id], "running", last_end[inv_id]))
    invocations = tuple(
        InvocationView(
            invocation_id=inv_id,
            name=names[inv_id],
            task=tasks.get(inv_id, ""),
            is_workflow=is_workflow.get(inv_id, False),
            status=statuses.get(inv_id, "unknown"),
            parent_invocation_id=parents.get(inv_id),
            owner_workflow_id=owners.get(inv_id, parents.get(inv_id)),
            workflow_id=inv_id if is_workflow.get(inv_id) else parents.get(inv_id),
            **links.get(inv_id, {}),
        )
        for inv_id in order
    )
    times = [s.time for s in steps]
    notes: tuple[str, ...] = ()
    if not steps:
        notes = ("this history holds no steps (an export of a production store): no times; "
                 "read the store itself (--sqlite/--redis) for the timeline",)
    seed = f"seed {history.seed}, " if history.seed is not None else ""
    return ReportData(
        source=f"history {label} ({seed}{len(records)} workflow records)",
        clock="virtual" if history.seed is not None else "real",
        start=min(times, default=_EPOCH_ISO),
        now=max(times, default=_EPOCH_ISO),
        invocations=invocations,
        steps=tuple(steps),
        runs=tuple(runs),
        notes=notes,
    )
