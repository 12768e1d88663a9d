"""The sqlite backend: database files, connection reuse, serialization checks."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from pynenc_wf_testing import WorkflowEnv
from pynenc_wf_testing.errors import InvalidArgument
from tests import backend_apps as apps


def test_unknown_option_is_named() -> None:
    with pytest.raises(InvalidArgument, match="unknown backend_options for the sqlite backend: "
                       "colour; it accepts: path, resume, check_serialization"):
        WorkflowEnv(backend="sqlite", backend_options={"colour": "blue"})


def test_a_temporary_database_is_removed_on_close() -> None:
    with WorkflowEnv(backend="sqlite") as env:
        assert env.start(apps.chain, 2).result == 2
        path = Path(env.backend.path)  # type: ignore[attr-defined]
        assert path.is_file()
    assert not path.exists()
    assert not path.parent.exists()


def test_a_directory_keeps_one_database_per_store(tmp_path: Path) -> None:
    with WorkflowEnv(backend="sqlite", backend_options={"path": tmp_path}) as env:
        assert env.start(apps.chain, 2).result == 2
        env.check_crash_safety(apps.chain, 1).assert_ok()
        paths = env.backend.paths  # type: ignore[attr-defined]
    assert paths[0] == str(tmp_path / "store-1.db")
    assert len(paths) > 3  # the golden run and every fault run had a fresh store
    assert all(Path(p).is_file() for p in paths)


def test_a_file_path_is_the_first_store_and_is_replaced(tmp_path: Path) -> None:
    db = tmp_path / "debug.db"
    db.write_text("not a database")
    with WorkflowEnv(backend="sqlite", backend_options={"path": str(db)}) as env:
        assert env.start(apps.chain, 2).result == 2
        env.check_crash_safety(apps.chain, 1)
        paths = env.backend.paths  # type: ignore[attr-defined]
    assert paths[0] == str(db)
    assert paths[1] == str(tmp_path / "debug-2.db")


def test_the_database_is_readable_by_pynenc_without_the_harness(tmp_path: Path) -> None:
    """What a monitor needs: pynenc's own SQLite components read the finished run."""
    from pynenc.app import Pynenc
    from pynenc.invocation.status import InvocationStatus

    db = tmp_path / "run.db"
    with WorkflowEnv(backend="sqlite", backend_options={"path": str(db)}) as env:
        run = env.start(apps.chain, 3)
        assert run.result == 6
    saved = dict(Pynenc._instances)
    Pynenc._instances.clear()
    try:
        plain = Pynenc(config_values={
            "app_id": apps.app.app_id,
            "orchestrator_cls": "SQLiteOrchestrator",
            "state_backend_cls": "SQLiteStateBackend",
            "broker_cls": "SQLiteBroker",
            "trigger_cls": "SQLiteTrigger",
            "client_data_store_cls": "SQLiteClientDataStore",
            "sqlite_db_path": str(db),
        })
        assert plain.orchestrator.get_invocation_status(run.invocation_id) == (
            InvocationStatus.SUCCESS
        )
        assert plain.state_backend.get_result(run.invocation_id) == 6
        history = plain.state_backend.get_history(run.invocation_id)
        assert [h.status_record.status for h in history][-1] == InvocationStatus.SUCCESS
    finally:
        Pynenc._instances.clear()
        Pynenc._instances.update(saved)


def test_one_connection_per_store_and_commits_reach_the_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import pynenc.orchestrator.sqlite_orchestrator as orch_mod
    import pynenc.state_backend.sqlite_state_backend as sb_mod
    from pynenc.util import sqlite_utils

    from pynenc_wf_testing.runtime.monkeypatches import sqlite as backend_mod

    opened: list[str] = []
    original = backend_mod._ORIGINAL_CONNECT

    def counting(path: Any) -> Any:
        opened.append(str(path))
        return original(path)

    monkeypatch.setattr(backend_mod, "_ORIGINAL_CONNECT", counting)
    with WorkflowEnv(backend="sqlite") as env:
        app = env.use(apps.app)
        opened.clear()
        assert env.start(apps.chain, 5).result == 20
        # pynenc opens a connection per operation (hundreds here): the simulation reuses one.
        assert len(opened) <= 2, opened
        pool = backend_mod.POOLS[env.backend.path]  # type: ignore[attr-defined]
        assert pool.conn is not None and not pool.conn.in_transaction
        # Every step was committed: an independent connection sees all of it.
        with sqlite3.connect(env.backend.path) as other:  # type: ignore[attr-defined]
            table = app.orchestrator.tables.INVOCATIONS
            done = other.execute(
                f"SELECT count(*) FROM {table} WHERE status = 'success'"
            ).fetchone()[0]
        assert done == 6
        assert orch_mod.sqlite_conn is backend_mod._connect
    # Closing the last store puts pynenc's own connection function back.
    assert orch_mod.sqlite_conn is sqlite_utils.create_sqlite_connection
    assert sb_mod.sqlite_conn is sqlite_utils.create_sqlite_connection
    assert sqlite_utils.create_sqlite_connection is original


def test_a_crash_drops_the_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    from pynenc_wf_testing.runtime.monkeypatches import sqlite as backend_mod

    with WorkflowEnv(backend="sqlite") as env:
        env.use(apps.app)
        pool = backend_mod.POOLS[env.backend.path]  # type: ignore[attr-defined]
        env.crash_after("slow_double#1")
        first = pool.conn
        assert env.start(apps.chain, 2).result == 2
        assert pool.conn is not first  # the dead process's connection was closed


def test_serialization_check_can_be_turned_off_to_see_the_silent_loss() -> None:
    """What production would do with the lambda: store None without a word."""
    with WorkflowEnv(backend="sqlite", backend_options={"check_serialization": False}) as env:
        app = env.use(apps.app)
        run = env.start(apps.stores_callback)
        assert run.result == "on_paid"
        from pynenc.workflow.workflow_identity import WorkflowIdentity

        identity = WorkflowIdentity(
            workflow_id=run.workflow_id, workflow_type=apps.stores_callback.task_id
        )
        assert app.state_backend.get_workflow_data(identity, "on_paid", "missing") is None


def test_serialization_check_reports_nested_values() -> None:
    from pynenc.workflow.workflow_identity import WorkflowIdentity

    from pynenc_wf_testing.errors import WorkflowDataSerializationError
    from pynenc_wf_testing.runtime.sqlite_backend import check_workflow_data

    identity = WorkflowIdentity(workflow_id="wf-1", workflow_type=apps.order.task_id)
    check_workflow_data(apps.app, identity, "ok", {"a": [1, 2.5, "x", None, {"b": (1, 2)}]}, "sqlite")
    with pytest.raises(WorkflowDataSerializationError, match=r"value\['hooks'\]\[1\]: "
                       r"builtins.function comes back as NoneType"):
        check_workflow_data(apps.app, identity, "cfg", {"hooks": [1, lambda: 0]}, "sqlite")
    # A module-level function is stored by reference: it survives.
    check_workflow_data(apps.app, identity, "fn", {"hooks": [print, apps.reset]}, "sqlite")
