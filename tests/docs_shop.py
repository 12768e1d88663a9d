"""The user's module the code blocks of README.md and docs/*.md talk about.

tests/test_docs_examples.py runs every Python block of the docs against this module, imported
as the docs import it (``from myshop import tasks``, ``shop.fulfill``, ``tasks.app``): one
module-level pynenc app with the engine enabled, written as a user would after reading the
docs. Nothing here knows about the harness.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from pynenc import PynencBuilder

app = PynencBuilder().app_id("docs-shop").enable_workflows().build()


@dataclass(frozen=True)
class Order:
    id: str
    amount_cents: int = 2_500


@dataclass(frozen=True)
class FulfilmentResult:
    order_id: str
    status: str
    payment_id: str
    tracking: str


@dataclass
class Gateway:
    """A payment gateway keyed by order id (an idempotency key), as real gateways are."""

    charges: dict[str, str] = field(default_factory=dict)

    def charge(self, order_id: str) -> str:
        return self.charges.setdefault(order_id, f"pay-{uuid.uuid4().hex[:8]}")

    def charges_for(self, order_id: str) -> int:
        return 1 if order_id in self.charges else 0

    def reset(self) -> None:
        self.charges.clear()


@dataclass
class Documents:
    published: list[str] = field(default_factory=list)
    archived: list[str] = field(default_factory=list)

    def both_published_and_archived(self) -> bool:
        return any(doc in self.archived for doc in self.published)

    def reset(self) -> None:
        self.published.clear()
        self.archived.clear()


gateway = Gateway()
documents = Documents()
#: Orders whose first shipment attempt found the carrier down (``ship`` fails once per order).
CARRIER_TRIED: list[str] = []
SENT: list[tuple[str, str]] = []


def reset() -> None:
    gateway.reset()
    documents.reset()
    CARRIER_TRIED.clear()
    SENT.clear()


class CarrierDown(Exception):
    """The carrier's API is down."""


# ----------------------------------------------------------------------------- activities


@app.task
def reserve(order: Order | str) -> str:
    return f"reserved {order.id if isinstance(order, Order) else order}"


@app.task(retry_for=(TimeoutError,), max_retries=3)
def charge_payment(order: Order) -> str:
    return gateway.charge(order.id)


@app.task
def create_label(order: Order) -> str:
    return f"TRACK-{order.id}"


@app.task
def send_email(to: str, body: str) -> str:
    SENT.append((to, body))
    return f"sent to {to}"


@app.task
def send_reminder(account: str) -> str:
    return f"reminded {account}"


@app.task
def ship(order: str) -> str:
    if order not in CARRIER_TRIED:
        CARRIER_TRIED.append(order)
        raise CarrierDown(f"carrier down for {order}")
    return f"shipped {order}"


@app.task
def publish(doc_id: str, approver: str) -> None:
    documents.published.append(doc_id)


@app.task
def archive(doc_id: str) -> None:
    documents.archived.append(doc_id)


@app.task
def charge(account: str, month: int = 1) -> str:
    return f"charged {account} for month {month}"


@app.task
def note(what: str) -> str:
    return what


@app.task
def work(job: str) -> str:
    time.sleep(60)  # a minute of work: holds a worker slot in virtual time
    return f"done {job}"


@app.task(queue="reports")
def nightly_report(day: int) -> str:
    time.sleep(30)
    return f"report {day}"


@app.task
def rebuild_index(shop: str) -> str:
    return f"index of {shop} rebuilt"


# ----------------------------------------------------------------------------- workflows


@app.workflow
def shipping_workflow(order: Order) -> str:
    return shipping_workflow.wf.root.execute_task(create_label, order).result


@app.workflow
def fulfill_order_workflow(order: Order) -> FulfilmentResult:
    root = fulfill_order_workflow.wf.root
    root.execute_task(reserve, order).result
    payment_id = root.execute_task(charge_payment, order).result
    tracking = root.execute_task(shipping_workflow, order).result
    root.execute_task(send_email, to=f"{order.id}@example.com", body=tracking).result
    return FulfilmentResult(order.id, "fulfilled", payment_id, tracking)


@app.workflow
def fulfill_order(order_id: str) -> str:
    """Returns the payment id: a value a crash check can compare across runs."""
    return fulfill_order.wf.root.execute_task(charge_payment, Order(order_id)).result


@app.workflow
def other_workflow(x: str) -> str:
    return other_workflow.wf.root.execute_task(note, x).result


@app.workflow
def fulfill(order: str) -> str:
    """Reserve, charge a deposit and the balance, ship (the carrier is down the first time)."""
    root = fulfill.wf.root
    root.execute_task(reserve, order).result
    root.execute_task(charge_payment, Order(order, 500)).result
    root.execute_task(charge_payment, Order(order, 2_000)).result
    return root.execute_task(ship, order).result


@app.workflow
def subscription_workflow(account: str) -> str:
    root = subscription_workflow.wf.root
    root.sleep(timedelta(days=27))
    root.execute_task(send_reminder, account).result
    paid = root.wait_for_signal("payment", timeout=timedelta(days=3), default=None)
    return "paid" if paid is not None else "lapsed"


@app.workflow
def review_document(doc_id: str) -> str:
    """A day to approve, a reminder, one more day; an approval on time is never lost."""
    root = review_document.wf.root
    approval = root.wait_for_signal("approved", timeout=timedelta(days=1), default=None)
    if approval is None:
        root.execute_task(send_reminder, doc_id).result
        approval = root.wait_for_signal("approved", timeout=timedelta(days=1), default=None)
    if approval is None:
        approval = root.wait_for_signal("approved", timeout=timedelta(0), default=None)
    if approval is not None:
        root.execute_task(publish, doc_id, approval["by"]).result
        return f"published by {approval['by']}"
    root.execute_task(archive, doc_id).result
    return "archived"




@app.task
def long_job(what: str) -> str:
    time.sleep(3600)  # an hour of work
    return f"done {what}"


@app.workflow
def blocked_on_child() -> str:
    return blocked_on_child.wf.root.execute_task(long_job, "reindex").result
