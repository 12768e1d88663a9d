"""Free trials: welcome e-mail, a reminder 3 days before the 30-day trial ends, then billing.

A production pynenc app (SQLite stores, multi-threaded runner). The waits are plain
``time.sleep`` calls inside tasks, which a test runs on the virtual clock.

    subscription_workflow(account_id)
      start_trial            -> returns when the trial started (recorded durably)
      send_welcome_email
      wait_until_trial_day   -> sleeps until day 27
      send_reminder
      wait_until_trial_day   -> sleeps until day 30
      still_subscribed?      -> charge_first_month, "active"; otherwise "cancelled"
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pynenc import PynencBuilder

from .services import accounts, outbox

DB_PATH = Path(
    os.environ.get(
        "SUBSCRIPTIONS_DB_PATH", Path.home() / ".cache" / "pynenc-subscriptions" / "subs.db"
    )
)

app = (
    PynencBuilder()
    .app_id("subscriptions")
    .sqlite(str(DB_PATH))
    .multi_thread_runner(min_threads=1, max_threads=4)
    .build()
)

TRIAL_DAYS = 30
REMINDER_DAY = TRIAL_DAYS - 3


@app.task
def start_trial(account_id: str) -> str:
    return datetime.now(UTC).isoformat()


@app.task
def send_welcome_email(account_id: str) -> None:
    outbox.send(account_id, "welcome", datetime.now(UTC))


@app.task
def wait_until_trial_day(account_id: str, trial_started: str, day: int) -> None:
    # Sleep until an absolute instant, not for a fixed duration: if the worker dies and this
    # task runs again, it only waits for what is left.
    deadline = datetime.fromisoformat(trial_started) + timedelta(days=day)
    time.sleep(max(0.0, (deadline - datetime.now(UTC)).total_seconds()))


@app.task
def send_reminder(account_id: str) -> None:
    outbox.send(account_id, "trial-ends-soon", datetime.now(UTC))


@app.task
def still_subscribed(account_id: str) -> bool:
    return account_id not in accounts.cancelled


@app.task
def charge_first_month(account_id: str) -> None:
    accounts.billed.append(account_id)


@app.workflow
def subscription_workflow(account_id: str) -> str:
    root = subscription_workflow.wf.root
    trial_started = root.execute_task(start_trial, account_id).result
    root.execute_task(send_welcome_email, account_id).result
    root.execute_task(wait_until_trial_day, account_id, trial_started, REMINDER_DAY).result
    root.execute_task(send_reminder, account_id).result
    root.execute_task(wait_until_trial_day, account_id, trial_started, TRIAL_DAYS).result
    if not root.execute_task(still_subscribed, account_id).result:
        return "cancelled"
    root.execute_task(charge_first_month, account_id).result
    return "active"
