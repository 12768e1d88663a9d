"""Cost of ``check_interleavings`` on the review example (examples/review).

    .venv/bin/python benchmarks/interleavings.py

Prints, for the planted race and the fixed workflow: schedules explored, boundaries, wall
time of the whole check and per explored run, and the wall time of one plain run of the same
workflow for scale (the ratio is what the check costs in runs).
"""

from __future__ import annotations

import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))

from review import tasks  # noqa: E402
from review.services import documents  # noqa: E402

from pynenc_wf_testing import Advance, Cancel, Signal, WorkflowEnv  # noqa: E402

EVENTS = [Signal("approved", {"by": "ann"}), Cancel("withdrawn"), Advance(timedelta(hours=6))]


def main() -> None:
    for workflow in (tasks.review_document, tasks.review_document_fixed):
        with WorkflowEnv(seed=1, log_level="critical") as env:
            began = time.perf_counter()
            env.start(workflow, "doc-0").result
            one = time.perf_counter() - began
            began = time.perf_counter()
            report = env.check_interleavings(
                workflow, "doc-1", events=EVENTS, before_each=documents.reset,
                invariant=lambda env: not documents.both_published_and_archived(),
            )
            took = time.perf_counter() - began
        runs = len(report.explored) + 1
        print(
            f"{workflow.task_id.func_name}: {len(report.explored)} schedules over "
            f"{len(report.boundaries)} boundaries, {len(report.failing)} failing; "
            f"check {took:.2f} s = {runs} runs x {1000 * took / runs:.1f} ms "
            f"(one plain run {1000 * one:.1f} ms, first run of the process included)"
        )


if __name__ == "__main__":
    main()
