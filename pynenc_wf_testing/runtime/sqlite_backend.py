"""The ``sqlite`` backend: pynenc's own SQLite components on one database file per store.

``WorkflowEnv(backend="sqlite")`` runs the simulation on pynenc's ``SQLiteOrchestrator``,
``SQLiteStateBackend``, ``SQLiteBroker``, ``SQLiteTrigger`` and ``SQLiteClientDataStore``
(the orchestrator and state backend observed by the same mixins as the memory ones). Every
store is a fresh database file; a crash is a process death: every in-process object of the app
is dropped and the next access re-opens the same file, so recovery reads only what was
committed there.

Options (``backend_options``):

- ``path``: where the databases go. A directory: ``store-1.db``, ``store-2.db``, ... inside it
  (one per store: every fault run of a crash check starts from a fresh one), kept after the
  environment closes. A file (``*.db``/``*.sqlite``/...): the first store is that file (an
  existing file is replaced unless ``resume=True``), later stores go beside it
  (``run-2.db``, ...). Default: a temporary directory, deleted on close.
- ``resume``: open the existing file at ``path`` instead of replacing it, as a new process
  would after the one that wrote it died: everything that process left RUNNING or PENDING is
  recovered with pynenc's recovery transitions when the first worker starts.
- ``check_serialization`` (default True): fail a call whose arguments, or a ``set_data`` whose
  value, do not come back from pynenc's serializer with the same types (see
  ``runtime/serialization.py``).
"""

from __future__ import annotations

import atexit
import contextlib
import shutil
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pynenc.invocation.status import InvocationStatus
from pynenc.orchestrator.sqlite_orchestrator import SQLiteOrchestrator
from pynenc.state_backend.sqlite_state_backend import SQLiteStateBackend

from pynenc_wf_testing.errors import AppConfigurationError, InvalidArgument
from pynenc_wf_testing.runtime.components import SimOrchestratorMixin, SimStateBackendMixin, sim_of
from pynenc_wf_testing.runtime.monkeypatches.sqlite import POOLS, register_pool, unregister_pool
from pynenc_wf_testing.runtime.serialization import check_workflow_data

if TYPE_CHECKING:

    from pynenc.app import Pynenc
    from pynenc.workflow.workflow_identity import WorkflowIdentity

__all__ = [
    "SQLiteBackend",
    "SimSQLiteOrchestrator",
    "SimSQLiteStateBackend",
]

_DB_SUFFIXES = (".db", ".sqlite", ".sqlite3", ".db3")


# --------------------------------------------------------------------------- components


@dataclass
class _AppSettings:
    """What the simulated components of one app need from its backend."""

    resume_pending: bool = False
    resumed: bool = False
    check_serialization: bool = True


#: id(app) -> settings, while a backend uses the app (components only know their app).
_SETTINGS: dict[int, _AppSettings] = {}


class SimSQLiteOrchestrator(SimOrchestratorMixin, SQLiteOrchestrator):  # type: ignore[misc]
    """pynenc's ``SQLiteOrchestrator`` observed by the simulation.

    With ``resume``, the first worker that starts (registers its heartbeat) first recovers
    what the dead process left RUNNING or PENDING in the file.
    """

    def register_runner_heartbeats(
        self, runner_ids: list[str], can_run_atomic_service: bool = False,
        consumed_queues: Any = None,
    ) -> None:
        settings = _SETTINGS.get(id(self.app))
        if settings is not None and settings.resume_pending and sim_of(self.app) is not None:
            settings.resume_pending = False
            _recover_dead_process(self.app, runner_ids[0])
        super().register_runner_heartbeats(
            runner_ids, can_run_atomic_service=can_run_atomic_service,
            consumed_queues=consumed_queues,
        )

    def register_new_invocations(self, invocations: list[Any]) -> None:
        settings = _SETTINGS.get(id(self.app))
        if settings is not None and settings.resumed:
            # The seed replays the id stream of the process that wrote the store: a new
            # invocation with an old id would silently overwrite the old one.
            for invocation in invocations:
                try:
                    self.get_invocation_status_record(invocation.invocation_id)
                except KeyError:
                    continue
                raise AppConfigurationError(
                    f"the resumed store {self.sqlite_db_path} already has an invocation "
                    f"{invocation.invocation_id}: this WorkflowEnv's seed replays the invocation "
                    "ids of the process that wrote it. Resume with a different seed, e.g. "
                    "WorkflowEnv(seed=<the old seed + 1>, backend='sqlite', "
                    "backend_options={'path': ..., 'resume': True})."
                )
        super().register_new_invocations(invocations)


class SimSQLiteStateBackend(SimStateBackendMixin, SQLiteStateBackend):  # type: ignore[misc]
    """pynenc's ``SQLiteStateBackend`` observed by the simulation; workflow data that would not
    survive the serializer fails loudly instead of being stored changed."""

    def set_workflow_data(self, workflow_identity: WorkflowIdentity, key: str, value: Any) -> None:
        settings = _SETTINGS.get(id(self.app))
        if settings is None or settings.check_serialization:
            check_workflow_data(self.app, workflow_identity, key, value, "sqlite")
        super().set_workflow_data(workflow_identity, key, value)


def _resume_clock(app: Pynenc) -> None:
    """The clock's position is durable: a new process does not rewind time. Move the
    virtual clock to the last instant the store recorded, if that is later."""
    import sqlite3

    sim = sim_of(app)
    backend = app.state_backend
    if sim is None:
        return
    with sqlite3.connect(backend.sqlite_db_path) as conn:
        row = conn.execute(f"SELECT MAX(history_timestamp) FROM {backend.tables.HISTORY}").fetchone()
    if row and row[0] is not None:
        latest = round(float(row[0]) * 1_000_000)
        if latest > sim.clock.micros:
            sim.clock.move_to_micros(latest)


def _recover_dead_process(app: Pynenc, runner_id: str) -> None:
    """pynenc's recovery transitions for everything a dead process left in the store:
    RUNNING -> RUNNING_RECOVERY -> REROUTED and PENDING -> PENDING_RECOVERY -> REROUTED (the
    path of ``recover_running_invocations`` / ``recover_pending_invocations``); invocations
    still queued in the broker (REGISTERED, REROUTED, RETRY) are picked up as they are."""
    from pynenc.runner.runner_context import RunnerContext

    orchestrator = app.orchestrator
    _resume_clock(app)
    ctx = RunnerContext(runner_cls="SimRunner", runner_id=runner_id)
    to_reroute: list[Any] = []
    moves = {
        InvocationStatus.RUNNING: InvocationStatus.RUNNING_RECOVERY,
        InvocationStatus.PENDING: InvocationStatus.PENDING_RECOVERY,
    }
    for status, recovery in moves.items():
        ids: list[Any] = []
        offset = 0
        while page := orchestrator.get_invocation_ids_paginated(
            statuses=[status], limit=500, offset=offset
        ):
            ids.extend(page)
            offset += len(page)
        for inv_id in sorted(ids):
            orchestrator.set_invocation_status(inv_id, recovery, ctx)
            to_reroute.append(inv_id)
    if to_reroute:
        orchestrator.reroute_invocations(sorted(to_reroute), ctx)
    sim = sim_of(app)
    if sim is not None:
        sim.broker_dirty = True


# --------------------------------------------------------------------------- backend


def check_options(backend: str, options: dict[str, Any], known: tuple[str, ...]) -> None:
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise InvalidArgument(
            f"unknown backend_options for the {backend} backend: {', '.join(unknown)}; "
            f"it accepts: {', '.join(known)}."
        )


def drop_process_state(app: Pynenc) -> None:
    """Forget every in-process object of ``app`` (its configuration stays): cached
    components and pynenc's multiton entry. The next access builds new components."""
    from pynenc.app import Pynenc

    app._reset_cached_components()
    # Filled by unpickling (pynenc registers the app, or an unpickled copy of it, so that a
    # module-level Pynenc() re-import returns it): a new process starts without it.
    Pynenc._instances.pop(app.app_id, None)


# --------------------------------------------------------------------------- schema templates
#
# Building pynenc's five SQLite components on an empty file creates about 60 tables and
# indexes (some through connections pynenc opens itself, with fsyncs): ~40 ms, paid by every
# store, and every fault run of a crash check has a fresh store. The first store of an app id
# in this process is snapshotted right after its components are built (schema, trigger schema
# version, app info: nothing a run wrote yet) and later stores start as a copy of it; the
# components then find their tables there (``CREATE ... IF NOT EXISTS``) and rewrite the app
# info row, exactly as on a file a previous process prepared.

_TEMPLATES: dict[str, str] = {}
_template_dir: list[str] = []


def _template_path(app_id: str) -> str:
    if not _template_dir:
        _template_dir.append(tempfile.mkdtemp(prefix="pynenc-wf-sqlite-schema-"))
        atexit.register(shutil.rmtree, _template_dir[0], True)
    safe = "".join(c if c.isalnum() else "_" for c in app_id)
    return str(Path(_template_dir[0]) / f"{safe}-{len(_TEMPLATES)}.db")


def _save_template(app_id: str, path: str) -> None:
    """Snapshot the freshly built store at ``path`` as the template of ``app_id``."""
    target = _template_path(app_id)
    with contextlib.closing(sqlite3.connect(path)) as src, contextlib.closing(
        sqlite3.connect(target)
    ) as dst:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=WAL")  # what pynenc sets; closing leaves no -wal file
    _TEMPLATES[app_id] = target


def open_components(app: Pynenc) -> None:
    """Build every store component of ``app`` now, on its current store.

    A crash check swaps whole worlds (their component objects) in and out; a component left
    unbuilt would later be built on whatever store the configuration names by then.
    """
    for name in ("orchestrator", "state_backend", "broker", "trigger", "client_data_store"):
        getattr(app, name)


class SQLiteBackend:
    """pynenc's SQLite components, a fresh database file per store."""

    name = "sqlite"

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        resume: bool = False,
        check_serialization: bool = True,
    ) -> None:
        if path is not None and not isinstance(path, str | Path):
            raise InvalidArgument(
                f"backend_options['path'] must be a str or pathlib.Path, got {path!r}."
            )
        for name, flag in (("resume", resume), ("check_serialization", check_serialization)):
            if not isinstance(flag, bool):  # "no" would be taken for True
                raise InvalidArgument(
                    f"backend_options[{name!r}] must be True or False, got {flag!r}."
                )
        self._tmpdir: str | None = None
        self._file: Path | None = None
        if path is None:
            if resume:
                raise InvalidArgument(
                    "backend_options={'resume': True} needs the database file to resume: "
                    "pass backend_options={'path': 'run.db', 'resume': True}."
                )
            self._dir: Path | None = None  # a temporary directory, made by the first store
        else:
            p = Path(path)
            if p.suffix.lower() in _DB_SUFFIXES or p.is_file():
                self._file = p
                self._dir = p.parent
            else:
                self._dir = p
            if resume and (self._file is None or not self._file.is_file()):
                raise InvalidArgument(
                    f"backend_options={{'resume': True}}: no database file at {p} to resume."
                )
        self._resume = resume
        self._check = bool(check_serialization)
        self._count = 0
        self._paths: list[str] = []
        self._store_of_app: dict[int, str] = {}
        self._apps: set[int] = set()
        self._closed = False

    @classmethod
    def from_options(cls, **options: Any) -> SQLiteBackend:
        """Build from ``WorkflowEnv(backend_options=...)``, naming any unknown option."""
        check_options("sqlite", options, ("path", "resume", "check_serialization"))
        return cls(**options)

    @property
    def check_serialization(self) -> bool:
        """Whether arguments and workflow data are checked against the serializer."""
        return self._check

    @property
    def paths(self) -> list[str]:
        """The database file of every store created so far (the first is the user's run)."""
        return list(self._paths)

    @property
    def path(self) -> str | None:
        """The database file of the first store (the run a test drives directly)."""
        return self._paths[0] if self._paths else None

    def config(self, app: Pynenc) -> dict[str, Any]:
        return {
            "orchestrator_cls": "SimSQLiteOrchestrator",
            "state_backend_cls": "SimSQLiteStateBackend",
            "broker_cls": "SQLiteBroker",
            "trigger_cls": "SQLiteTrigger",
            "client_data_store_cls": "SQLiteClientDataStore",
        }

    def _next_path(self) -> tuple[str, bool]:
        """The next store's file and whether it resumes an existing one."""
        if self._dir is None:
            self._tmpdir = tempfile.mkdtemp(prefix="pynenc-wf-sqlite-")
            self._dir = Path(self._tmpdir)
        self._count += 1
        if self._file is not None and self._count == 1:
            return str(self._file), self._resume
        if self._file is not None:
            stem, suffix = self._file.stem, self._file.suffix
            return str(self._dir / f"{stem}-{self._count}{suffix}"), False
        return str(self._dir / f"store-{self._count}.db"), False

    def new_store(self, app: Pynenc) -> None:
        if self._closed:
            raise InvalidArgument("this sqlite backend is closed; create a new WorkflowEnv.")
        path, resume = self._next_path()
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        template = None if resume else _TEMPLATES.get(app.app_id)
        if not resume:
            for leftover in (path, f"{path}-wal", f"{path}-shm"):
                Path(leftover).unlink(missing_ok=True)
            if template is not None:
                shutil.copyfile(template, path)
        # A store at most keeps its connection while it is the one in use.
        for other in self._paths:
            pool = POOLS.get(other)
            if pool is not None:
                pool.close()
        register_pool(path)
        if path not in self._paths:
            self._paths.append(path)
        _SETTINGS[id(app)] = _AppSettings(
            resume_pending=resume, resumed=resume, check_serialization=self._check
        )
        self._use_path(app, path)
        if not resume and template is None:
            _save_template(app.app_id, path)
        self._apps.add(id(app))

    def _use_path(self, app: Pynenc, path: str) -> None:
        assert app.config_values is not None
        app.config_values["sqlite_db_path"] = path
        self._store_of_app[id(app)] = path
        drop_process_state(app)
        open_components(app)

    def after_crash(self, app: Pynenc) -> None:
        # The store of the world that crashed is the one its components use (a crash check
        # may have put an earlier world back since the last new_store).
        component = app._state_backend or app._orchestrator
        path = getattr(component, "sqlite_db_path", None) or self._store_of_app.get(id(app))
        pool = POOLS.get(str(path)) if path else None
        if pool is not None:
            pool.close()
        if path:
            self._use_path(app, str(path))
        else:  # pragma: no cover - new_store always ran first
            drop_process_state(app)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for app_key in self._apps:
            _SETTINGS.pop(app_key, None)
        for path in self._paths:
            unregister_pool(path)
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
