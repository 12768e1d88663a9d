"""The ``pynenc-wf`` command: export and replay histories, and fleet simulation (VOPR style).

    pynenc-wf export  --app myshop.tasks:app --workflow-id ID [--sqlite PATH] [-o FILE]
    pynenc-wf replay  FILE [FILE ...]
    pynenc-wf simulate myshop.tasks:fulfill_order_workflow --args '["o-1"]' --runs 100
    pynenc-wf report  (--sqlite PATH | --redis URL | --history FILE | --app PKG.MOD:APP)
                      [--app-id ID] [--workflow-id ID] [--text] [-o FILE]

Exit status: 0 success, 1 a failure (a violation, a run that raised, a history that diverged
or could not be read, nothing to export, a module that cannot be imported), 2 a malformed
command line or a report source that cannot be read (a missing file, not a pynenc store, an
unknown app or workflow id, an unreachable Redis server).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

__all__ = ["main"]


class CommandError(Exception):
    """A failure the user can fix: printed as one line, exit status 1 (2 with ``usage``)."""

    def __init__(self, message: str, *, usage: bool = False) -> None:
        super().__init__(message)
        self.code = 2 if usage else 1


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors on one line that says where help is."""

    def error(self, message: str) -> NoReturn:
        raise CommandError(f"{self.prog}: error: {message} (see '{self.prog} --help')", usage=True)


def _positive(name: str, minimum: int = 1) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{name} must be an integer >= {minimum}, got {text!r}"
            ) from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{name} must be >= {minimum}, got {value}")
        return value

    return parse


def _load(spec: str, what: str) -> Any:
    module_name, sep, attr = spec.partition(":")
    parts = attr.split(".")
    if (
        not sep
        or not module_name
        or not all(p.isidentifier() for p in parts)
        or not all(p.isidentifier() for p in module_name.split("."))
    ):
        raise CommandError(
            f"{what} {spec!r}: expected 'package.module:name', e.g. "
            "'myshop.tasks:fulfill_order_workflow'.",
            usage=True,
        )
    try:
        obj: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name is not None and module_name.startswith(error.name):
            raise CommandError(
                f"{what} {spec!r}: no module named {error.name!r}; check the name, and put "
                "its project on PYTHONPATH."
            ) from None
        raise CommandError(
            f"{what} {spec!r}: importing {module_name!r} failed: {error}."
        ) from None
    except Exception as error:
        raise CommandError(
            f"{what} {spec!r}: importing {module_name!r} raised {type(error).__name__}: "
            f"{error}"
        ) from None
    for part in parts:
        if not hasattr(obj, part):
            raise CommandError(
                f"{what} {spec!r}: module {module_name!r} has no attribute {attr!r}."
            )
        obj = getattr(obj, part)
    return obj


def _load_task(spec: str, what: str) -> Any:
    from pynenc.task import Task

    task = _load(spec, what)
    if not isinstance(task, Task):
        raise CommandError(
            f"{what} {spec!r} is a {type(task).__name__}, not a pynenc task: name a function "
            "decorated with @app.workflow (or @app.task)."
        )
    return task


def _load_app(spec: str) -> Any:
    from pynenc.app import Pynenc

    app = _load(spec, "--app")
    if not isinstance(app, Pynenc):
        raise CommandError(
            f"--app {spec!r} is a {type(app).__name__}, not a pynenc app: name the module-level "
            "Pynenc(...) object."
        )
    return app


# ---------------------------------------------------------------------- export / replay


def _snapshot_of(path: str, app_id: str, workdir: str) -> str:
    """A private copy of pynenc's SQLite store at ``path``, read through a read-only
    connection: pynenc's components create tables and set PRAGMAs when they open a
    database, and an export must never write to the database it reads."""
    import sqlite3

    from pynenc.state_backend.sqlite_state_backend import Tables

    if not os.path.exists(path):
        raise CommandError(f"--sqlite {path!r}: no such file.")
    if os.path.isdir(path):
        raise CommandError(f"--sqlite {path!r} is a directory; give the database file.")
    if not os.access(path, os.R_OK):
        raise CommandError(f"--sqlite {path!r}: permission denied.")
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
                    "nothing exported. Give the database that app writes to."
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
        raise CommandError(f"--sqlite {path!r}: not a readable SQLite database ({error}).") from None
    return copy


def _cmd_export(args: argparse.Namespace) -> int:
    import tempfile

    from pynenc_wf_testing.checks.replay import export_histories

    if args.workflow_type is not None and "." not in args.workflow_type:
        raise CommandError(
            f"--workflow-type {args.workflow_type!r}: expected 'package.module.function'.",
            usage=True,
        )
    if args.output and os.path.isdir(args.output):
        raise CommandError(f"-o {args.output!r} is a directory; give a file name.")
    app = _load_app(args.app)
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
            "Check the id or type (package.module.function) and the database."
        )
    text = json.dumps(doc, sort_keys=True, indent=1)
    if args.output:
        try:
            with open(args.output, "w", encoding="utf-8") as handle:
                handle.write(text)
        except OSError as error:
            raise CommandError(f"-o {args.output!r}: cannot write: {error.strerror}.") from None
        print(f"wrote {len(doc['workflows'])} workflow histories to {args.output}")
    else:
        print(text)
    return 0


def _one_line(error: BaseException) -> str:
    """A message on one line: each problem of a replay run is one line of output."""
    return " ".join(part.strip() for part in str(error).splitlines() if part.strip())


def _workflow_app(task_key: str) -> Any:
    """The pynenc app of a recorded workflow, by its task key (``package.module.function``)."""
    module_name, _, func_name = task_key.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except Exception as error:
        raise LookupError(
            f"cannot import {module_name!r} ({type(error).__name__}: {_one_line(error)}): run "
            "from the project root or set PYTHONPATH so the workflow's module imports."
        ) from None
    app = getattr(getattr(module, func_name, None), "app", None)
    if app is None:
        raise LookupError(
            f"{task_key} is not a pynenc task of {module_name}: the workflow was renamed or "
            "removed, so its recorded runs cannot replay."
        )
    return app


def _cmd_replay(args: argparse.Namespace) -> int:
    import logging

    # pynenc logs every exception a replayed workflow raises, with its traceback: a
    # recorded failure replays as one. The verdict lines below are the whole report.
    previous = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        return _replay_files(args.files)
    finally:
        logging.disable(previous)


def _replay_files(files: list[str]) -> int:
    from pynenc_wf_testing.checks.replay import Replayer, load_history
    from pynenc_wf_testing.errors import HistoryFormatError, NondeterminismError

    failures: list[str] = []
    replayed = 0
    for path in files:
        try:
            history = load_history(path)
        except HistoryFormatError as error:
            failures.append(f"{path}: {_one_line(error)}")
            print(f"FAIL {failures[-1]}")
            continue
        if not history.workflows:
            # --wf-record writes such files for tests whose own world ran no workflow.
            print(f"skip {path}: the history holds no workflow record")
            continue
        for record in history.workflows:
            func_name = record["task"].rsplit(".", 1)[-1]
            label = f"{path} {func_name} [{record['workflow_id'][:8]}]"
            try:
                app = _workflow_app(record["task"])
                result = Replayer(app, seed=history.seed or 0).replay(
                    history, workflow_id=record["workflow_id"]
                )
            except (NondeterminismError, HistoryFormatError, LookupError) as error:
                failures.append(f"{label}: {_one_line(error)}")
                print(f"FAIL {failures[-1]}")
                continue
            except Exception as error:  # the code under test may raise anything
                failures.append(
                    f"{label}: the replay raised {type(error).__name__}: {_one_line(error)}"
                )
                print(f"FAIL {failures[-1]}")
                continue
            replayed += 1
            if result.completed:
                print(f"ok   {label}")
            else:
                # A run recorded in flight: nothing past where it stopped can be compared.
                print(f"ok   {label} (in flight when recorded: replayed up to where it stopped, "
                      f"{result.replayed_calls} child calls)")
    if failures:
        raise CommandError(f"{len(failures)} replay(s) failed; first: {failures[0]}")
    if not replayed:
        print("FAIL nothing replayed: none of the histories holds a workflow record.")
        raise CommandError("nothing replayed: none of the histories holds a workflow record.")
    return 0


# ---------------------------------------------------------------------- simulate

#: Hypothesis tries the simplest schedule first (one crash at the earliest step it may go; with
#: ``--faults fail`` no fault at all, which is the golden run and is not run again), then
#: random ones: each seed runs its golden run, that one and ``--examples`` drawn schedules.
_SIMPLEST_FIRST = 1


def _retried_failures(app: Any) -> list[Any]:
    """Failures that pynenc's retries make transparent to the result: one candidate per
    task that retries, failing up to its ``max_retries`` times with its first exception."""
    from pynenc_wf_testing.checks.faults import ScheduledFailure

    found = []
    for task in sorted(app.tasks.values(), key=lambda t: t.task_id.key):
        retriable = task.retriable_exceptions
        if retriable and task.conf.max_retries > 0:
            exc = retriable[0]
            if isinstance(exc, type) and issubclass(exc, Exception):
                found.append(ScheduledFailure(task.task_id.key, int(task.conf.max_retries), exc))
    return found


def _simulate_seed(job: tuple[Any, ...]) -> dict[str, Any]:
    """One seed: its golden run, then schedules drawn and shrunk by the crash checks."""
    (spec, call_args, seed, concurrency, faults, max_crashes, max_steps, fine, examples,
     log_level) = job
    result: dict[str, Any] = {
        "seed": seed, "problems": [], "error": None, "fault_runs": 0, "steps": 0, "crashes": 0,
        "virtual_seconds": 0.0, "crash_points": [], "plan": None, "shrunk": None,
    }
    try:
        _simulate_into(result, spec, call_args, seed, concurrency, faults, max_crashes,
                       max_steps, fine, examples, log_level)
    except CommandError as error:
        result["error"] = str(error)
    except Exception as error:  # the workflow or the harness failed: an error, not a pass
        result["error"] = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
    return result


def _simulate_into(
    result: dict[str, Any], spec: str, call_args: list[Any], seed: int, concurrency: int,
    faults: Sequence[str], max_crashes: int, max_steps: int, fine: bool, examples: int,
    log_level: str,
) -> None:
    from pynenc_wf_testing.checks.crash_check import check_fault_schedules
    from pynenc_wf_testing.checks.strategies import fault_schedules
    from pynenc_wf_testing.env.environment import WorkflowEnv

    workflow = _load_task(spec, "workflow")
    failures = _retried_failures(workflow.app) if "fail" in faults else []
    crashes = max_crashes if "crash" in faults else 0

    def schedules(golden_steps: list[Any]) -> Any:
        # Crash steps within the golden run's length, at least one crash when crashes are
        # asked for: measured on examples/payments, this finds the planted bug in about 10%
        # of seeds, where reaching into recovery steps (golden length x crashes) found 4%.
        max_step = max(1, len([s for s in golden_steps if s.is_step]))
        return fault_schedules(
            max_step, max_crashes=crashes, min_crashes=min(1, crashes), steps=golden_steps,
            fine=fine, failures=failures, max_failures=1,
        )

    with WorkflowEnv(seed=seed, max_steps=max_steps, log_level=log_level) as env:
        report = check_fault_schedules(
            env, workflow, tuple(call_args), {}, schedules=schedules,
            max_examples=examples + _SIMPLEST_FIRST, search_seed=seed, fine=fine,
            concurrency=concurrency,
        )
    if report.golden_raised:
        raise CommandError(
            f"the fault-free run {report.golden_outcome}; nothing to compare faults with "
            "(check --args: the workflow's arguments as a JSON list)."
        )
    # Every faulted run counts, the shrinker's included: these are the runs that happened.
    runs = report.explored
    result.update(
        fault_runs=len(runs),
        steps=sum(o.steps for o in runs), crashes=sum(o.crashes for o in runs),
        virtual_seconds=sum(o.virtual_seconds for o in runs),
        crash_points=sorted({p for o in runs for p in o.fired if p.startswith("crash_")}),
    )
    failing = report.failing
    if failing:
        minimal = report.minimal_failure or failing[-1]
        result["plan"] = failing[0].schedule.to_json()
        result["shrunk"] = minimal.schedule.to_json()
        result["shrunk_text"] = minimal.schedule.snippet_lines("wf_env")
        result["plan_text"] = failing[0].schedule.snippet_lines("wf_env")
        result["problems"] = [f"[{v.kind}] {v.message}" for v in minimal.violations]


def _parse_call_args(text: str) -> list[Any]:
    try:
        call_args = json.loads(text)
    except json.JSONDecodeError as error:
        raise CommandError(
            f"--args {text!r} is not valid JSON ({error.msg}); give a JSON list, e.g. "
            "--args '[\"o-1\", 3]'.",
            usage=True,
        ) from None
    if not isinstance(call_args, list):
        raise CommandError(
            f"--args must be a JSON list of the workflow's arguments, got "
            f"{type(call_args).__name__}; e.g. --args '[\"o-1\", 3]'.",
            usage=True,
        )
    return call_args


def _cmd_simulate(args: argparse.Namespace) -> int:
    call_args = _parse_call_args(args.args)
    faults = sorted({f.strip() for f in args.faults.split(",") if f.strip()})
    unknown = set(faults) - {"crash", "fail"}
    if unknown or not faults:
        raise CommandError(
            f"unknown --faults {sorted(unknown) or [args.faults]}; choose from crash,fail.",
            usage=True,
        )
    workflow = _load_task(args.workflow, "workflow")
    if faults == ["fail"] and not _retried_failures(workflow.app):
        raise CommandError(
            "--faults fail: no task of this app retries (retry_for= and max_retries=), so "
            "there is no failure to inject; add crash to --faults."
        )
    jobs = [
        (args.workflow, call_args, seed, args.concurrency, faults, args.max_crashes,
         args.max_steps, args.fine, args.examples, args.log_level)
        for seed in range(args.seed, args.seed + args.runs)
    ]
    started = time.perf_counter()
    results: list[dict[str, Any]] = []
    tty = sys.stderr.isatty() and not args.json
    if args.processes > 1:
        import multiprocessing

        with multiprocessing.get_context("spawn").Pool(args.processes) as pool:
            for done, result in enumerate(pool.imap(_simulate_seed, jobs), 1):
                results.append(result)
                _progress(tty, done, len(jobs), result)
    else:
        for done, job in enumerate(jobs, 1):
            results.append(_simulate_seed(job))
            _progress(tty, done, len(jobs), results[-1])
    if tty:
        sys.stderr.write("\n")
    elapsed = time.perf_counter() - started
    failing = [r for r in results if r["problems"]]
    errors = [r for r in results if r["error"]]
    summary = {
        "workflow": args.workflow,
        "runs": len(results),
        "fault_runs": sum(r["fault_runs"] for r in results),
        "concurrency": args.concurrency,
        "steps": sum(r["steps"] for r in results),
        "virtual_seconds": sum(r["virtual_seconds"] for r in results),
        "crashes": sum(r["crashes"] for r in results),
        "crash_points_covered": len({p for r in results for p in r["crash_points"]}),
        "violations": len(failing),
        "errors": len(errors),
        "wall_seconds": round(elapsed, 3),
    }
    reproductions = []
    for result in failing + errors:
        command = (
            f"pynenc-wf simulate {args.workflow} --args {_shell(args.args)} --runs 1 "
            f"--seed {result['seed']} --concurrency {args.concurrency} --faults "
            f"{','.join(faults)} --max-crashes {args.max_crashes}"
            + (f" --examples {args.examples}" if args.examples != 1 else "")
            + (" --fine" if args.fine else "")
        )
        reproductions.append({**result, "command": command})
    if args.json:
        print(json.dumps(
            {"summary": summary, "violations": reproductions[:len(failing)],
             "errors": reproductions[len(failing):]},
            indent=1, sort_keys=True, default=str,
        ))
    else:
        print(f"pynenc-wf simulate {args.workflow}")
        for key, value in summary.items():
            print(f"  {key:<22} {value}")
        for item in reproductions[:len(failing)]:
            print(f"\nVIOLATION seed {item['seed']}: " + "; ".join(item["problems"]))
            print(f"  fault schedule:  {'; '.join(item['plan_text'])}")
            print(f"  shrunk:          {'; '.join(item['shrunk_text'])}")
            print(f"  reproduce:       {item['command']}")
        for item in reproductions[len(failing):]:
            print(f"\nERROR seed {item['seed']}: {item['error']}")
            print(f"  reproduce:       {item['command']}")
    if errors:
        raise CommandError(
            f"{len(errors)} of {len(results)} runs failed to run; first (seed "
            f"{errors[0]['seed']}): {errors[0]['error']}"
        )
    return 1 if failing else 0


def _shell(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


def _progress(tty: bool, done: int, total: int, result: dict[str, Any]) -> None:
    if not tty:
        return
    width = 30
    filled = width * done // total
    mark = "!" if result["problems"] or result["error"] else ""
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {mark}")
    sys.stderr.flush()


# ---------------------------------------------------------------------- report


def _cmd_report(args: argparse.Namespace) -> int:
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
        app = _load_app(args.app)
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
        raise CommandError(_one_line(error), usage=True) from None
    text = render_text(data) if args.text else render_html(data, title=args.title or data.source)
    if not args.output:
        sys.stdout.write(text)
        return 0
    try:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as error:
        raise CommandError(f"-o {args.output!r}: cannot write: {error.strerror}.") from None
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


# ---------------------------------------------------------------------- entry point


def _parser() -> _Parser:
    parser = _Parser(prog="pynenc-wf", description=__doc__,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    export = sub.add_parser("export", help="export workflow histories from an app's store")
    export.add_argument("--app", required=True, help="the production app, package.module:app")
    export.add_argument("--sqlite", help="path of the SQLite database (overrides the app's); "
                        "read-only: the export reads a snapshot of it")
    which = export.add_mutually_exclusive_group(required=True)
    which.add_argument("--workflow-id", help="one workflow run")
    which.add_argument("--workflow-type", help="every run of a workflow: package.module.function")
    export.add_argument("-o", "--output", help="file to write (default: stdout)")
    export.set_defaults(func=_cmd_export)

    replay = sub.add_parser("replay", help="replay recorded histories against the current code")
    replay.add_argument("files", nargs="+")
    replay.set_defaults(func=_cmd_replay)

    simulate = sub.add_parser("simulate", help="run many seeds with random faults (VOPR style)")
    simulate.add_argument("workflow", help="package.module:workflow_task")
    simulate.add_argument("--args", default="[]", help="JSON list of the workflow's arguments")
    simulate.add_argument("--runs", type=_positive("--runs"), default=100,
                          help="seeds to run (default 100)")
    simulate.add_argument("--concurrency", type=_positive("--concurrency"), default=1,
                          help="instances per run")
    simulate.add_argument("--faults", default="crash,fail", help="crash,fail (default both)")
    simulate.add_argument("--max-crashes", type=_positive("--max-crashes"), default=2)
    simulate.add_argument("--examples", type=_positive("--examples"), default=1,
                          help="fault schedules drawn per seed (default 1)")
    simulate.add_argument("--seed", type=_positive("--seed", 0), default=0,
                          help="first seed (default 0)")
    simulate.add_argument("--processes", type=_positive("--processes"), default=1,
                          help="spread seeds over processes")
    simulate.add_argument("--max-steps", type=_positive("--max-steps"), default=100_000)
    simulate.add_argument("--fine", action="store_true",
                          help="also crash inside pynenc's own windows (see docs/faults.md)")
    simulate.add_argument("--log-level", default="critical",
                          choices=["debug", "info", "warning", "error", "critical"],
                          help="pynenc's log level inside the runs (default critical: the "
                          "report already names every failure)")
    simulate.add_argument("--json", action="store_true", help="machine-readable output")
    simulate.set_defaults(func=_cmd_simulate)

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
    report.set_defaults(func=_cmd_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    prog = "pynenc-wf"
    try:
        args = parser.parse_args(argv)
        prog = f"pynenc-wf {args.command}"
        code: int = args.func(args)
        return code
    except CommandError as error:
        message = str(error)
        if not message.startswith("pynenc-wf"):
            message = f"{prog}: error: {message}"
        print(message, file=sys.stderr)
        return error.code
    except SystemExit as exit_:  # --help
        return exit_.code if isinstance(exit_.code, int) else 0
    except BrokenPipeError:  # e.g. piped into `head`: the reader has what it wanted
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so that the exit-time flush cannot fail again
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # a bug of ours or of the code under test: still one line
        if os.environ.get("PYNENC_WF_TRACEBACK"):
            raise
        print(
            f"{prog}: error: unexpected {type(error).__name__}: {error} "
            "(set PYNENC_WF_TRACEBACK=1 to see the traceback)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
