"""Smoke test of ``benchmarks/suspended_waits.py``: it runs and reports every figure.

The figures themselves (threads held, idle store operations, wake-up latency) are reported
by the benchmark and in docs/engine.md; nothing here asserts a timing.
"""

from __future__ import annotations

import json

import pytest

pytestmark = [
    pytest.mark.production,
    pytest.mark.filterwarnings("ignore:Running in a secondary thread"),
]


def test_the_suspension_benchmark_reports_every_figure(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from benchmarks import suspended_waits

    assert suspended_waits.main(["--workflows", "2", "--idle", "0.5", "--margin", "3", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["workflows"] == 2
    # the one waiting workflow of each kind holds no runner thread: only the timer service
    assert row["runner_threads_held"] <= 1
    for key in ("idle_store_ops_per_second", "deadline_latency_max", "signal_latency_max"):
        assert row[key] >= 0
