"""Module-level app of the documentation probes (tests/test_docs_promises_*.py).

Written as a user would after reading README.md and docs/: a small shop with an order
workflow, a subscription that sleeps and waits for a signal, and a plain task.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import time
from typing import Any

from pynenc import Pynenc, PynencBuilder

from pynenc_wf_testing.engine import enable_workflows

app = enable_workflows(Pynenc(config_values={"app_id": "docs-probe"}))

#: Side effects of the activities: (name, argument).
CALLS: list[tuple[str, Any]] = []
#: Orders whose shipping fails until removed.
BROKEN: list[str] = []


def reset() -> None:
    CALLS.clear()
    BROKEN.clear()


class CarrierDown(Exception):
    """The shipping carrier is unavailable."""


@app.task
def reserve(order: str) -> str:
    CALLS.append(("reserve", order))
    return f"reserved {order}"


@app.task
def charge_payment(order: str) -> str:
    CALLS.append(("charge_payment", order))
    return f"paid {order}"


@app.task
def ship(order: str) -> str:
    CALLS.append(("ship", order))
    if order in BROKEN:
        raise CarrierDown(f"carrier down for {order}")
    return f"shipped {order}"


@app.task
def send_reminder(account: str) -> str:
    CALLS.append(("send_reminder", account))
    return f"reminded {account}"


@app.task
def plain(x: int) -> int:
    return x * 2


@app.workflow
def fulfill(order: str) -> str:
    root = fulfill.wf.root
    root.execute_task(reserve, order).result
    root.execute_task(charge_payment, order).result
    return root.execute_task(ship, order).result


@app.workflow
def subscription(account: str) -> str:
    root = subscription.wf.root
    root.sleep(dt.timedelta(days=27))
    root.execute_task(send_reminder, account).result
    paid = root.wait_for_signal("payment", timeout=dt.timedelta(days=3), default=None)
    return f"paid {paid}" if paid is not None else "lapsed"


@app.workflow
def approval(doc: str) -> str:
    root = approval.wf.root
    approval.wf.save_state({"phase": "waiting"})
    decision = root.wait_for_signal("approved")
    return f"{doc} approved by {decision['by']}"


@app.workflow
def gated(doc: str) -> str:
    root = gated.wf.root
    root.halt("needs approval")
    return f"{doc} released"


@app.workflow
def review(doc: str) -> str:
    root = review.wf.root
    decision = root.wait_for_signal("approved", timeout=dt.timedelta(days=1), default=None)
    return f"{doc} approved by {decision['by']}" if decision else f"{doc} archived"


#: What ``priced`` charges: a test changes it between recording and replaying, as a deploy
#: would change the code.
PRICE = {"amount": 10}


@app.task
def charge(order: str, amount: int) -> str:
    CALLS.append(("charge", order))
    return f"charged {order} {amount}"


@app.workflow
def priced(order: str) -> str:
    root = priced.wf.root
    root.execute_task(reserve, order).result
    return root.execute_task(charge, order, PRICE["amount"]).result


@app.task
def work(job: str) -> str:
    time.sleep(60)  # a minute of work: holds a worker slot in virtual time
    return f"done {job}"


#: An app built for production, on SQLite: a test must never open this file (README, "The
#: app may be built for production"). One path per process (pytest-xdist workers).
PROD_DB = os.path.join(tempfile.gettempdir(), f"docs-probe-prod-{os.getpid()}.db")
prod_app = PynencBuilder().app_id("docs-probe-prod").sqlite(PROD_DB).enable_workflows().build()


@prod_app.task
def prod_step(order: str) -> str:
    return f"stepped {order}"


@prod_app.workflow
def prod_flow(order: str) -> str:
    return prod_flow.wf.root.execute_task(prod_step, order).result


@app.task
def takes_callback(order: str, on_paid: Any = None) -> str:
    return order


@app.workflow
def spinning(n: int) -> int:
    """Routes children forever without waiting: a run that never ends."""
    root = spinning.wf.root
    i = 0
    while True:
        root.uuid()
        i += 1


@app.task
def busy(seconds: int) -> str:
    deadline = dt.datetime.now() + dt.timedelta(seconds=seconds)
    while dt.datetime.now() < deadline:
        pass
    return "done"


@app.task
def bill(order: str) -> str:
    CALLS.append(("bill", order))
    return f"billed {order}"


@app.task
def release(order: str) -> None:
    CALLS.append(("release", order))


@app.task
def refund(order: str) -> None:
    CALLS.append(("refund", order))
    raise RuntimeError(f"refund of {order} bounced")


@app.workflow
def saga_order(order: str) -> str:
    """README's saga: refund fails, release still runs, the workflow fails with CarrierDown."""
    root = saga_order.wf.root
    with root.saga() as saga:
        root.execute_task(reserve, order).result
        saga.add_compensation(release, order)
        root.execute_task(bill, order).result
        saga.add_compensation(refund, order)
        return root.execute_task(ship, order).result


@app.task
def finish_at(label: str, hours: int) -> str:
    time.sleep(hours * 3600)
    return label


@app.workflow
def race() -> tuple[int, Any]:
    root = race.wf.root
    slow = root.execute_task(finish_at, "slow", 10)
    fast = root.execute_task(finish_at, "fast", 1)
    root.sleep(dt.timedelta(hours=12))
    return root.wait_any([slow, fast])


@app.workflow
def tie() -> tuple[int, Any]:
    root = tie.wf.root
    a = root.execute_task(finish_at, "a", 1)
    b = root.execute_task(finish_at, "b", 1)
    root.sleep(dt.timedelta(hours=2))
    return root.wait_any([b, a])


@app.workflow
def renewal(account: str, month: int = 1) -> str:
    root = renewal.wf.root
    root.execute_task(charge, account, month).result
    if month >= 3:
        return f"{account} renewed {month} times"
    root.sleep(dt.timedelta(days=30))
    root.continue_as_new(account, month + 1)
    return "unreachable"


#: Bad calls of wf.root operations, by name (tests/test_docs_promises_engine.py).
BAD_OPS: dict[str, Any] = {
    "sleep_negative": lambda root: root.sleep(dt.timedelta(seconds=-1)),
    "sleep_text": lambda root: root.sleep("1h"),
    "sleep_until_naive": lambda root: root.sleep_until(dt.datetime(2030, 1, 2)),
    "signal_name_int": lambda root: root.wait_for_signal(5),
    "signal_timeout_negative": lambda root: root.wait_for_signal(
        "x", timeout=dt.timedelta(seconds=-1)
    ),
    "wait_any_empty": lambda root: root.wait_any([]),
    "wait_all_text": lambda root: root.wait_all("abc"),
    "parent_close_unknown": lambda root: root.start_child(plain, 1, parent_close="orphan"),
    "retry_not_a_policy": lambda root: root.execute_task_with_retry(plain, 1, retry=3),
    "patched_empty": lambda root: root.patched(""),
    "side_effect_not_callable": lambda root: root.side_effect(5),
    "wait_for_task_text": lambda root: root.wait_for_task("plain"),
}


@app.workflow
def misuses(op: str) -> str:
    BAD_OPS[op](misuses.wf.root)
    return "accepted"
