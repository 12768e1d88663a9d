"""Scale smoke test: many concurrent workflows in one environment (small and fast).

The figures (1k / 10k / 50k workflows) live in ``benchmarks/scale.py``; here only what must
hold at any size: every workflow finishes with its result, far more workflows are in flight at
once than a runner nesting awaited children on the Python stack survives (~150), nothing needs
a higher recursion limit, and the garbage-collector tuning is undone when the environment closes.
"""

from __future__ import annotations

import gc
import sys

import pytest

from benchmarks import bench_app
from pynenc_wf_testing import WorkflowEnv

WORKFLOWS = 400
STEPS = 3


def test_hundreds_of_concurrent_workflows_finish_without_a_deeper_stack() -> None:
    limit = sys.getrecursionlimit()
    thresholds = gc.get_threshold()
    with WorkflowEnv(seed=1) as env:
        env.use(bench_app.app)
        runs = [env.start(bench_app.chain, w, STEPS) for w in range(WORKFLOWS)]
        env.run_until_idle()
        assert all(run.done for run in runs)
        assert [run.result for run in runs] == [
            bench_app.expected_chain(w, STEPS) for w in range(WORKFLOWS)
        ]
        # every child ran exactly once, interleaved across workflows
        assert env.executions(bench_app.step) == WORKFLOWS * STEPS
        names = [s.name for s in env.history if s.is_step]
        first_results = [i for i, name in enumerate(names) if name == "step#1"]
        assert len(first_results) == WORKFLOWS
        assert names.index("step#2") < first_results[-1]  # not one workflow after another
        assert gc.get_threshold() != thresholds or thresholds[0] >= 100_000
    assert sys.getrecursionlimit() == limit
    assert gc.get_threshold() == thresholds


def test_a_parked_workflow_keeps_a_small_stack() -> None:
    """Each invocation runs on its own greenlet: a parked workflow holds only its own few
    frames, so the number of workflows in flight is bounded by memory, not by the stack."""
    with WorkflowEnv(seed=2) as env:
        env.use(bench_app.app)
        runs = [env.start(bench_app.chain, w, STEPS) for w in range(50)]
        sim = env._require_sim()
        original = sim._run_slice
        saved: list[int] = []

        def run_slice(thread: object) -> None:
            original(thread)  # type: ignore[arg-type]
            if len(saved) < 200:
                saved.extend(
                    getattr(t.glet, "_stack_saved", 0) for t in sim.threads.values() if t.glet
                )

        sim._run_slice = run_slice  # type: ignore[method-assign]
        env.run_until_idle()
        assert all(run.done for run in runs)
    if not any(saved):
        pytest.skip("this greenlet version does not report saved stack sizes")
    assert max(saved) < 64 * 1024
