"""Module-level app of the re-run and cache-invalidation tests (tests/test_rerun.py).

The activities count their executions (``CALLS``) and return that count in their result, so
a test sees which results a re-run reused (an old count) and which it computed again.
``reset()`` gives every test (and every run of a crash check) a clean outside world.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pynenc import Pynenc

from pynenc_wf_testing.engine import RetryPolicy, enable_workflows

app = enable_workflows(Pynenc(config_values={"app_id": "rerun-tests"}))

#: Executions of the activities, in order: (name, argument).
CALLS: list[tuple[str, Any]] = []
#: Orders whose shipping fails (the outside world broken), until removed.
BROKEN: set[str] = set()


def reset() -> None:
    CALLS.clear()
    BROKEN.clear()
    WOBBLY.clear()


def _count(name: str, arg: Any) -> int:
    CALLS.append((name, arg))
    return sum(1 for n, _ in CALLS if n == name)


class ShippingDown(Exception):
    pass


@app.task
def reserve(order: str) -> str:
    return f"r{_count('reserve', order)}"


@app.task
def charge_payment(order: str, amount: int) -> str:
    return f"c{_count('charge_payment', (order, amount))}:{amount}"


@app.task
def ship(order: str) -> str:
    n = _count("ship", order)
    if order in BROKEN:
        raise ShippingDown(f"shipping is down for {order}")
    return f"s{n}"


@app.workflow
def fulfill(order: str) -> str:
    root = fulfill.wf.root
    reserved = root.execute_task(reserve, order).result
    first = root.execute_task(charge_payment, order, 10).result
    second = root.execute_task(charge_payment, order, 5).result
    shipped = root.execute_task(ship, order).result
    return f"{reserved}/{first}/{second}/{shipped}"


@app.workflow
def napping(order: str) -> str:
    """A durable timer between two calls: a re-run takes its timer afresh."""
    root = napping.wf.root
    reserved = root.execute_task(reserve, order).result
    root.sleep(dt.timedelta(hours=1))
    return f"{reserved}/{root.execute_task(ship, order).result}"


#: How many more times ``wobbly`` fails, per order.
WOBBLY: dict[str, int] = {}


@app.task
def wobbly(order: str) -> str:
    n = _count("wobbly", order)
    if WOBBLY.get(order, 0) > 0:
        WOBBLY[order] -= 1
        raise ShippingDown(f"wobbly {order}")
    return f"w{n}"


@app.workflow
def retrying(order: str) -> str:
    """A retried call (two attempts when ``wobbly`` fails once) before ``ship``."""
    root = retrying.wf.root
    policy = RetryPolicy.fixed(dt.timedelta(minutes=1), max_attempts=3)
    got = root.execute_task_with_retry(wobbly, order, retry=policy)
    return f"{got}/{root.execute_task(ship, order).result}"


@app.workflow
def parent_order(order: str) -> str:
    """Reserves, then runs ``fulfill`` as a sub-workflow (re-running that child alone is
    refused: the parent holds its result)."""
    root = parent_order.wf.root
    reserved = root.execute_task(reserve, order).result
    return f"{reserved}+{root.execute_task(fulfill, order).result}"
