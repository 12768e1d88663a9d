"""``pynenc-wf report``: the workflow report (HTML page or text tree) of a production SQLite
or Redis store, or of a history file."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from ._command import CommandError, CommandParser, one_line, write_output
from ._loading import load_app

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction[CommandParser]) -> None:
    """Add ``report`` to the sub-commands."""
    report = sub.add_parser(
        "report", help="render the workflow report of a production store or a history file"
    )
    source = report.add_mutually_exclusive_group()
    source.add_argument("--sqlite", help="pynenc's SQLite database (read-only)")
    source.add_argument("--redis", help="a Redis URL, e.g. redis://127.0.0.1:6379/0 (read-only)")
    source.add_argument("--history", help="a pynenc-wf-history file (env.history_json(), "
                        "--wf-record, pynenc-wf export)")
    report.add_argument("--app-id", help="the app whose store to read (needed when the store "
                        "holds several)")
    report.add_argument("--app", help="the app, package.module:app: its id, and its configured "
                        "store unless --sqlite/--redis name one (as for export)")
    report.add_argument("--workflow-id", help="only this workflow, its sub-workflows and tasks")
    report.add_argument("--text", action="store_true", help="the text tree instead of HTML")
    report.add_argument("--title", help="title of the HTML page (default: the source)")
    report.add_argument("-o", "--output", help="file to write (default: stdout)")
    report.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Render the report of the store or history the arguments name; the exit status."""
    from pynenc_wf_testing.env.report import render_html, render_text
    from pynenc_wf_testing.env.report_sources import (
        read_history,
        read_redis_store,
        read_sqlite_store,
    )
    from pynenc_wf_testing.errors import StoreReadError

    if args.output and os.path.isdir(args.output):
        raise CommandError(f"-o {args.output!r} is a directory; give a file name.", usage=True)
    if args.history and (args.app_id or args.app):
        raise CommandError("--app and --app-id apply to a store (--sqlite, --redis), not to "
                           "--history.", usage=True)
    if args.app and args.app_id:
        raise CommandError("give --app or --app-id, not both: --app names the app whose id "
                           "and store to read.", usage=True)
    if not (args.sqlite or args.redis or args.history or args.app):
        raise CommandError("name what to read: --sqlite PATH, --redis URL, --history FILE or "
                           "--app package.module:app (the store it is configured with).",
                           usage=True)
    if args.app:
        app = load_app(args.app)
        args.app_id = app.app_id
        if not (args.sqlite or args.redis):
            kind, where = _store_of(app)
            setattr(args, kind, where)
    try:
        if args.sqlite:
            data = read_sqlite_store(args.sqlite, app_id=args.app_id, workflow_id=args.workflow_id)
        elif args.redis:
            data = read_redis_store(args.redis, app_id=args.app_id, workflow_id=args.workflow_id)
        else:
            data = read_history(args.history, workflow_id=args.workflow_id)
    except StoreReadError as error:
        raise CommandError(one_line(error), usage=True) from None
    text = render_text(data) if args.text else render_html(data, title=args.title or data.source)
    if not args.output:
        sys.stdout.write(text)
        return 0
    write_output(args.output, text)
    print(f"wrote the report of {len(data.invocations)} invocations to {args.output}")
    return 0


def _store_of(app: Any) -> tuple[str, str]:
    """Where ``app`` keeps its store, from its configuration (no component is built: building
    one opens, and may create, the store): ("sqlite", path) or ("redis", url)."""
    backend = str(app.conf.state_backend_cls)
    values, path = app.config_values, app.config_filepath
    if backend.startswith("SQLite"):
        from pynenc.conf.config_state_backend import ConfigStateBackendSQLite

        db = ConfigStateBackendSQLite(config_values=values, config_filepath=path).sqlite_db_path
        if not db:
            raise CommandError(f"--app {app.app_id!r}: its SQLite backend names no database "
                               "file; give it with --sqlite PATH.", usage=True)
        return "sqlite", str(db)
    if backend.startswith("Redis"):
        from pynenc_redis.conf.config_state_backend import (  # type: ignore[import-untyped]
            ConfigStateBackendRedis,
        )

        conf = ConfigStateBackendRedis(config_values=values, config_filepath=path)
        if conf.redis_url:
            return "redis", str(conf.redis_url)
        auth = f"{conf.redis_username}:{conf.redis_password}@" if conf.redis_password else ""
        return "redis", f"redis://{auth}{conf.redis_host}:{conf.redis_port}/{conf.redis_db}"
    raise CommandError(
        f"--app {app.app_id!r} uses {backend}, which keeps its data inside the process that "
        "runs it: there is no store to read. Point at a SQLite or Redis store (--sqlite, "
        "--redis).", usage=True,
    )

