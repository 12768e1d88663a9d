"""Tests of the shop's order fulfilment workflow (examples/shop/tasks.py)."""

from datetime import timedelta

import pytest
from pynenc_wf_testing import WorkflowEnv

from shop import tasks
from shop.services import gateway, warehouse
from shop.tasks import Order, TransientPaymentError


@pytest.fixture(autouse=True)
def outside_world():
    """The payment provider and the warehouse start every test clean."""
    gateway.reset()
    warehouse.reset(stock={"book-42": 10})


def test_order_is_charged_once_and_shipped(wf_env):
    run = wf_env.start(tasks.fulfill_order_workflow, Order("o-1"))

    result = run.result

    assert result.status == "fulfilled"
    assert result.label == "label-o-1"
    assert gateway.charges == [("o-1", 2_500)]
    assert warehouse.stock["book-42"] == 9
    assert wf_env.executions(tasks.charge_payment) == 1
    assert wf_env.executions(tasks.ship_order_workflow) == 1


def test_declined_card_releases_the_inventory(wf_env):
    run = wf_env.start(tasks.fulfill_order_workflow, Order("o-2", card="tok_declined"))

    result = run.result

    assert result.status == "cancelled"
    assert "declined" in result.reason
    assert gateway.charges == []
    assert warehouse.stock["book-42"] == 10  # the compensation gave the book back
    assert wf_env.executions(tasks.release_inventory) == 1
    assert wf_env.executions(tasks.ship_order_workflow) == 0


def test_transient_payment_errors_are_retried(wf_env):
    wf_env.fail(tasks.charge_payment, times=2, exc=TransientPaymentError)

    run = wf_env.start(tasks.fulfill_order_workflow, Order("o-3"))

    assert run.result.status == "fulfilled"
    attempts = [e.outcome for e in wf_env.ledger if e.name == "charge_payment#1"]
    assert attempts == ["retry", "retry", "success"]
    assert gateway.charges_for("o-3") == 1  # the failed attempts never reached the gateway


def test_order_is_cancelled_when_the_retries_run_out(wf_env):
    # charge_payment has max_retries=3: four failures in a row exhaust it.
    wf_env.fail(tasks.charge_payment, times=4, exc=TransientPaymentError)

    run = wf_env.start(tasks.fulfill_order_workflow, Order("o-4"))

    assert run.result.status == "cancelled"
    attempts = [e.outcome for e in wf_env.ledger if e.name == "charge_payment#1"]
    assert attempts == ["retry", "retry", "retry", "failed"]
    assert warehouse.stock["book-42"] == 10


def test_crash_after_the_charge_does_not_charge_again(wf_env):
    # The worker dies right after pynenc recorded the charge's result. On recovery the
    # workflow replays from the top and gets the recorded result instead of charging again.
    wf_env.crash_after("charge_payment")

    run = wf_env.start(tasks.fulfill_order_workflow, Order("o-5"))

    assert run.result.status == "fulfilled"
    assert wf_env.crashes == 1
    assert wf_env.executions(tasks.charge_payment) == 1
    assert gateway.charges_for("o-5") == 1


def test_crash_before_the_charge_is_recorded_charges_twice(wf_env):
    # The worker dies after the gateway took the money but before pynenc recorded the
    # result. On recovery pynenc runs charge_payment again: activities are at-least-once, and
    # this one is not idempotent, so the customer pays twice. The fix belongs in the
    # activity (an idempotency key the gateway deduplicates on); this test pins the danger.
    wf_env.crash_before("charge_payment")

    run = wf_env.start(tasks.fulfill_order_workflow, Order("o-6"))

    assert run.result.status == "fulfilled"
    assert wf_env.crashes == 1
    attempts = [e.outcome for e in wf_env.ledger if e.name == "charge_payment#1"]
    assert attempts == ["crashed", "success"]
    assert gateway.charges_for("o-6") == 2


def test_hours_of_courier_waiting_take_no_real_time(wf_env):
    started = wf_env.now

    result = wf_env.start(tasks.fulfill_order_workflow, Order("o-7")).result

    # The courier round (4 h) plus the API calls (2 s + 3 s + 5 s), all on the virtual clock.
    assert wf_env.now - started == timedelta(hours=4, seconds=10)
    assert result.dispatched_at == (started + timedelta(hours=4, seconds=10)).isoformat()


def test_production_database_is_never_opened(wf_env):
    if tasks.DB_PATH.parent.exists():
        pytest.skip(f"{tasks.DB_PATH.parent} exists on this machine: a real shop runs here")

    wf_env.use(tasks.app)  # start() does this too; here it is the point of the test
    assert wf_env.start(tasks.fulfill_order_workflow, Order("o-8")).result.status == "fulfilled"

    # Opening the SQLite store would have created both.
    assert not tasks.DB_PATH.exists()
    assert not tasks.DB_PATH.parent.exists()


def test_same_seed_same_history():
    def history(seed: int) -> str:
        gateway.reset()  # the history holds the results too, and the fake numbers its charges
        warehouse.reset(stock={"book-42": 10})
        with WorkflowEnv(seed=seed) as env:
            env.crash_before("charge_payment")
            env.start(tasks.fulfill_order_workflow, Order("o-9")).result
            return env.history_json()

    first = history(seed=42)

    assert history(seed=42) == first
    assert '"name": "charge_payment#1"' in first


def test_every_crash_point_ends_fulfilled(wf_env):
    # A crash before or after any step of the workflow, its sub-workflow and a retried
    # transient failure: the order still ends fulfilled, the book leaves the shelf once.
    def reset_world():
        gateway.reset()
        warehouse.reset(stock={"book-42": 10})

    def same_outcome(golden, got):
        # The charge id and dispatch time carry attempt counters: compare what matters.
        return (golden.status, golden.label) == (got.status, got.label)

    report = wf_env.check_crash_safety(
        tasks.fulfill_order_workflow,
        Order("o-10"),
        compare=same_outcome,
        invariant=lambda env: warehouse.stock["book-42"] == 9,
        before_each=reset_world,
        after_start=lambda env, run: env.fail(tasks.charge_payment, times=1, exc=TransientPaymentError),
    )

    report.assert_ok()
    assert len(report.explored) >= 20  # before and after each of its steps
