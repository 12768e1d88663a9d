"""``pynenc-wf simulate``: many seeds of one workflow with random faults (VOPR style), each
seed through the crash checks' ``check_fault_schedules``, with a reproduction per failure."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

from ._command import CommandError, CommandParser, positive_int
from ._loading import load_task

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction[CommandParser]) -> None:
    """Add ``simulate`` to the sub-commands."""
    simulate = sub.add_parser("simulate", help="run many seeds with random faults (VOPR style)")
    simulate.add_argument("workflow", help="package.module:workflow_task")
    simulate.add_argument("--args", default="[]", help="JSON list of the workflow's arguments")
    simulate.add_argument("--runs", type=positive_int("--runs", 1, MAX_RUNS, _RUNS_WHY), default=100,
                          help="seeds to run (default 100)")
    simulate.add_argument("--concurrency", type=positive_int("--concurrency"), default=1,
                          help="instances per run")
    simulate.add_argument("--faults", default="crash,fail", help="crash,fail (default both)")
    simulate.add_argument("--max-crashes", type=positive_int("--max-crashes"), default=2)
    simulate.add_argument("--examples", type=positive_int("--examples"), default=1,
                          help="fault schedules drawn per seed (default 1)")
    simulate.add_argument("--seed", type=positive_int("--seed", 0), default=0,
                          help="first seed (default 0)")
    simulate.add_argument("--processes", type=positive_int(
                              "--processes", 1, MAX_PROCESSES, _PROCESSES_WHY), default=1,
                          help="spread seeds over processes")
    simulate.add_argument("--max-steps", type=positive_int("--max-steps"), default=100_000)
    simulate.add_argument("--fine", action="store_true",
                          help="also crash inside pynenc's own windows (see docs/faults.md)")
    simulate.add_argument("--log-level", default="critical",
                          choices=["debug", "info", "warning", "error", "critical"],
                          help="pynenc's log level inside the runs (default critical: the "
                          "report already names every failure)")
    simulate.add_argument("--json", action="store_true", help="machine-readable output")
    simulate.set_defaults(func=run)


#: Bounds of the command line: a typo of a few digits must not queue runs for years or
#: start hundreds of processes on a small machine (each process is a Python interpreter).
MAX_RUNS = 1_000_000
_RUNS_WHY = " (run several commands with --seed for more)"
MAX_PROCESSES = 4 * (os.cpu_count() or 1)
_PROCESSES_WHY = " (4 per CPU of this machine)"

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

    workflow = load_task(spec, "workflow")
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


def run(args: argparse.Namespace) -> int:
    """Run the seeds, print the summary and a reproduction per failure; the exit status."""
    call_args = _parse_call_args(args.args)
    faults = sorted({f.strip() for f in args.faults.split(",") if f.strip()})
    unknown = set(faults) - {"crash", "fail"}
    if unknown or not faults:
        raise CommandError(
            f"unknown --faults {sorted(unknown) or [args.faults]}; choose from crash,fail.",
            usage=True,
        )
    workflow = load_task(args.workflow, "workflow")
    if faults == ["fail"] and not _retried_failures(workflow.app):
        raise CommandError(
            "--faults fail: no task of this app retries (retry_for= and max_retries=), so "
            "there is no failure to inject; add crash to --faults.",
            usage=True,
        )
    # Made as they are consumed: a large --runs starts at once, with nothing built up front.
    jobs = (
        (args.workflow, call_args, seed, args.concurrency, faults, args.max_crashes,
         args.max_steps, args.fine, args.examples, args.log_level)
        for seed in range(args.seed, args.seed + args.runs)
    )
    started = time.perf_counter()
    results: list[dict[str, Any]] = []
    tty = sys.stderr.isatty() and not args.json
    if args.processes > 1:
        import multiprocessing

        with multiprocessing.get_context("spawn").Pool(args.processes) as pool:
            for done, result in enumerate(pool.imap(_simulate_seed, jobs), 1):
                results.append(result)
                _progress(tty, done, args.runs, result)
    else:
        for done, job in enumerate(jobs, 1):
            results.append(_simulate_seed(job))
            _progress(tty, done, args.runs, results[-1])
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

