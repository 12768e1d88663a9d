"""The workflow of ``benchmarks/rerun.py`` (pynenc needs module-level tasks)."""

from __future__ import annotations

from pynenc import Pynenc

from pynenc_wf_testing.engine import enable_workflows

app = enable_workflows(Pynenc(config_values={"app_id": "rerun-bench", "logging_level": "error"}))

#: Executions of ``step``, by index.
EXECUTED: list[int] = []


@app.task
def step(index: int) -> int:
    EXECUTED.append(index)
    return index * 2


@app.workflow
def pipeline(steps: int) -> int:
    """``steps`` child calls, one after another."""
    root = pipeline.wf.root
    return sum(root.execute_task(step, i).result for i in range(steps))
