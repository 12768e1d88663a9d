"""Order fulfilment for an online shop: a production pynenc app, written with no test in mind.

The app is built the way it is deployed: SQLite stores and a multi-threaded runner. Tests run
it unchanged on simulated components with ``wf_env.use(app)``; the SQLite file is never opened.

    fulfill_order_workflow(order)
      reserve_inventory       -> the warehouse holds the items
      charge_payment          -> takes the money (retried on TransientPaymentError)
        declined, or retries used up? -> release_inventory (compensation), "cancelled"
      ship_order_workflow     -> a sub-workflow
        create_shipping_label
        dispatch_parcel       -> waits hours for the courier's pickup round
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pynenc import PynencBuilder

from .services import PaymentDeclined, TransientPaymentError, gateway, warehouse

#: Where the production worker keeps its durable state.
DB_PATH = Path(os.environ.get("SHOP_DB_PATH", Path.home() / ".cache" / "pynenc-shop" / "shop.db"))

app = (
    PynencBuilder()
    .app_id("shop")
    .sqlite(str(DB_PATH))
    .multi_thread_runner(min_threads=1, max_threads=4)
    .logging_level("info")
    .build()
)

#: The courier collects parcels every few hours.
COURIER_ROUND_SECONDS = 4 * 60 * 60


@dataclass(frozen=True)
class Order:
    order_id: str
    sku: str = "book-42"
    quantity: int = 1
    amount_cents: int = 2_500
    card: str = "tok_visa"


@dataclass(frozen=True)
class FulfilmentResult:
    order_id: str
    status: str  # "fulfilled" or "cancelled"
    charge_id: str | None = None
    label: str | None = None
    dispatched_at: str | None = None
    reason: str | None = None


# ----------------------------------------------------------------------------- activities


@app.task
def reserve_inventory(order: Order) -> str:
    time.sleep(2)  # the warehouse API is slow
    return warehouse.reserve(order.order_id, order.sku, order.quantity)


@app.task
def release_inventory(order: Order) -> None:
    time.sleep(1)
    warehouse.release(order.order_id)


@app.task(retry_for=(TransientPaymentError,), max_retries=3)
def charge_payment(order: Order) -> str:
    time.sleep(3)  # a round trip to the payment provider
    return gateway.charge(order.order_id, order.amount_cents, order.card)


@app.task
def create_shipping_label(order: Order) -> str:
    time.sleep(5)
    return f"label-{order.order_id}"


@app.task
def dispatch_parcel(order: Order, label: str) -> str:
    time.sleep(COURIER_ROUND_SECONDS)  # wait for the courier's next pickup round
    return datetime.now(UTC).isoformat()


# ----------------------------------------------------------------------------- workflows


@app.workflow
def ship_order_workflow(order: Order) -> dict[str, str]:
    root = ship_order_workflow.wf.root
    label = root.execute_task(create_shipping_label, order).result
    dispatched_at = root.execute_task(dispatch_parcel, order, label).result
    return {"label": label, "dispatched_at": dispatched_at}


@app.workflow
def fulfill_order_workflow(order: Order) -> FulfilmentResult:
    root = fulfill_order_workflow.wf.root
    root.execute_task(reserve_inventory, order).result
    try:
        charge_id = root.execute_task(charge_payment, order).result
    except (PaymentDeclined, TransientPaymentError) as error:
        # Declined, or the gateway still failing after every retry. Compensation: give the
        # items back to the warehouse.
        root.execute_task(release_inventory, order).result
        return FulfilmentResult(order.order_id, "cancelled", reason=str(error))
    shipment = root.execute_task(ship_order_workflow, order).result
    return FulfilmentResult(
        order.order_id,
        "fulfilled",
        charge_id=charge_id,
        label=shipment["label"],
        dispatched_at=shipment["dispatched_at"],
    )
