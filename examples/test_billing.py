"""Tests of the subscription billing workflow (examples/billing/tasks.py)."""

from datetime import timedelta

import pytest

from billing import tasks
from billing.services import accounts, invoices, mailer


@pytest.fixture(autouse=True)
def outside_world():
    accounts.reset()
    invoices.reset()
    mailer.reset()


def reset_outside_world():
    accounts.reset()
    invoices.reset()
    mailer.reset()


def test_the_reminder_goes_out_on_day_27(wf_env):
    signed_up = wf_env.now
    wf_env.start(tasks.subscription_workflow, "acct-1")

    wf_env.advance(days=26)
    assert mailer.sent_to("acct-1", "trial-ends-soon") == []
    assert accounts.status["acct-1"] == "trial"

    wf_env.advance(days=1)
    assert mailer.sent_to("acct-1", "trial-ends-soon") == [signed_up + timedelta(days=27)]


def test_a_paid_invoice_activates_the_account(wf_env):
    run = wf_env.start(tasks.subscription_workflow, "acct-2")

    wf_env.advance(days=30)  # the 30-day timer fires: the invoice goes out
    assert invoices.of("acct-2") == [("inv-acct-2-1", 1_500, "open")]
    assert wf_env.query(run).state == {"phase": "awaiting payment", "invoice": "inv-acct-2-1"}

    wf_env.advance(days=2)
    wf_env.signal(run, "payment", {"ref": "pay_123"})  # the payment provider's webhook

    assert run.result == "active"
    assert accounts.status["acct-2"] == "active"
    assert invoices.of("acct-2") == [("inv-acct-2-1", 1_500, "paid")]


def test_an_unpaid_invoice_suspends_the_account_after_seven_days(wf_env):
    signed_up = wf_env.now
    run = wf_env.start(tasks.subscription_workflow, "acct-3")

    assert run.result == "suspended"  # time skips to each deadline: no payment ever comes
    assert wf_env.now == signed_up + timedelta(days=37)
    assert accounts.status["acct-3"] == "suspended"
    assert mailer.sent_to("acct-3", "payment-missing") == [signed_up + timedelta(days=37)]


def test_cancelling_during_the_trial_closes_the_account(wf_env):
    run = wf_env.start(tasks.subscription_workflow, "acct-4")
    wf_env.advance(days=10)

    wf_env.cancel(run, "customer clicked cancel")

    assert run.result == "cancelled"
    assert accounts.status["acct-4"] == "closed"
    assert invoices.of("acct-4") == []  # never issued
    assert mailer.sent_to("acct-4", "trial-ends-soon") == []
    assert wf_env.query(run).state == {"phase": "cancelled"}


def test_cancelling_while_waiting_for_payment_voids_the_invoice(wf_env):
    run = wf_env.start(tasks.subscription_workflow, "acct-5")
    wf_env.advance(days=31)

    wf_env.cancel(run)

    assert run.result == "cancelled"
    assert invoices.of("acct-5") == [("inv-acct-5-1", 1_500, "void")]
    assert accounts.status["acct-5"] == "closed"
    compensations = [s.name for s in run.history if s.name in ("void_invoice#1", "close_account#1")]
    assert compensations == ["void_invoice#1", "close_account#1"]  # newest first


def test_a_payment_sent_early_is_not_lost(wf_env):
    run = wf_env.start(tasks.subscription_workflow, "acct-6")
    wf_env.signal(run, "payment", {"ref": "prepaid"})  # before the workflow waits for it

    assert run.result == "active"


def test_a_worker_down_for_hours_mid_trial_keeps_the_schedule(wf_env):
    # The worker dies right after the 27-day timer started and is back 6 hours later. The
    # timer's deadline was recorded: the reminder still goes out on day 27, not day 27¼.
    signed_up = wf_env.now
    wf_env.crash_after("sleep#1", restart_after=timedelta(hours=6))
    run = wf_env.start(tasks.subscription_workflow, "acct-7")

    wf_env.advance(days=30)

    assert wf_env.crashes == 1
    assert mailer.sent_to("acct-7", "trial-ends-soon") == [signed_up + timedelta(days=27)]
    wf_env.signal(run, "payment", {"ref": "pay_7"})
    assert run.result == "active"


def test_every_crash_point_keeps_the_subscription_right(wf_env):
    report = wf_env.check_crash_safety(
        tasks.subscription_workflow,
        "acct-8",
        before_each=reset_outside_world,
        after_start=lambda env, run: env.signal(run, "payment", {"ref": "pay_8"}),
    )

    report.assert_ok()
    assert accounts.status["acct-8"] == "active"  # the world of the last run checked
