"""Seeded values by identity (issue 13, point 1): a crash, a retry or one more workflow in the
test shifts no other value; the same seed gives the same values in every process."""

from __future__ import annotations

import random
import uuid
from typing import Any

from pynenc_wf_testing import WorkflowEnv
from tests import seed_apps as apps


def same(golden: Any, got: Any) -> bool:
    return bool(golden == got)


def test_a_uuid_drawn_after_the_first_child_survives_every_crash_point() -> None:
    """The issue's own test: the workflow draws wf.root.uuid() after its first child call and
    its business ids (a payment id from uuid4 in a task, the tracking number, a shipment id
    from random in a task) are compared with the golden run. On a shared stream a crash before
    the draw (e.g. before charge_payment commits) gave other ids: a false violation."""
    with WorkflowEnv(seed=3) as env:
        report = env.check_crash_safety(apps.fulfill_order, "o-1", compare=same)
    report.assert_ok()
    names = {c.name for o in report.explored for c in o.schedule.crashes}
    assert {"charge_payment#1", "uuid#1", "ship#1"} <= names
    # Several crashes per run too.
    with WorkflowEnv(seed=3) as env:
        env.check_crash_safety(
            apps.fulfill_order, "o-1", compare=same, max_crashes=2, max_examples=15
        ).assert_ok()


def test_a_crash_before_the_draw_gives_the_golden_values() -> None:
    with WorkflowEnv(seed=8) as env:
        golden = env.start(apps.fulfill_order, "o-2")
        golden_result, golden_id = golden.result, golden.invocation_id
    for point in ("charge_payment#1", "uuid#1", "route:ship#1"):
        with WorkflowEnv(seed=8) as env:
            env.crash_before(point)
            run = env.start(apps.fulfill_order, "o-2")
            assert run.result == golden_result, point
            assert run.invocation_id == golden_id and env.crashes == 1


def test_an_extra_workflow_started_first_changes_nothing_of_another() -> None:
    def run(extra: bool) -> tuple[Any, ...]:
        with WorkflowEnv(seed=5) as env:
            if extra:
                env.start(apps.fulfill_order, "other").result
                env.start(apps.drawing_children, 2).result
            first = env.start(apps.fulfill_order, "o-3")
            children = env.start(apps.drawing_children, 3)
            return first.invocation_id, first.result, children.invocation_id, children.result

    assert run(extra=True) == run(extra=False)


def test_the_k_th_start_of_the_same_call_gets_its_own_id() -> None:
    with WorkflowEnv(seed=5) as env:
        first = env.start(apps.drawing_children, 1)
        second = env.start(apps.drawing_children, 1)
        assert first.invocation_id != second.invocation_id
        assert first.result != second.result  # another invocation draws other values


def run_with_failures(task: Any, fail_times: int, crash_before: str | None = None) -> Any:
    apps.FAIL_TIMES["n"] = fail_times
    try:
        with WorkflowEnv(seed=6) as env:
            if crash_before is not None:
                env.crash_before(crash_before)
            result = env.start(task).result
            assert env.crashes == (crash_before is not None)
            return result
    finally:
        apps.FAIL_TIMES["n"] = 0


def test_a_retry_does_not_shift_later_values() -> None:
    assert run_with_failures(apps.retry_then_values, 2) == run_with_failures(
        apps.retry_then_values, 0
    )


def test_a_retry_draws_afresh_and_a_crash_redraws_the_same() -> None:
    clean = run_with_failures(apps.flaky_token, 0)
    retried = run_with_failures(apps.flaky_token, 1)  # the second attempt's token
    crashed = run_with_failures(apps.flaky_token, 0, crash_before="flaky_token#1")
    assert crashed == clean != retried


def test_uuid4_and_random_inside_tasks_are_stable_under_crashes() -> None:
    with WorkflowEnv(seed=9) as env:
        report = env.check_crash_safety(apps.drawing_children, 3, compare=same)
    report.assert_ok()
    assert len(report.explored) > 10


def test_values_are_per_invocation_not_per_order() -> None:
    with WorkflowEnv(seed=9) as env:
        results = env.start(apps.drawing_children, 3).result
    assert len({r["uuid4"] for r in results}) == 3
    assert all(r["uuid4"] != r["uuid4_again"] for r in results)
    with WorkflowEnv(seed=10) as env:
        other_seed = env.start(apps.drawing_children, 3).result
    assert [r["uuid4"] for r in other_seed] != [r["uuid4"] for r in results]


def test_outside_invocations_one_stream_per_environment() -> None:
    def body() -> tuple[Any, ...]:
        with WorkflowEnv(seed=4) as env:
            first = (uuid.uuid4(), random.random())
            env.start(apps.drawing_children, 2).result  # draws inside leave the stream alone
            return (*first, uuid.uuid4(), random.random())

    def body_without_run() -> tuple[Any, ...]:
        with WorkflowEnv(seed=4):
            return (uuid.uuid4(), random.random(), uuid.uuid4(), random.random())

    assert body() == body() == body_without_run()


def test_a_child_routed_twice_gets_a_second_id_not_the_stored_one() -> None:
    """pynenc's fine-grained window: a crash after routing a child and before recording its
    id routes it again on replay. The first id is in the store: the second call must get
    another one (reusing it would overwrite the stored invocation)."""
    with WorkflowEnv(seed=3) as env:
        env.crash_after("route:charge_payment#1")
        run = env.start(apps.fulfill_order, "o-4")
        assert run.result["payment"].startswith("pay-o-4-")
        charges = [e for e in env.ledger if e.task.endswith("charge_payment")]
        assert len({e.invocation_id for e in charges}) == 2


def test_invocation_ids_are_the_documented_blake2b_derivation() -> None:
    """``blake2b(seed | owner | call id | k)`` shaped as a uuid4 (monkeypatches/ids.py): the
    k-th start of a call from the test is owned by ``top``, a child by its parent."""
    from pynenc_wf_testing.runtime.monkeypatches.ids import derive_bits, uuid4_text

    with WorkflowEnv(seed=5) as env:
        runs = [env.start(apps.drawing_children, 1) for _ in range(3)]
        key = runs[0].invocation.call.call_id.key
        assert [run.invocation_id for run in runs] == [
            uuid4_text(derive_bits(f"5|top|{key}|{k}")) for k in (1, 2, 3)
        ]
        for run in runs:
            run.result
        children = [
            e for e in env.ledger if e.workflow_id == runs[0].invocation_id
            and e.invocation_id != runs[0].invocation_id
        ]
        assert len(children) == 1  # drawing_children(1): one child
        child = runs[0].invocation.app.state_backend.get_invocation(children[0].invocation_id)
        child_key = child.call.call_id.key
        assert children[0].invocation_id == uuid4_text(
            derive_bits(f"5|{runs[0].invocation_id}|{child_key}|1")
        )
