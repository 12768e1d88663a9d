"""A workflow whose code changes between "deployments" (VERSION), for replay tests."""

from __future__ import annotations

import datetime as dt
import time

from pynenc import Pynenc

from pynenc_wf_testing.engine import enable_workflows

app = enable_workflows(Pynenc(config_values={"app_id": "replay-apps"}))

#: 1: the code as recorded; 2: an incompatible change; 3: the same change behind a patch.
VERSION = 1


@app.task
def reserve(order: str) -> str:
    return f"r-{order}"


#: Called by charge(): lets a test "deploy" new code while a workflow is in flight.
ON_CHARGE: list[object] = []


@app.task
def charge(order: str, amount: int) -> str:
    for hook in ON_CHARGE:
        hook()  # type: ignore[operator]
    return f"c-{order}-{amount}"


@app.task
def notify(order: str) -> str:
    return f"n-{order}"


@app.workflow
def checkout(order: str) -> str:
    root = checkout.wf.root
    reservation = root.execute_task(reserve, order).result
    token = root.uuid()
    if VERSION == 1:
        receipt = root.execute_task(charge, order, 10).result
    elif VERSION == 2:
        receipt = root.execute_task(charge, order, 12).result  # price change: incompatible
    else:
        amount = 12 if root.patched("new-price") else 10
        receipt = root.execute_task(charge, order, amount).result
    root.execute_task(notify, order).result
    return f"{reservation}/{receipt}/{token[:4]}"


@app.workflow
def waits_for_go(order: str) -> str:
    root = waits_for_go.wf.root
    reservation = root.execute_task(reserve, order).result
    go = root.wait_for_signal("go")
    return f"{reservation}/{go}"


@app.task
def audit(order: str) -> str:
    return f"a-{order}"


#: The ways ship() changes in VERSION 2 (its ``change`` argument picks one).
CHANGES = (
    "durable_sleep",  # a new wf.root.sleep between the two child calls
    "signal_wait",  # a new wf.root.wait_for_signal there
    "time_sleep",  # a new time.sleep there (not durable)
    "new_value",  # a new wf.root.uuid() draw there
    "different_result",  # the same steps, another return value
    "fails",  # the same steps, then an exception
    "extra_child",  # a new child call between the two
    "trailing_child",  # a new child call after the last one
    "missing_child",  # the second child call dropped
    "reordered",  # the two child calls swapped
)


@app.workflow
def ship(order: str, change: str) -> str:
    """reserve, then notify; in VERSION 2, changed as ``change`` says; in VERSION 3, an
    audit after notify behind a patch."""
    root = ship.wf.root
    new = change if VERSION == 2 else ""
    if new == "reordered":
        notice = root.execute_task(notify, order).result
        reservation = root.execute_task(reserve, order).result
        return f"{reservation}/{notice}"
    reservation = root.execute_task(reserve, order).result
    if new == "durable_sleep":
        root.sleep(dt.timedelta(hours=1))
    elif new == "signal_wait":
        root.wait_for_signal("approved")
    elif new == "time_sleep":
        time.sleep(30)
    elif new == "new_value":
        root.uuid()
    elif new == "extra_child":
        root.execute_task(audit, order).result
    notice = "-" if new == "missing_child" else root.execute_task(notify, order).result
    if new == "trailing_child" or (VERSION == 3 and root.patched("audit-after-notify")):
        root.execute_task(audit, order).result
    if new == "fails":
        raise ValueError(f"no stock for {order}")
    return f"{reservation}/{notice}" + ("!" if new == "different_result" else "")


@app.workflow
def timed(order: str) -> str:
    """Waits in every durable way: a timer, a signal that arrives, one that times out.
    VERSION 2 drops the timer."""
    root = timed.wf.root
    reservation = root.execute_task(reserve, order).result
    if VERSION != 2:
        root.sleep(dt.timedelta(hours=1))
    go = root.wait_for_signal("go", timeout=dt.timedelta(days=1))
    late = root.wait_for_signal("late", timeout=dt.timedelta(hours=2), default="none")
    return f"{reservation}/{go}/{late}"


@app.workflow
def refund(order: str) -> str:
    """Fails after its child; VERSION 2 fails with another error."""
    refund.wf.root.execute_task(reserve, order).result
    if VERSION == 2:
        raise KeyError(order)
    raise ValueError(f"nothing to refund for {order}")
