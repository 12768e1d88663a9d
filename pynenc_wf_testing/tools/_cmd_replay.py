"""``pynenc-wf replay``: replay recorded histories against the current code, one verdict
line per workflow."""

from __future__ import annotations

import argparse
import importlib
from typing import Any

from ._command import CommandError, CommandParser, one_line

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction[CommandParser]) -> None:
    """Add ``replay`` to the sub-commands."""
    replay = sub.add_parser("replay", help="replay recorded histories against the current code")
    replay.add_argument("files", nargs="+")
    replay.set_defaults(func=run)


def _workflow_app(task_key: str) -> Any:
    """The pynenc app of a recorded workflow, by its task key (``package.module.function``)."""
    module_name, _, func_name = task_key.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except Exception as error:
        raise LookupError(
            f"cannot import {module_name!r} ({type(error).__name__}: {one_line(error)}): run "
            "from the project root or set PYTHONPATH so the workflow's module imports."
        ) from None
    app = getattr(getattr(module, func_name, None), "app", None)
    if app is None:
        raise LookupError(
            f"{task_key} is not a pynenc task of {module_name}: the workflow was renamed or "
            "removed, so its recorded runs cannot replay."
        )
    return app


def run(args: argparse.Namespace) -> int:
    """Replay every workflow of the files, one verdict line each; the exit status."""
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
    # Files named on the command line that are no readable history: a usage error (exit 2,
    # as `report --history` gives), reported after every other file was replayed.
    unreadable: list[str] = []
    replayed = 0
    for path in files:
        try:
            history = load_history(path)
        except HistoryFormatError as error:
            unreadable.append(f"{path}: {one_line(error)}")
            print(f"FAIL {unreadable[-1]}")
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
            except HistoryFormatError as error:  # a record the file's producer did not write
                unreadable.append(f"{label}: {one_line(error)}")
                print(f"FAIL {unreadable[-1]}")
                continue
            except (NondeterminismError, LookupError) as error:
                failures.append(f"{label}: {one_line(error)}")
                print(f"FAIL {failures[-1]}")
                continue
            except Exception as error:  # the code under test may raise anything
                failures.append(
                    f"{label}: the replay raised {type(error).__name__}: {one_line(error)}"
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
    if unreadable:
        raise CommandError(
            f"{len(unreadable)} file(s) are no readable history; first: {unreadable[0]}",
            usage=True,
        )
    if not replayed:
        print("FAIL nothing replayed: none of the histories holds a workflow record.")
        raise CommandError("nothing replayed: none of the histories holds a workflow record.")
    return 0

