"""Module-level pynenc apps for the fault-injection and crash-check tests.

Some workflows here are wrong on purpose: the crash checks must catch them.
"""

from __future__ import annotations

import random
import time
import uuid

from pynenc import Pynenc

from pynenc_wf_testing import non_idempotent

app = Pynenc(config_values={"app_id": "fault-apps"})

#: A fake external payment gateway: survives worker crashes, like a real one would.
GATEWAY: list[tuple[str, int]] = []
#: Charges deduplicated by idempotency key, like a gateway that honours keys.
KEYED_GATEWAY: dict[str, int] = {}
#: Side effects a workflow body performs directly (a bug: replays repeat them).
EMAILS: list[str] = []
#: Executions per argument of the `fragile` task.
FRAGILE_RUNS: dict[str, int] = {}


def reset() -> None:
    GATEWAY.clear()
    KEYED_GATEWAY.clear()
    EMAILS.clear()
    FRAGILE_RUNS.clear()


class TransientError(Exception):
    pass


@app.task
def step(i: int, tag: str = "") -> int:
    time.sleep(60)  # I/O: a virtual minute
    return i * 2


@app.task(retry_for=(TransientError,), max_retries=3)
def flaky(i: int) -> int:
    return i + 100


@non_idempotent
@app.task
def charge(order: str, amount: int) -> str:
    GATEWAY.append((order, amount))
    return f"ch-{order}-{amount}"


@app.task
def charge_with_key(key: str, amount: int) -> str:
    KEYED_GATEWAY.setdefault(key, amount)
    return f"ch-{key}"


@app.task
def fragile(name: str) -> str:
    """Survives being repeated once, not twice: a bug only two crashes can show."""
    FRAGILE_RUNS[name] = FRAGILE_RUNS.get(name, 0) + 1
    return "ok" if FRAGILE_RUNS[name] <= 2 else "corrupted"


@app.workflow
def sequential(n: int) -> int:
    total = 0
    for i in range(n):
        total += sequential.wf.root.execute_task(step, i).result
    return total


@app.workflow
def with_uuid(n: int) -> tuple[int, str]:
    token = with_uuid.wf.root.uuid()
    total = sum(with_uuid.wf.root.execute_task(step, i).result for i in range(n))
    return total, token


@app.workflow
def uses_retry(i: int) -> int:
    return uses_retry.wf.root.execute_task(flaky, i).result


@app.workflow
def uuid4_in_body(n: int) -> int:
    """BUG: a fresh uuid4() per replay feeds a child call."""
    total = 0
    for i in range(n):
        total += uuid4_in_body.wf.root.execute_task(step, i, str(uuid.uuid4())).result
    return total


@app.workflow
def random_in_body(n: int) -> int:
    """BUG: random() in the workflow body decides a child call's argument."""
    total = 0
    for i in range(n):
        total += random_in_body.wf.root.execute_task(step, i, f"{random.random():.6f}").result
    return total


@app.workflow
def emails_in_body(order: str) -> int:
    """BUG: a side effect in the workflow body is repeated by every replay."""
    EMAILS.append(f"order {order} received")
    return emails_in_body.wf.root.execute_task(step, 1).result


@app.workflow
def pays(order: str) -> str:
    """BUG: charge is non-idempotent and has no idempotency key."""
    receipt = pays.wf.root.execute_task(charge, order, 10).result
    pays.wf.root.execute_task(step, 1).result
    return receipt


@app.workflow
def pays_with_key(order: str) -> str:
    """The fix: an idempotency key the gateway honours, stable across replays."""
    key = f"{order}-{pays_with_key.wf.root.uuid()}"
    receipt = pays_with_key.wf.root.execute_task(charge_with_key, key, 10).result
    pays_with_key.wf.root.execute_task(step, 1).result
    return receipt


@app.workflow
def uses_fragile(name: str) -> str:
    return uses_fragile.wf.root.execute_task(fragile, name).result
