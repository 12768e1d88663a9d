"""Smoke test of ``benchmarks/run.py``: it runs and reports every figure.

Speed goals live in the benchmark itself (``make bench``); nothing here asserts a timing.
"""

from __future__ import annotations

import json

import pytest

from benchmarks import run as bench_run

CONTENDER_KEYS = {
    "label",
    "workflows",
    "steps_per_workflow",
    "steps",
    "median_seconds",
    "steps_per_second",
    "run_only_median_seconds",
    "run_only_steps_per_second",
    "seconds",
    "run_only_seconds",
}


def test_benchmark_quick_json_reports_every_figure(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--quick", "--json", "--workflows", "2", "--steps", "3"]
    argv += ["--thread-workflows", "1", "--thread-steps", "2"]
    assert bench_run.main(argv) == 0
    report = json.loads(capsys.readouterr().out)

    assert set(report["contenders"]) == {"harness", "inline", "thread", "plain"}
    for name, data in report["contenders"].items():
        assert set(data) >= CONTENDER_KEYS, name
        assert data["steps"] == data["workflows"] * data["steps_per_workflow"] > 0
        for key in (
            "median_seconds",
            "steps_per_second",
            "run_only_median_seconds",
            "run_only_steps_per_second",
        ):
            assert data[key] > 0, (name, key)
    assert report["contenders"]["harness"]["steps"] == 6
    assert report["contenders"]["thread"]["steps"] == 2

    for key in ("harness_vs_inline", "harness_vs_thread", "harness_vs_plain"):
        assert report["ratios"][key] > 0, key
    assert set(report["targets"]) == set(report["meets_targets"])

    advance = report["advance_check"]
    assert advance["hours"] == 720
    assert advance["virtual_seconds"] >= 30 * 24 * 3600
    assert advance["wall_seconds"] > 0
    assert isinstance(advance["done_after_advance"], bool)


def test_benchmark_table_renders() -> None:
    report = bench_run.run_benchmarks(
        rounds=1, workflows=1, steps=2, warmup=False, contenders=["harness", "inline", "plain"]
    )
    table = bench_run.format_table(report)
    assert "harness / (b) inline" in table
    assert "advance(days=30)" in table
