"""(seed, code, inputs, faults) => the same history, in any process and any PYTHONHASHSEED."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pynenc_wf_testing import WorkflowEnv
from tests.apps import flows

ROOT = Path(__file__).resolve().parents[1]


def scenario(seed: int) -> dict[str, Any]:
    """A run with concurrent sub-workflows, direct children, sleeps, values and randomness."""
    with WorkflowEnv(seed=seed) as env:
        world = env.start(flows.concurrent_world, 3)
        subs = env.start(flows.parent_of_subworkflows, [2, 1])
        uid = env.start(flows.uuid_then_child)
        rnd = env.start(flows.activity_randomness)
        results = [world.result, subs.result, list(uid.result), rnd.result]
        return {
            "history": env.history_json(),
            "results": results,
            "ledger": [e.to_dict() for e in env.ledger],
            "run_ids": [world.invocation_id, subs.invocation_id, uid.invocation_id],
            "now": env.now.isoformat(),
        }


SCRIPT = """
import json, sys
from tests.test_determinism import scenario
json.dump(scenario(int(sys.argv[1])), sys.stdout)
"""


def run_in_subprocess(seed: int, hash_seed: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "PYTHONHASHSEED": hash_seed,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(seed)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_same_seed_same_history_in_process() -> None:
    first = scenario(7)
    second = scenario(7)
    assert first == second
    parsed = json.loads(first["history"])
    assert parsed["format"] == "pynenc-wf-history"
    assert parsed["version"] == 1
    assert parsed["seed"] == 7
    assert len(parsed["steps"]) > 50


def test_same_seed_same_history_across_processes_and_hash_seeds() -> None:
    expected = json.loads(json.dumps(scenario(7)))  # tuples -> lists, as the child sends
    procs = {hs: run_in_subprocess(7, hs) for hs in ("0", "12345")}
    for hash_seed, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, f"PYTHONHASHSEED={hash_seed}:\n{err[-3000:]}"
        got = json.loads(out)
        assert got["history"] == expected["history"], f"PYTHONHASHSEED={hash_seed}"
        assert got == expected, f"PYTHONHASHSEED={hash_seed}"


def test_results_do_not_depend_on_the_seed_but_interleavings_do() -> None:
    runs = {seed: scenario(seed) for seed in range(4)}
    assert len({json.dumps(r["results"][:2]) for r in runs.values()}) == 1
    orders = {tuple(s["name"] for s in json.loads(r["history"])["steps"]) for r in runs.values()}
    assert len(orders) > 1


def test_different_seeds_interleave_concurrent_workflows_differently() -> None:
    orders = set()
    for seed in range(6):
        with WorkflowEnv(seed=seed) as env:
            runs = [env.start(flows.running_sum, 4) for _ in range(3)]
            env.run_until_idle()
            assert [r.result for r in runs] == [6, 6, 6]
            index = {r.workflow_id: i for i, r in enumerate(runs)}
            orders.add(tuple(index[s.workflow_id] for s in env.history))
    assert len(orders) > 1


def test_invocation_ids_are_seeded() -> None:
    def ids(seed: int) -> list[str]:
        with WorkflowEnv(seed=seed) as env:
            run = env.start(flows.fan_out, 3)
            run.result
            return [run.invocation_id] + [e.invocation_id for e in env.ledger]

    assert ids(1) == ids(1)
    assert set(ids(1)).isdisjoint(ids(2))
    assert len(set(ids(1))) == 4


def test_workflow_values_are_seeded() -> None:
    def value(seed: int) -> str:
        with WorkflowEnv(seed=seed) as env:
            return env.start(flows.uuid_then_child).result[0]

    assert value(3) == value(3)
    assert value(3) != value(4)


def test_stdlib_randomness_in_an_activity_reproduces_by_seed() -> None:
    def draw(seed: int) -> dict[str, Any]:
        with WorkflowEnv(seed=seed) as env:
            first = env.start(flows.activity_randomness).result
            second = env.start(flows.activity_randomness).result
            assert first != second  # a stream, not one value repeated
            return {"first": first, "second": second}

    assert draw(5) == draw(5)
    assert draw(5) != draw(6)


def test_stdlib_randomness_is_seeded_regardless_of_previous_global_state() -> None:
    import random

    with WorkflowEnv(seed=8) as env:
        baseline = env.start(flows.activity_randomness).result
    random.seed(123)
    random.random()
    with WorkflowEnv(seed=8) as env:
        assert env.start(flows.activity_randomness).result == baseline


@pytest.mark.parametrize("crash", ["child#2", "add#1", "route:branch#2"])
def test_same_fault_plan_same_history(crash: str) -> None:
    def run() -> str:
        with WorkflowEnv(seed=1) as env:
            env.crash_before(crash)
            env.start(flows.concurrent_world, 3).result
            assert env.crashes == 1
            return env.history_json()

    assert run() == run()


def test_history_json_is_stable_json() -> None:
    with WorkflowEnv(seed=0) as env:
        env.start(flows.sequential, 1).result
        text = env.history_json()
    parsed = json.loads(text)
    assert json.dumps(parsed, sort_keys=True, indent=1, ensure_ascii=True) == text
    first = parsed["steps"][0]
    assert set(first) == {
        "number",
        "kind",
        "name",
        "workflow_id",
        "invocation_id",
        "time",
        "task",
        "detail",
    }
    assert first["name"] == "route:sequential#1"
    assert first["task"] == "tests.apps.flows.sequential"
    assert first["time"] == "2030-01-01T00:00:00+00:00"
