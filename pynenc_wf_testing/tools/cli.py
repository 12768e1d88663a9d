"""The ``pynenc-wf`` command: export and replay histories, and fleet simulation (VOPR style).

    pynenc-wf export  --app myshop.tasks:app --workflow-id ID [--sqlite PATH] [-o FILE]
    pynenc-wf replay  FILE [FILE ...]
    pynenc-wf simulate myshop.tasks:fulfill_order_workflow --args '["o-1"]' --runs 100
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

__all__ = ["main"]


def _load(spec: str, what: str) -> Any:
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise SystemExit(f"error: {what} {spec!r}: expected 'package.module:name'.")
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as error:
        raise SystemExit(
            f"error: cannot import {module_name!r}: {type(error).__name__}: {error}"
        ) from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise SystemExit(f"error: module {module_name!r} has no attribute {attr!r}.")
        obj = getattr(obj, part)
    return obj


# ---------------------------------------------------------------------- export / replay


def _cmd_export(args: argparse.Namespace) -> int:
    from pynenc.app import Pynenc

    from pynenc_wf_testing.checks.replay import export_histories

    app = _load(args.app, "--app")
    if not isinstance(app, Pynenc):
        raise SystemExit(f"error: --app {args.app!r} is a {type(app).__name__}, not a pynenc app.")
    if args.sqlite:
        import os

        if not os.path.isfile(args.sqlite):
            raise SystemExit(f"error: --sqlite {args.sqlite!r}: no such file.")
        # Read that database with pynenc's own SQLite components, whatever the app names.
        values = dict(app.config_values or {})
        values.update(
            sqlite_db_path=args.sqlite,
            orchestrator_cls="SQLiteOrchestrator",
            broker_cls="SQLiteBroker",
            state_backend_cls="SQLiteStateBackend",
            client_data_store_cls="SQLiteClientDataStore",
            trigger_cls="SQLiteTrigger",
        )
        app.config_values = values
        app._reset_cached_components()
    doc = export_histories(app, workflow_id=args.workflow_id, workflow_type=args.workflow_type)
    text = json.dumps(doc, sort_keys=True, indent=1)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(text)
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

    failures = replayed = 0
    for path in files:
        try:
            history = load_history(path)
        except HistoryFormatError as error:
            print(f"FAIL {path}: {_one_line(error)}")
            failures += 1
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
                print(f"FAIL {label}: {_one_line(error)}")
                failures += 1
                continue
            except Exception as error:  # the code under test may raise anything
                print(f"FAIL {label}: the replay raised {type(error).__name__}: "
                      f"{_one_line(error)}")
                failures += 1
                continue
            replayed += 1
            if result.completed:
                print(f"ok   {label}")
            else:
                # A run recorded in flight: nothing past where it stopped can be compared.
                print(f"ok   {label} (in flight when recorded: replayed up to where it stopped, "
                      f"{result.replayed_calls} child calls)")
    if not failures and not replayed:
        print("FAIL nothing replayed: none of the histories holds a workflow record.")
        return 1
    return 1 if failures else 0


# ---------------------------------------------------------------------- simulate


def _plan_for(seed: int, golden_steps: int, faults: set[str], max_crashes: int,
              retried: list[tuple[str, int, type[BaseException]]]) -> dict[str, Any]:
    """A random fault plan, fully determined by ``seed``. A crash at step N fires at the first
    step numbered N or later where a crash is allowed (see ``_arm``)."""
    import random

    rng = random.Random(f"pynenc-wf-simulate:{seed}")
    plan: dict[str, Any] = {"crashes": [], "failures": []}
    if "crash" in faults and golden_steps:
        for _ in range(rng.randint(1, max_crashes)):
            plan["crashes"].append([rng.choice(["before", "after"]), rng.randint(1, golden_steps)])
        plan["crashes"].sort(key=lambda c: (c[1], c[0]))
    if "fail" in faults and retried:
        task_key, max_retries, exc = rng.choice(retried)
        plan["failures"].append([task_key, rng.randint(1, max(1, max_retries)), exc.__name__])
    return plan


def _arm(env: Any, plan: dict[str, Any], fine: bool) -> None:
    from pynenc_wf_testing.runtime.history import in_pynenc_window

    for phase, number in plan["crashes"]:
        def matcher(step: Any, phase: str = phase, number: int = number) -> bool:
            return bool(step.number is not None and step.number >= number
                        and (fine or not in_pynenc_window(step, phase)))

        env._faults.add_crash(phase, matcher, description=f"step >= {number}", optional=True)


def _retried_tasks(app: Any) -> list[tuple[str, int, type[BaseException]]]:
    """Tasks whose pynenc retries make an injected failure transparent to the result."""
    found: list[tuple[str, int, type[BaseException]]] = []
    for task in sorted(app.tasks.values(), key=lambda t: t.task_id.key):
        retriable = task.retriable_exceptions
        if retriable and task.conf.max_retries > 0:
            exc = retriable[0]
            if isinstance(exc, type) and issubclass(exc, Exception):
                found.append((task.task_id.key, int(task.conf.max_retries), exc))
    return found


def _run_one(
    workflow: Any, call_args: list[Any], seed: int, concurrency: int, plan: dict[str, Any] | None,
    retried: list[tuple[str, int, type[BaseException]]], max_steps: int, fine: bool = False,
) -> dict[str, Any]:
    from pynenc_wf_testing.checks.faults import FailFault
    from pynenc_wf_testing.env.environment import WorkflowEnv
    from pynenc_wf_testing.errors import WorkflowTestingError

    outcome: dict[str, Any] = {"seed": seed, "results": [], "error": None}
    with WorkflowEnv(seed=seed, max_steps=max_steps) as env:
        env.use(workflow.app)
        if plan is not None:
            _arm(env, plan, fine)
            exceptions = {task_key: exc for task_key, _, exc in retried}
            for task_key, times, _name in plan["failures"]:
                env._faults.failures.append(
                    FailFault(task_key, task_key.rsplit(".", 1)[-1], times, exceptions[task_key])
                )
        runs: list[Any] = [env.start(workflow, *call_args) for _ in range(concurrency)]
        try:
            for run in runs:
                try:
                    outcome["results"].append(repr(run.result))
                except WorkflowTestingError:
                    raise
                except Exception as error:
                    outcome["results"].append(f"raised {type(error).__name__}: {error}")
        except WorkflowTestingError as error:
            outcome["error"] = f"{type(error).__name__}: {str(error).splitlines()[0]}"
        sim = env._require_sim()
        outcome["steps"] = len([s for s in sim.history if s.is_step])
        outcome["crashes"] = sim.crashes
        outcome["virtual_seconds"] = (env.now - env._start).total_seconds()
        outcome["crash_points"] = sorted(
            {p.description for p in env._faults.crash_points if p.fired}
        )
        from pynenc_wf_testing.checks.idempotency import marked_keys

        outcome["duplicates"] = [
            f"{runs_[0].name} ran {len(runs_)} times"
            for runs_ in sim.duplicate_side_effects(marked_keys())
        ]
    return outcome


def _violations(golden: dict[str, Any], got: dict[str, Any]) -> list[str]:
    problems = []
    if got["error"]:
        problems.append(got["error"])
    elif got["results"] != golden["results"]:
        problems.append(f"results {got['results']} differ from the fault-free {golden['results']}")
    problems.extend(got["duplicates"])
    return problems


def _simulate_seed(job: tuple[Any, ...]) -> dict[str, Any]:
    spec, call_args, seed, concurrency, faults, max_crashes, max_steps, fine = job
    workflow = _load(spec, "workflow")
    retried = _retried_tasks(workflow.app)
    golden = _run_one(workflow, call_args, seed, concurrency, None, retried, max_steps)
    plan = _plan_for(seed, golden["steps"], set(faults), max_crashes, retried)
    got = _run_one(workflow, call_args, seed, concurrency, plan, retried, max_steps, fine)
    problems = _violations(golden, got)
    shrunk = plan
    if problems:
        shrunk = _shrink(workflow, call_args, seed, concurrency, plan, retried, max_steps, golden,
                         fine)
    return {
        "seed": seed, "plan": plan, "shrunk": shrunk, "problems": problems,
        "steps": got["steps"], "crashes": got["crashes"],
        "virtual_seconds": got["virtual_seconds"], "crash_points": got["crash_points"],
    }


def _shrink(workflow: Any, call_args: list[Any], seed: int, concurrency: int,
            plan: dict[str, Any], retried: Any, max_steps: int, golden: dict[str, Any],
            fine: bool) -> dict[str, Any]:
    """Drop faults one at a time while the run still misbehaves (delta debugging)."""
    current = {"crashes": list(plan["crashes"]), "failures": list(plan["failures"])}
    changed = True
    while changed:
        changed = False
        for kind in ("failures", "crashes"):
            for index in range(len(current[kind])):
                candidate = {k: list(v) for k, v in current.items()}
                del candidate[kind][index]
                got = _run_one(workflow, call_args, seed, concurrency, candidate, retried,
                               max_steps, fine)
                if _violations(golden, got):
                    current, changed = candidate, True
                    break
            if changed:
                break
    return current


def _plan_text(plan: dict[str, Any]) -> str:
    parts = [f"crash_{phase}(step >= {step})" for phase, step in plan["crashes"]]
    parts += [f"fail({key.rsplit('.', 1)[-1]}, times={times}, exc={exc})"
              for key, times, exc in plan["failures"]]
    return "; ".join(parts) or "no faults"


def _cmd_simulate(args: argparse.Namespace) -> int:
    try:
        call_args = json.loads(args.args)
    except json.JSONDecodeError as error:
        raise SystemExit(f"error: --args must be a JSON list: {error}") from None
    if not isinstance(call_args, list):
        raise SystemExit("error: --args must be a JSON list, e.g. --args '[\"o-1\"]'.")
    faults = sorted({f.strip() for f in args.faults.split(",") if f.strip()})
    unknown = set(faults) - {"crash", "fail"}
    if unknown:
        raise SystemExit(f"error: unknown --faults {sorted(unknown)}; choose from crash,fail.")
    workflow = _load(args.workflow, "workflow")
    from pynenc.task import Task

    if not isinstance(workflow, Task):
        raise SystemExit(f"error: {args.workflow} is not a pynenc task.")
    jobs = [
        (args.workflow, call_args, seed, args.concurrency, faults, args.max_crashes,
         args.max_steps, args.fine)
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
    summary = {
        "workflow": args.workflow,
        "runs": len(results),
        "concurrency": args.concurrency,
        "steps": sum(r["steps"] for r in results),
        "virtual_seconds": sum(r["virtual_seconds"] for r in results),
        "crashes": sum(r["crashes"] for r in results),
        "crash_points_covered": len({p for r in results for p in r["crash_points"]}),
        "violations": len(failing),
        "wall_seconds": round(elapsed, 3),
    }
    reproductions = []
    for result in failing:
        command = (
            f"pynenc-wf simulate {args.workflow} --args {_shell(args.args)} --runs 1 "
            f"--seed {result['seed']} --concurrency {args.concurrency} --faults "
            f"{','.join(faults)} --max-crashes {args.max_crashes}"
            + (" --fine" if args.fine else "")
        )
        reproductions.append({**result, "command": command})
    if args.json:
        print(json.dumps({"summary": summary, "violations": reproductions}, indent=1, sort_keys=True,
                         default=str))
    else:
        print(f"pynenc-wf simulate {args.workflow}")
        for key, value in summary.items():
            print(f"  {key:<22} {value}")
        for item in reproductions:
            print(f"\nVIOLATION seed {item['seed']}: " + "; ".join(item["problems"]))
            print(f"  fault plan:   {_plan_text(item['plan'])}")
            print(f"  shrunk plan:  {_plan_text(item['shrunk'])}")
            print(f"  reproduce:    {item['command']}")
    return 1 if failing else 0


def _shell(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


def _progress(tty: bool, done: int, total: int, result: dict[str, Any]) -> None:
    if not tty:
        return
    width = 30
    filled = width * done // total
    mark = "!" if result["problems"] else ""
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {mark}")
    sys.stderr.flush()


# ---------------------------------------------------------------------- entry point


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pynenc-wf", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    export = sub.add_parser("export", help="export workflow histories from an app's store")
    export.add_argument("--app", required=True, help="the production app, package.module:app")
    export.add_argument("--sqlite", help="path of the SQLite database (overrides the app's)")
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
    simulate.add_argument("--runs", type=int, default=100, help="seeds to run (default 100)")
    simulate.add_argument("--concurrency", type=int, default=1, help="instances per run")
    simulate.add_argument("--faults", default="crash,fail", help="crash,fail (default both)")
    simulate.add_argument("--max-crashes", type=int, default=2)
    simulate.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    simulate.add_argument("--processes", type=int, default=1, help="spread seeds over processes")
    simulate.add_argument("--max-steps", type=int, default=100_000)
    simulate.add_argument("--fine", action="store_true",
                          help="also crash inside pynenc's own windows (see docs/faults.md)")
    simulate.add_argument("--json", action="store_true", help="machine-readable output")
    simulate.set_defaults(func=_cmd_simulate)

    args = parser.parse_args(argv)
    if getattr(args, "runs", 1) < 1 or getattr(args, "concurrency", 1) < 1:
        parser.error("--runs and --concurrency must be >= 1")
    code: int = args.func(args)
    return code


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
