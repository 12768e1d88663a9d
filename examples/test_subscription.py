"""Tests of the free-trial workflow (examples/subscription/tasks.py)."""

from datetime import timedelta

import pytest

from subscription import tasks
from subscription.services import accounts, outbox


@pytest.fixture(autouse=True)
def outside_world():
    accounts.reset()
    outbox.reset()


def test_reminder_goes_out_three_days_before_the_trial_ends(wf_env):
    signed_up = wf_env.now
    wf_env.start(tasks.subscription_workflow, "acct-1")

    wf_env.advance(days=26)
    assert wf_env.executions(tasks.send_reminder) == 0

    wf_env.advance(days=1)
    assert wf_env.executions(tasks.send_reminder) == 1
    assert outbox.sent_at("acct-1", "trial-ends-soon") == [signed_up + timedelta(days=27)]


def test_trial_becomes_paid_after_30_days(wf_env):
    run = wf_env.start(tasks.subscription_workflow, "acct-2")

    wf_env.advance(days=30)

    assert run.done
    assert run.result == "active"
    assert wf_env.executions(tasks.send_reminder) == 1
    assert accounts.billed == ["acct-2"]


def test_cancelled_trial_is_not_billed(wf_env):
    run = wf_env.start(tasks.subscription_workflow, "acct-3")
    wf_env.advance(days=10)

    accounts.cancel("acct-3")  # the customer clicks "cancel" on day 10
    wf_env.advance(days=20)

    assert run.result == "cancelled"
    assert accounts.billed == []


def test_crash_at_the_end_of_the_wait_does_not_restart_it(wf_env):
    # The worker dies on day 27, just before the finished wait is recorded. The wait runs
    # again, but it sleeps until an absolute instant, so it returns at once: the reminder
    # still goes out on day 27, not on day 54.
    signed_up = wf_env.now
    wf_env.crash_before("wait_until_trial_day")

    run = wf_env.start(tasks.subscription_workflow, "acct-4")

    assert run.result == "active"
    assert wf_env.crashes == 1
    first_wait = [e.outcome for e in wf_env.ledger if e.name == "wait_until_trial_day#1"]
    assert first_wait == ["crashed", "success"]
    assert outbox.sent_at("acct-4", "trial-ends-soon") == [signed_up + timedelta(days=27)]
    assert wf_env.now == signed_up + timedelta(days=30)
