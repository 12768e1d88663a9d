"""What a re-run from a step saves: a workflow of ``--steps`` sequential child calls (100 by
default) runs once in the simulator, then is re-run from its last step (``step#N``) and in
full (from ``step#1``).

Reported: child executions of each run, and wall times (real, ``time.perf_counter``) of the
first run, of the ``rerun_workflow`` call itself (listing the steps and copying the records
before the chosen step), and of driving each re-run to its end, per backend (``memory``,
``sqlite``). Figures, not asserts.

Run: ``.venv/bin/python benchmarks/rerun.py [--steps N] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import rerun_app
from pynenc_wf_testing import WorkflowEnv


def measure(steps: int, backend: str) -> dict[str, Any]:
    rerun_app.EXECUTED.clear()
    with tempfile.TemporaryDirectory() as tmp:
        options = {"path": tmp} if backend == "sqlite" else None
        with WorkflowEnv(seed=0, backend=backend, backend_options=options) as env:
            began = time.perf_counter()
            run = env.start(rerun_app.pipeline, steps)
            run.result
            first_s = time.perf_counter() - began
            figures: dict[str, Any] = {
                "backend": backend, "steps": steps, "first_run_s": round(first_s, 4),
                "first_run_executions": len(rerun_app.EXECUTED),
            }
            for label, from_step in (("last_step", f"step#{steps}"), ("full", "step#1")):
                done = len(rerun_app.EXECUTED)
                began = time.perf_counter()
                again = env.rerun(run, from_step=from_step)
                call_s = time.perf_counter() - began
                again.result
                figures[f"rerun_{label}"] = {
                    "executions": len(rerun_app.EXECUTED) - done,
                    "rerun_call_s": round(call_s, 4),
                    "total_s": round(time.perf_counter() - began, 4),
                    "vs_first_run": round((time.perf_counter() - began) / first_s, 3),
                }
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results = [measure(args.steps, backend) for backend in ("memory", "sqlite")]
    if args.json:
        print(json.dumps(results, indent=1))
        return 0
    for r in results:
        print(f"{r['backend']:7} {r['steps']} steps: first run {r['first_run_s']:.3f} s "
              f"({r['first_run_executions']} executions)")
        for label in ("last_step", "full"):
            x = r[f"rerun_{label}"]
            print(f"        re-run from {label:9}: {x['executions']:4} executions, "
                  f"rerun_workflow() {x['rerun_call_s']:.3f} s, to the end {x['total_s']:.3f} s "
                  f"({x['vs_first_run']:.2f}x the first run)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
