"""Apps of the seeding tests (tests/test_seeding.py): values drawn by identity, not by order."""

from __future__ import annotations

import random
import uuid
from typing import Any

from pynenc import Pynenc

app = Pynenc(config_values={"app_id": "wf-tests-seeds"})


@app.task
def charge_payment(order: str) -> str:
    return f"pay-{order}-{uuid.uuid4()}"


@app.task
def ship(order: str, tracking: str) -> str:
    return f"ship-{order}-{tracking}-{random.randint(0, 10**9)}"


@app.workflow
def fulfill_order(order: str) -> dict[str, Any]:
    root = fulfill_order.wf.root
    payment = root.execute_task(charge_payment, order).result
    tracking = root.uuid()
    shipment = root.execute_task(ship, order, tracking).result
    return {"payment": payment, "tracking": tracking, "shipment": shipment}


#: How many attempts of ``flaky_token`` fail (set by the tests).
FAIL_TIMES = {"n": 0}


@app.task(retry_for=(ValueError,), max_retries=3)
def flaky_token() -> str:
    """Draws a uuid4, then fails on its first ``FAIL_TIMES["n"]`` attempts."""
    token = str(uuid.uuid4())
    if flaky_token.invocation.num_retries < FAIL_TIMES["n"]:
        raise ValueError("flaky")
    return token


@app.workflow
def retry_then_values() -> dict[str, Any]:
    """A retried child, then values drawn by the workflow and by later children."""
    root = retry_then_values.wf.root
    token = root.execute_task(flaky_token).result
    later = root.execute_task(charge_payment, "after-retry")
    return {
        "token_len": len(token),
        "uuid": root.uuid(),
        "random": root.random(),
        "child_id": later.invocation_id,
        "payment": later.result,
    }


@app.task
def draws(tag: str) -> dict[str, Any]:
    """stdlib randomness inside a task: uuid4 and several random functions."""
    return {
        "tag": tag,
        "uuid4": str(uuid.uuid4()),
        "random": random.random(),
        "randint": random.randint(0, 10**9),
        "choice": random.choice("abcdefghij"),
        "uuid4_again": str(uuid.uuid4()),
    }


@app.workflow
def drawing_children(n: int) -> list[dict[str, Any]]:
    root = drawing_children.wf.root
    return [root.execute_task(draws, f"t{i}").result for i in range(n)]
