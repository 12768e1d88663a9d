"""Re-execution cost per resume of a long workflow, with and without continue-as-new.

A monthly renewal loop (charge, then a durable 30-day sleep) runs for ``--months`` months
(24 by default) in the simulator, once as one run and once continuing as new after every
month. Each month's timer is followed by a worker crash, so every resume re-executes the
workflow body from its first line, as a resume does whenever the worker that held the
workflow is gone (and, once waits give their worker back, at every wake-up): the body
returns recorded results up to where it stopped, then goes on.

Reported per resume: the months the re-executed body went through from its records
(each is two recorded operations: the charge's result and the fired timer) and the workflow
data records its run holds. Without continue-as-new both grow with the months done; with it
they stay flat. Wall times are reported as figures, not asserted.

Run: ``.venv/bin/python benchmarks/continue_as_new.py [--months N] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import chain_app
from pynenc_wf_testing import WorkflowEnv

#: Recorded operations per month of the loop (the charge's result, the fired timer).
OPS_PER_MONTH = 2


def renewal_loop(months: int, *, chain: bool, seed: int = 0) -> dict[str, Any]:
    """Run the loop with a crash after every month's timer; count what each resume replays."""
    chain_app.EXECUTIONS.clear()
    began = time.perf_counter()
    with WorkflowEnv(seed=seed, log_level="error") as env:
        env.use(chain_app.app)
        for _ in range(months):
            # Each armed crash fires once, at the next timer that fires.
            env.crash_after(lambda step: step.name.startswith("timer#"))
        run = env.start(chain_app.renewal, "acct", 1, months, chain)
        result = run.result
        runs = len(run.runs)
        crashes = env.crashes
        records = _records_per_run(env, run)
    wall = time.perf_counter() - began
    per_resume = _replayed_per_resume(chain_app.EXECUTIONS)
    return {
        "months": months,
        "continue_as_new": chain,
        "result": result,
        "runs": runs,
        "crashes": crashes,
        "executions": len(chain_app.EXECUTIONS),
        "replayed_months_per_resume": per_resume,
        "replayed_ops_per_resume": [m * OPS_PER_MONTH for m in per_resume],
        "max_replayed_ops": max(per_resume, default=0) * OPS_PER_MONTH,
        "total_replayed_ops": sum(per_resume) * OPS_PER_MONTH,
        "records_per_run_max": max(records),
        "wall_seconds": wall,
    }


def _replayed_per_resume(executions: list[list[int]]) -> list[int]:
    """Months each resume went through from records: an execution that goes through a month
    an earlier execution already went through is a resume (months are unique in a chain:
    each run starts at the month after its predecessor's last)."""
    seen: set[int] = set()
    out = []
    for passes in executions:
        if not passes:
            continue
        replayed = [m for m in passes if m in seen]
        if replayed:
            out.append(len(replayed))
        seen.update(passes)
    return out


def _records_per_run(env: WorkflowEnv, run: Any) -> list[int]:
    """Workflow data records each run of the chain holds at its end (its history's size)."""
    doc = json.loads(env.history_json())
    sizes = {w["workflow_id"]: len(w["data"]) for w in doc["workflows"]}
    return [sizes.get(r.workflow_id, 0) for r in run.runs]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args(argv)
    rows = [renewal_loop(options.months, chain=chain) for chain in (False, True)]
    if options.json:
        print(json.dumps({"runs": rows}, indent=2, default=str))
        return 0
    print(f"renewal loop of {options.months} months, a worker crash after every month's timer")
    for row in rows:
        label = "continue-as-new every month" if row["continue_as_new"] else "one run      "
        print(
            f"  {label}: runs {row['runs']}, resumes {len(row['replayed_months_per_resume'])}, "
            f"replayed ops per resume {_span(row['replayed_ops_per_resume'])} "
            f"(total {row['total_replayed_ops']}), largest run history "
            f"{row['records_per_run_max']} records, wall {row['wall_seconds']:.3f} s"
        )
    plain, chained = rows
    print(
        f"  replayed ops in all: {plain['total_replayed_ops']} vs {chained['total_replayed_ops']} "
        f"({plain['total_replayed_ops'] / max(1, chained['total_replayed_ops']):.1f}x)"
    )
    return 0


def _span(values: list[int]) -> str:
    if not values:
        return "-"
    return f"{values[0]}..{values[-1]}" if values[0] != values[-1] else f"{values[0]} (flat)"


if __name__ == "__main__":
    raise SystemExit(main())
