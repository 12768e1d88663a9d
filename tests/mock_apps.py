"""Workflows for tests/test_mocks.py: a parent calling tasks and a child workflow with its own
children, a pynenc-retried task and an engine-retried call."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from pynenc import Pynenc

from pynenc_wf_testing.engine import RetryPolicy, enable_workflows

app = enable_workflows(Pynenc(config_values={"app_id": "mock-tests"}))
other_app = Pynenc(config_values={"app_id": "mock-tests-other"})

#: Real executions of the tasks below (a mocked call never lands here).
REAL: list[tuple[str, Any]] = []


class Transient(Exception):
    """Retried by pynenc (``retry_for``) and by the engine's policy."""


@app.task
def charge(order: str, amount: int = 10) -> str:
    REAL.append(("charge", order))
    return f"charged-{order}-{amount}"


@app.task
def ship(order: str) -> str:
    REAL.append(("ship", order))
    return f"shipped-{order}"


@app.task(retry_for=(Transient,), max_retries=5)
def flaky_call(order: str) -> str:
    REAL.append(("flaky_call", order))
    return f"flaky-{order}"


@app.task
def pack(item: str) -> str:
    REAL.append(("pack", item))
    return f"packed-{item}"


@app.workflow
def packing(order: str) -> list[str]:
    """A child workflow with children of its own."""
    root = packing.wf.root
    return [root.execute_task(pack, f"{order}-{i}").result for i in range(2)]


@app.workflow
def fulfil(order: str) -> dict[str, Any]:
    root = fulfil.wf.root
    started = time.time()
    charged = root.execute_task(charge, order, amount=25).result
    packed = root.execute_task(packing, order).result
    shipped = root.execute_task(ship, order).result
    return {
        "charged": charged,
        "packed": packed,
        "shipped": shipped,
        "took": round(time.time() - started),
    }


@app.workflow
def retried(order: str) -> str:
    """pynenc retries ``flaky_call`` (same invocation, ``num_retries`` 1, 2, ...)."""
    return retried.wf.root.execute_task(flaky_call, order).result  # type: ignore[no-any-return]


@app.workflow
def engine_retried(order: str) -> str:
    """The engine retries ``ship``: each attempt is a fresh child invocation."""
    policy = RetryPolicy.fixed(dt.timedelta(seconds=5), max_attempts=5, retry_on=(Transient,))
    return engine_retried.wf.root.execute_task_with_retry(ship, order, retry=policy)  # type: ignore[no-any-return]


@other_app.task
def elsewhere() -> int:
    return 1
