"""A workflow whose code changes between "deployments" (VERSION), for replay tests."""

from __future__ import annotations

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
