"""How soon the timer service ends what no engine operation sees, in production.

pynenc's ThreadRunner + SQLite backend, default settings (``engine_timer_tick_sec`` 0.25 s),
the runner in a thread of this process, the workflows of tests/production/prod_app.py:

- **run timeout of a blocked run**: ``blocked_past_its_timeout`` waits in a plain ``.result``
  on a child that never finishes by itself, with ``run_timeout=1 s``. Reported: when its
  child became FAILED (cancelled by the service) and when the workflow became FAILED (after
  its saga's compensation), minus the recorded run deadline;
- **parent-close after completing**: ``leaves_children`` starts a child that never finishes
  by itself and completes; reported: when that child became FAILED minus when the parent
  became SUCCESS.

Instants are pynenc's own status-record timestamps. Usage:
``python benchmarks/close_latency.py [--rounds 5] [--json]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pynenc import Pynenc

from pynenc_wf_testing.engine import schema, start_workflow
from tests.production import prod_app as pa


def _status_at(app: Any, invocation_id: str, status: str) -> float:
    record = app.orchestrator.get_invocation_status_record(invocation_id)
    assert record.status.value == status, (invocation_id, record.status)
    return float(record.timestamp.timestamp())


def _wait(condition: Callable[[], Any], timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise SystemExit(f"gave up after {timeout} s waiting for {condition}")
        time.sleep(0.01)


def _children(app: Any, run: Any) -> dict[str, str]:
    found = {}
    for child_id in app.state_backend.get_child_invocations(run.invocation_id):
        child = app.state_backend.get_invocation(child_id)
        found[child.arguments.kwargs.get("label", child.task.task_id.func_name)] = str(child_id)
    return found


def one_round(n: int) -> dict[str, float]:
    from pynenc.runner.thread_runner import ThreadRunner

    Pynenc._clear_instances()
    pa.reset()
    pa.GATES.clear()
    app = pa.build(f"{tempfile.mkdtemp()}/pynenc.db", f"close-latency-{n}")
    runner = ThreadRunner(app)
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    try:
        final = lambda inv: app.orchestrator.get_invocation_status(inv).is_final()  # noqa: E731
        run = start_workflow(
            pa.blocked_past_its_timeout, f"b{n}", run_timeout=dt.timedelta(seconds=1)
        )
        _wait(lambda: final(run.invocation_id))
        deadline = dt.datetime.fromisoformat(
            app.state_backend.get_workflow_data(run.workflow, schema.DEADLINE)
        ).timestamp()
        child = _children(app, run)[f"b{n}"]
        parent = pa.leaves_children(f"c{n}", False)
        _wait(lambda: final(parent.invocation_id))
        dropped = _children(app, parent)[f"c{n}-dropped"]
        _wait(lambda: final(dropped))
        return {
            "timeout_child_cancelled": _status_at(app, child, "failed") - deadline,
            "timeout_workflow_failed": _status_at(app, str(run.invocation_id), "failed")
            - deadline,
            "close_child_cancelled": _status_at(app, dropped, "failed")
            - _status_at(app, str(parent.invocation_id), "success"),
        }
    finally:
        for gate in pa.GATES.values():
            gate.set()
        runner.stop_runner_loop()
        thread.join(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rounds = [one_round(n) for n in range(args.rounds)]
    report = {
        key: {
            "median_s": round(statistics.median(r[key] for r in rounds), 3),
            "max_s": round(max(r[key] for r in rounds), 3),
        }
        for key in rounds[0]
    }
    if args.json:
        print(json.dumps(report))
        return
    for key, figures in report.items():
        print(f"{key}: median {figures['median_s']} s, max {figures['max_s']} s")


if __name__ == "__main__":
    main()
