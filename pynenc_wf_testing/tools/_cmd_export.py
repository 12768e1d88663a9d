"""``pynenc-wf export``: the histories of workflows in an app's production store, as a
history document (read-only: a SQLite store is read through a snapshot)."""

from __future__ import annotations

import argparse
import json
import os

from ._command import CommandError, CommandParser, write_output
from ._loading import load_app

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction[CommandParser]) -> None:
    """Add ``export`` to the sub-commands."""
    export = sub.add_parser("export", help="export workflow histories from an app's store")
    export.add_argument("--app", required=True, help="the production app, package.module:app")
    export.add_argument("--sqlite", help="path of the SQLite database (overrides the app's); "
                        "read-only: the export reads a snapshot of it")
    which = export.add_mutually_exclusive_group(required=True)
    which.add_argument("--workflow-id", help="one workflow run")
    which.add_argument("--workflow-type", help="every run of a workflow: package.module.function")
    export.add_argument("-o", "--output", help="file to write (default: stdout)")
    export.set_defaults(func=run)


def _snapshot_of(path: str, app_id: str, workdir: str) -> str:
    """A private copy of pynenc's SQLite store at ``path``, read through a read-only
    connection: pynenc's components create tables and set PRAGMAs when they open a
    database, and an export must never write to the database it reads."""
    import sqlite3

    from pynenc.state_backend.sqlite_state_backend import Tables

    if not os.path.exists(path):
        raise CommandError(f"--sqlite {path!r}: no such file.", usage=True)
    if os.path.isdir(path):
        raise CommandError(
            f"--sqlite {path!r} is a directory; give the database file.", usage=True
        )
    if not os.access(path, os.R_OK):
        raise CommandError(f"--sqlite {path!r}: permission denied.", usage=True)
    # Without a -wal file everything is in the main file: immutable=1 reads it without
    # locks, so not even SQLite's -wal/-shm side files appear. A -wal file means a live
    # database: mode=ro reads its committed transactions through the existing side files.
    live = os.path.exists(path + "-wal")
    uri = (
        "file:" + os.path.abspath(path).replace("?", "%3f").replace("#", "%23")
        + ("?mode=ro" if live else "?immutable=1")
    )
    try:
        source = sqlite3.connect(uri, uri=True)
        try:
            tables = {
                row[0]
                for row in source.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            wanted = Tables(app_id).WORKFLOWS
            if wanted not in tables:
                others = sorted(t.split("__", 1)[0] for t in tables if t.endswith("_workflows"))
                found = (
                    f"it holds pynenc tables of other apps ({', '.join(others)})"
                    if others else "it holds no pynenc tables"
                )
                raise CommandError(
                    f"--sqlite {path!r}: no pynenc store of app {app_id!r} ({found}); "
                    "nothing exported. Give the database that app writes to.",
                    usage=True,
                )
            copy = os.path.join(workdir, "snapshot.db")
            target = sqlite3.connect(copy)
            try:
                source.backup(target)
            finally:
                target.close()
        finally:
            source.close()
    except sqlite3.DatabaseError as error:
        raise CommandError(
            f"--sqlite {path!r}: not a readable SQLite database ({error}).", usage=True
        ) from None
    return copy


def run(args: argparse.Namespace) -> int:
    """Export the histories the arguments name; the exit status."""
    import tempfile

    from pynenc_wf_testing.checks.replay import export_histories

    if args.workflow_id is not None and not args.workflow_id.strip():
        raise CommandError(
            f"--workflow-id {args.workflow_id!r}: give the run's invocation id or the workflow "
            "id it was started under.",
            usage=True,
        )
    if args.workflow_type is not None and "." not in args.workflow_type:
        raise CommandError(
            f"--workflow-type {args.workflow_type!r}: expected 'package.module.function'.",
            usage=True,
        )
    if args.output and os.path.isdir(args.output):
        raise CommandError(f"-o {args.output!r} is a directory; give a file name.", usage=True)
    app = load_app(args.app)
    saved = app.config_values
    with tempfile.TemporaryDirectory(prefix="pynenc-wf-export-") as workdir:
        try:
            if args.sqlite:
                # Read a snapshot with pynenc's own SQLite components, whatever the app names.
                values = dict(app.config_values or {})
                values.update(
                    sqlite_db_path=_snapshot_of(args.sqlite, app.app_id, workdir),
                    orchestrator_cls="SQLiteOrchestrator",
                    broker_cls="SQLiteBroker",
                    state_backend_cls="SQLiteStateBackend",
                    client_data_store_cls="SQLiteClientDataStore",
                    trigger_cls="SQLiteTrigger",
                )
                app.config_values = values
                app._reset_cached_components()
            doc = export_histories(
                app, workflow_id=args.workflow_id, workflow_type=args.workflow_type
            )
        except CommandError:
            raise
        except Exception as error:
            raise CommandError(
                f"reading the store of app {app.app_id!r} failed: {type(error).__name__}: "
                f"{error}"
            ) from None
        finally:
            if args.sqlite and app.config_values is not saved:
                # main() may run inside a process that goes on using this app (tests, a
                # notebook): give it back its own store.
                app.config_values = saved
                app._reset_cached_components()
    if not doc["workflows"]:
        which = args.workflow_id or args.workflow_type
        raise CommandError(
            f"no workflow run {which!r} in the store of app {app.app_id!r}; nothing exported. "
            "Check the id or type (package.module.function) and the database.",
            usage=True,
        )
    text = json.dumps(doc, sort_keys=True, indent=1)
    if args.output:
        write_output(args.output, text)
        print(f"wrote {len(doc['workflows'])} workflow histories to {args.output}")
    else:
        print(text)
    return 0
