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
    for key in (
        "idle_store_ops_per_second", "deadline_rerouted_max", "deadline_picked_up_max",
        "deadline_latency_max", "signal_latency_max", "plain_burst_max",
    ):
        assert row[key] >= 0
    # each step of a deadline wake-up comes after the one before it
    assert row["deadline_rerouted_max"] <= row["deadline_picked_up_max"] <= row["deadline_latency_max"]
    assert isinstance(row["deadline_store_ops_per_wake"], float)


def test_the_benchmark_wakes_k_among_n_waiting(capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks import suspended_waits

    argv = [
        "--workflows", "6", "--wake", "1", "--idle", "0.5", "--margin", "3", "--json",
        "--start-batch", "1",  # one routing per workflow (the other test: pynenc's batches)
    ]
    assert suspended_waits.main(argv) == 0
    (row,) = json.loads(capsys.readouterr().out)
    # 6 waiting (3 signal waiters, 2 sleepers due in a year, 1 due soon); 1 of each kind woken
    assert (row["workflows"], row["woken_at_once"]) == (6, 1)
    assert row["runner_threads_held"] <= 1
    assert row["signal_latency_max"] >= 0
