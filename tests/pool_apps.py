"""Module-level apps for the worker-pool tests (tests/test_pool.py): priorities, queues,
concurrency limits, slots and a worker going down."""

from __future__ import annotations

import datetime as dt
import time

from pynenc import Pynenc
from pynenc.conf.config_task import ConcurrencyControlType
from pynenc.trigger.trigger_builder import TriggerBuilder

from pynenc_wf_testing.engine import enable_workflows

app = enable_workflows(
    Pynenc(config_values={"app_id": "pool-tests", "queues": ["default", "reports"]})
)

#: (label, virtual start, virtual end) of every finished execution, in finishing order.
DONE: list[tuple[str, dt.datetime, dt.datetime]] = []


def reset() -> None:
    DONE.clear()
    CHARGED.clear()
    TICKS.clear()


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _work(label: str, seconds: float) -> str:
    started = now()
    time.sleep(seconds)  # a busy thread: it keeps its slot
    DONE.append((label, started, now()))
    return label


@app.task
def work(label: str, seconds: float = 60) -> str:
    return _work(label, seconds)


@app.task(priority=50)
def urgent(label: str, seconds: float = 60) -> str:
    return _work(label, seconds)


@app.task(priority=-50)
def background(label: str, seconds: float = 60) -> str:
    return _work(label, seconds)


@app.task(queue="reports")
def report(label: str, seconds: float = 60) -> str:
    return _work(label, seconds)


@app.task(running_concurrency=ConcurrencyControlType.TASK, reroute_on_concurrency_control=True)
def exclusive(label: str, seconds: float = 60) -> str:
    return _work(label, seconds)


@app.task(
    running_concurrency=ConcurrencyControlType.KEYS,
    key_arguments=("account",),
    reroute_on_concurrency_control=True,
)
def per_account(account: str, label: str) -> str:
    """One at a time per account; different accounts in parallel."""
    return _work(f"{account}:{label}", 60)


@app.task(running_concurrency=ConcurrencyControlType.TASK)
def exclusive_or_drop(label: str, seconds: float = 60) -> str:
    return _work(label, seconds)


@app.workflow
def napper(label: str) -> str:
    """A durable hour-long sleep, then one unit of work: the sleep holds no slot."""
    root = napper.wf.root
    root.sleep(dt.timedelta(hours=1))
    return root.execute_task(work, f"{label}-after-nap", 60).result


@app.workflow
def fan_out(count: int) -> list[str]:
    """Starts ``count`` children and waits for them: waiting holds no slot."""
    root = fan_out.wf.root
    children = [root.execute_task(work, f"child-{i}", 60) for i in range(count)]
    return [child.result for child in children]


#: An app whose broker rules raise a task's priority over its own option.
ruled_app = Pynenc(
    config_values={
        "app_id": "pool-tests-ruled",
        "priority_rules": [{"task_id": "*.boosted", "priority": 90}],
    }
)


@ruled_app.task(priority=50)
def favoured(label: str) -> str:
    return _work(label, 60)


@ruled_app.task
def boosted(label: str) -> str:
    return _work(label, 60)


#: An app with a per-minute cron task (its own app: the others' tests see no cron).
cron_app = Pynenc(config_values={"app_id": "pool-tests-cron"})
TICKS: list[dt.datetime] = []


@cron_app.task(triggers=TriggerBuilder().on_cron("* * * * *"))
def tick() -> None:
    TICKS.append(now())


#: Cards charged by ``charge_card`` (the outside world), one entry per execution.
CHARGED: list[str] = []


@app.task
def charge_card(card: str) -> str:
    """A minute of work with an outside effect: not safe to run twice."""
    time.sleep(60)
    CHARGED.append(card)
    return f"charged {card}"


@app.workflow
def checkout(card: str) -> str:
    root = checkout.wf.root
    first = root.execute_task(work, "pack", 30).result
    return f"{first}/{root.execute_task(charge_card, card).result}"
