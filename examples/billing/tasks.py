"""Subscription billing on the durable workflow engine: a production pynenc app.

A 30-day free trial, a reminder three days before it ends, an invoice on day 30, then up to
seven days for the payment provider's webhook to report the payment. Cancelling at any point
undoes what was done (a saga): the open invoice is voided, the account closed.

    subscription_workflow(account_id)
      open_trial                       -> the account exists, status "trial"
      sleep until day 27               -> a durable timer (wf.root.sleep)
      send_reminder                    -> "your trial ends in 3 days"
      sleep until day 30               -> a durable timer (wf.root.sleep_until)
      issue_invoice                    -> retried with exponential backoff
      wait for signal "payment"        -> up to 7 days (wf.root.wait_for_signal)
        paid:     activate_account     -> "active"
        not paid: suspend_account      -> "suspended"
      cancelled (cancel_workflow) at any point:
        void_invoice, close_account    -> compensations, newest first -> "cancelled"

Unlike ``examples/subscription``, whose waits are ``time.sleep`` inside tasks that hold a
worker for 30 days, the waits here are the engine's durable timers: recorded when they start,
so a worker restart waits only for what remains.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pynenc import PynencBuilder
from pynenc_wf_testing.engine import RetryPolicy, WorkflowCancelled

from .services import accounts, invoices, mailer

DB_PATH = Path(
    os.environ.get("BILLING_DB_PATH", Path.home() / ".cache" / "pynenc-billing" / "billing.db")
)

app = (
    PynencBuilder()
    .app_id("billing")
    .sqlite(str(DB_PATH))
    .thread_runner(min_threads=1, max_threads=8)
    .enable_workflows(
        # The default for execute_task_with_retry: 1 min, 2 min, 4 min ... capped at 1 h.
        retry_policy=RetryPolicy.exponential(
            timedelta(minutes=1), cap=timedelta(hours=1), max_attempts=10, jitter=0.2
        )
    )
    .build()
)

TRIAL_DAYS = 30
REMINDER_DAYS_BEFORE = 3
PAYMENT_GRACE = timedelta(days=7)
PRICE_CENTS = 1_500


class InvoicingUnavailable(Exception):
    """The invoicing API is down for a moment: worth retrying."""


@app.task
def open_trial(account_id: str) -> None:
    accounts.status[account_id] = "trial"


@app.task
def close_account(account_id: str) -> None:
    accounts.status[account_id] = "closed"


@app.task
def send_reminder(account_id: str) -> None:
    mailer.send(account_id, "trial-ends-soon", datetime.now(UTC))


@app.task
def issue_invoice(account_id: str, amount_cents: int) -> str:
    return invoices.issue(account_id, amount_cents)


@app.task
def void_invoice(invoice_id: str) -> None:
    invoices.set_state(invoice_id, "void")


@app.task
def activate_account(account_id: str, invoice_id: str, payment_ref: str) -> None:
    invoices.set_state(invoice_id, "paid")
    accounts.status[account_id] = "active"
    mailer.send(account_id, f"welcome-paid:{payment_ref}", datetime.now(UTC))


@app.task
def suspend_account(account_id: str) -> None:
    accounts.status[account_id] = "suspended"
    mailer.send(account_id, "payment-missing", datetime.now(UTC))


@app.workflow
def subscription_workflow(account_id: str) -> str:
    wf = subscription_workflow.wf
    root = wf.root
    trial_started = root.now()
    try:
        with root.saga() as saga:
            root.execute_task(open_trial, account_id).result
            saga.add_compensation(close_account, account_id)
            wf.save_state({"phase": "trial", "since": trial_started.isoformat()})

            root.sleep(timedelta(days=TRIAL_DAYS - REMINDER_DAYS_BEFORE))
            root.execute_task(send_reminder, account_id).result
            root.sleep_until(trial_started + timedelta(days=TRIAL_DAYS))

            invoice_id = root.execute_task_with_retry(issue_invoice, account_id, PRICE_CENTS)
            saga.add_compensation(void_invoice, invoice_id)
            wf.save_state({"phase": "awaiting payment", "invoice": invoice_id})

            payment = root.wait_for_signal("payment", timeout=PAYMENT_GRACE, default=None)
            if payment is None:
                root.execute_task(suspend_account, account_id).result
                wf.save_state({"phase": "suspended", "invoice": invoice_id})
                return "suspended"
            root.execute_task(activate_account, account_id, invoice_id, payment["ref"]).result
            wf.save_state({"phase": "active", "invoice": invoice_id})
            return "active"
    except WorkflowCancelled:
        # The saga already ran the compensations (newest first) before this handler.
        wf.save_state({"phase": "cancelled"})
        return "cancelled"
