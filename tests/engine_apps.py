"""Module-level apps for the durable-engine tests (tests/test_engine*.py).

pynenc resolves a task by ``module.function``, so every task lives here. The fakes at the top
(``CALLS``, ``FLAKY``, ...) stand for the outside world: a worker crash does not undo them, and
``reset()`` gives every test (and every run of a crash check) a clean one.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import defaultdict
from typing import Any

from pynenc import Pynenc, PynencBuilder

from pynenc_wf_testing.engine import (
    RetryPolicy,
    WorkflowHaltException,
    cancel_workflow,
    enable_workflows,
    set_retry_policy,
)

UTC = dt.UTC

#: Default policy of the engine app: a fixed minute between attempts, four attempts in all.
APP_POLICY = RetryPolicy.fixed(dt.timedelta(minutes=1), max_attempts=4)

app = enable_workflows(Pynenc(config_values={"app_id": "engine-tests"}), retry_policy=APP_POLICY)

#: An app that did not enable the engine: pynenc's workflows, unchanged.
plain_app = Pynenc(config_values={"app_id": "engine-tests-plain"})

#: The engine switched on through pynenc's builder (the ``pynenc.plugins`` entry point).
builder_app = (
    PynencBuilder()
    .app_id("engine-tests-builder")
    .enable_workflows(retry_policy=RetryPolicy.fixed(dt.timedelta(seconds=7), max_attempts=2))
    .build()
)

#: The engine's settings given before the app id (they must still belong to this app).
late_id_app = (
    PynencBuilder()
    .enable_workflows(workflow_max_retries=1)
    .app_id("engine-tests-late-id")
    .build()
)


# --------------------------------------------------------------------------- the outside world

#: Executions of the activities below, in order: (name, argument, virtual time).
CALLS: list[tuple[str, Any, dt.datetime]] = []
#: How many more times ``flaky`` fails, per key; then it succeeds.
FLAKY: dict[str, int] = defaultdict(int)
#: Virtual times of each attempt of ``flaky``, per key.
ATTEMPTS: dict[str, list[dt.datetime]] = defaultdict(list)
#: Calls of the non-deterministic function recorded by ``side_effect``.
DRAWS: list[int] = []
#: Whether ``gated_flow`` may pass its raw WorkflowHaltException.
GATE = {"open": False}
#: ``versioned_flow``'s code version (a deploy changes it while runs are in flight).
VERSION = {"current": 1}


def reset() -> None:
    CALLS.clear()
    FLAKY.clear()
    ATTEMPTS.clear()
    DRAWS.clear()
    GATE["open"] = False
    VERSION["current"] = 1


def calls(name: str) -> list[Any]:
    return [arg for called, arg, _ in CALLS if called == name]


def now() -> dt.datetime:
    return dt.datetime.now(UTC)


class Transient(Exception):
    """An error worth retrying (a timeout, a 503)."""


class Fatal(Exception):
    """An error no retry fixes (a declined card)."""


# --------------------------------------------------------------------------- activities


@app.task
def note(what: str) -> str:
    CALLS.append(("note", what, now()))
    return what


@app.task
def square(x: int) -> int:
    CALLS.append(("square", x, now()))
    return x * x


@app.task
def finish_at(label: str, instant: str) -> str:
    """Works until an absolute instant (so a re-run after a crash does not start over)."""
    remaining = (dt.datetime.fromisoformat(instant) - now()).total_seconds()
    time.sleep(max(0.0, remaining))
    CALLS.append(("finish_at", label, now()))
    return label


@app.task
def external_job(x: int) -> int:
    """Started from outside the workflow (by the test), watched with wait_for_task."""
    CALLS.append(("external_job", x, now()))
    return x + 100


@app.task
def flaky(key: str) -> str:
    ATTEMPTS[key].append(now())
    if FLAKY[key] > 0:
        FLAKY[key] -= 1
        raise Transient(f"{key}: try again")
    return f"{key}: ok"


@app.task
def flaky_with_own_policy(key: str) -> str:
    return flaky.func(key)  # type: ignore[no-any-return]


@app.task
def declined(key: str) -> str:
    ATTEMPTS[key].append(now())
    raise Fatal(f"{key}: declined")


set_retry_policy(flaky_with_own_policy, RetryPolicy.fixed(dt.timedelta(hours=1), max_attempts=3))


@app.task
def book_flight(trip: str) -> str:
    CALLS.append(("book_flight", trip, now()))
    return f"flight-{trip}"


@app.task
def cancel_flight(trip: str) -> None:
    CALLS.append(("cancel_flight", trip, now()))


@app.task
def book_hotel(trip: str) -> str:
    CALLS.append(("book_hotel", trip, now()))
    return f"hotel-{trip}"


@app.task
def cancel_hotel(trip: str) -> None:
    CALLS.append(("cancel_hotel", trip, now()))


@app.task
def charge(trip: str) -> str:
    CALLS.append(("charge", trip, now()))
    if trip.startswith("declined"):
        raise Fatal(f"card declined for {trip}")
    return f"charged-{trip}"


@app.task
def request_cancel(workflow_id: str) -> None:
    """Cancels the workflow that calls it (what a "cancel" button would do, but at a
    reproducible point of the workflow, so crash checks can explore it)."""
    cancel_workflow(app, workflow_id, "customer asked")


@app.task
def report_progress(percent: int) -> None:
    """A member task publishing a snapshot of its workflow."""
    report_progress.wf.save_state({"percent": percent, "by": "report_progress"})


# --------------------------------------------------------------------------- workflows


@app.workflow
def napper(seconds: float) -> float:
    """Sleeps ``seconds``; returns how long it slept by its durable clock."""
    root = napper.wf.root
    started = root.now()
    root.sleep(seconds)
    return (root.now() - started).total_seconds()


@app.workflow
def month_sleeper() -> str:
    root = month_sleeper.wf.root
    root.sleep(dt.timedelta(days=30))
    root.execute_task(note, "30 days later").result
    return "woke"


@app.workflow
def alarm_clock(instant: str) -> str:
    root = alarm_clock.wf.root
    root.sleep_until(dt.datetime.fromisoformat(instant))
    return root.now().isoformat()


@app.workflow
def two_naps() -> list[str]:
    """Two timers in a row; returns the durable time after each."""
    root = two_naps.wf.root
    root.sleep(dt.timedelta(hours=1))
    first = root.now()
    root.sleep(dt.timedelta(hours=2))
    return [first.isoformat(), root.now().isoformat()]


@app.workflow
def clock_reader() -> list[str]:
    root = clock_reader.wf.root
    before = root.now()
    root.execute_task(note, "between").result
    root.sleep(dt.timedelta(minutes=5))
    return [before.isoformat(), root.now().isoformat()]


def _draw() -> int:
    """A non-deterministic function (an API call, a random pick)."""
    DRAWS.append(len(DRAWS) + 1)
    return 1000 + len(DRAWS)


@app.workflow
def side_effect_flow() -> int:
    root = side_effect_flow.wf.root
    value = root.side_effect(_draw)
    root.sleep(dt.timedelta(hours=1))
    root.execute_task(note, f"drew {value}").result
    return value


@app.workflow
def approvals() -> list[Any]:
    """Consumes two 'approve' signals, in order."""
    root = approvals.wf.root
    first = root.wait_for_signal("approve")
    root.execute_task(note, f"first {first}").result
    second = root.wait_for_signal("approve")
    return [first, second]


@app.workflow
def payment_or_default() -> Any:
    return payment_or_default.wf.root.wait_for_signal(
        "payment", timeout=dt.timedelta(days=3), default="no payment"
    )


@app.workflow
def payment_or_raise() -> Any:
    return payment_or_raise.wf.root.wait_for_signal("payment", timeout=dt.timedelta(days=3))


@app.workflow
def forever_waiter() -> Any:
    return forever_waiter.wf.root.wait_for_signal("never-sent")


@app.workflow
def progress(steps: int) -> str:
    root = progress.wf.root
    for i in range(1, steps + 1):
        progress.wf.save_state({"step": i, "of": steps})
        root.sleep(dt.timedelta(hours=1))
    root.execute_task(report_progress, 100).result
    progress.wf.save_state({"step": "done"})
    return "done"


@app.workflow
def job_waiter(x: int) -> int:
    """Routes a child and waits for it with wait_for_task (an invocation)."""
    root = job_waiter.wf.root
    due = root.now() + dt.timedelta(hours=2)
    child = root.execute_task(finish_at, f"job-{x}", due.isoformat())
    root.wait_for_task(child)
    return int(root.wait_for_task(child).split("-")[1]) + 1


@app.workflow
def task_watcher(hours: float) -> Any:
    """Waits for the next run of ``external_job`` (started by someone else)."""
    return task_watcher.wf.root.wait_for_task(external_job, timeout=dt.timedelta(hours=hours))


@app.workflow
def fan_out(n: int) -> list[int]:
    root = fan_out.wf.root
    children = [root.execute_task(square, i) for i in range(n)]
    return root.wait_all(children)  # type: ignore[no-any-return]


@app.workflow
def race(started: str) -> list[Any]:
    """Two children finishing at 10 h and 1 h: wait_any picks the 1 h one, then a day passes."""
    root = race.wf.root
    t0 = dt.datetime.fromisoformat(started)
    slow = root.execute_task(finish_at, "slow", (t0 + dt.timedelta(hours=10)).isoformat())
    fast = root.execute_task(finish_at, "fast", (t0 + dt.timedelta(hours=1)).isoformat())
    index, value = root.wait_any([slow, fast])
    root.sleep(dt.timedelta(days=1))
    return [index, value]


@app.workflow
def late_race(started: str, slow_hours: int, fast_hours: int) -> list[Any]:
    """Both children finish before the workflow waits (it sleeps 12 h first): wait_any must
    still pick the one that finished first, not the first of the list."""
    root = late_race.wf.root
    t0 = dt.datetime.fromisoformat(started)
    slow = root.execute_task(finish_at, "slow", (t0 + dt.timedelta(hours=slow_hours)).isoformat())
    fast = root.execute_task(finish_at, "fast", (t0 + dt.timedelta(hours=fast_hours)).isoformat())
    root.sleep(dt.timedelta(hours=12))
    index, value = root.wait_any([slow, fast])
    return [index, value]


#: Named policies (a workflow argument must serialize; a name is simplest).
POLICIES: dict[str, RetryPolicy | None] = {
    "fixed": RetryPolicy.fixed(dt.timedelta(seconds=30), max_attempts=5),
    "exponential": RetryPolicy.exponential(
        dt.timedelta(seconds=10), multiplier=2.0, cap=dt.timedelta(seconds=60), max_attempts=7
    ),
    "jitter": RetryPolicy.exponential(
        dt.timedelta(minutes=10), cap=dt.timedelta(hours=1), max_attempts=6, jitter=0.5
    ),
    "forever": RetryPolicy.fixed(dt.timedelta(minutes=5), max_attempts=None),
    "transient_only": RetryPolicy.fixed(
        dt.timedelta(seconds=1), max_attempts=5, retry_on=(Transient,)
    ),
    "default": None,
}


@app.workflow
def retry_flow(key: str, policy: str) -> str:
    root = retry_flow.wf.root
    return root.execute_task_with_retry(flaky, key, retry=POLICIES[policy])  # type: ignore[no-any-return]


@app.workflow
def declined_flow(key: str) -> str:
    root = declined_flow.wf.root
    return root.execute_task_with_retry(declined, key, retry=POLICIES["transient_only"])  # type: ignore[no-any-return]


@app.workflow
def own_policy_flow(key: str) -> str:
    return own_policy_flow.wf.root.execute_task_with_retry(flaky_with_own_policy, key)  # type: ignore[no-any-return]


@app.workflow
def approval_flow(x: int) -> int:
    root = approval_flow.wf.root
    root.execute_task(note, f"before halt {x}").result
    root.halt("needs approval")
    root.execute_task(note, f"after halt {x}").result
    return x + 1


@app.workflow
def gated_flow() -> str:
    gated_flow.wf.root.execute_task(note, "at the gate").result
    if not GATE["open"]:
        raise WorkflowHaltException("gate closed")
    return "through"


@app.workflow
def trip(name: str) -> str:
    """Books a flight, waits a week, books a hotel, waits for a confirmation, charges."""
    root = trip.wf.root
    with root.saga() as saga:
        root.execute_task(book_flight, name).result
        saga.add_compensation(cancel_flight, name)
        root.sleep(dt.timedelta(days=7))
        root.execute_task(book_hotel, name).result
        saga.add_compensation(cancel_hotel, name)
        root.wait_for_signal("confirm")
        root.execute_task(charge, name).result
    return f"booked {name}"


@app.workflow
def self_cancelling_trip(name: str) -> str:
    """Like ``trip``, but cancelled at a fixed point by one of its own activities."""
    root = self_cancelling_trip.wf.root
    with root.saga() as saga:
        root.execute_task(book_flight, name).result
        saga.add_compensation(cancel_flight, name)
        root.execute_task(book_hotel, name).result
        saga.add_compensation(cancel_hotel, name)
        root.execute_task(request_cancel, str(self_cancelling_trip.wf.identity.workflow_id)).result
        root.sleep(dt.timedelta(days=7))
        root.execute_task(charge, name).result
    return f"booked {name}"


@app.workflow
def saga_halt_flow(name: str) -> str:
    """A halt inside a saga block is not a failure: nothing is compensated."""
    root = saga_halt_flow.wf.root
    with root.saga() as saga:
        root.execute_task(book_flight, name).result
        saga.add_compensation(cancel_flight, name)
        root.halt("wait for the travel agent")
    return f"booked {name}"


@app.workflow
def versioned_flow(x: int) -> list[str]:
    """Version 2 added an audit step at the start; runs begun under version 1 replay without."""
    root = versioned_flow.wf.root
    done = []
    if VERSION["current"] >= 2 and root.patched("add-audit"):
        done.append(root.execute_task(note, f"audit {x}").result)
    done.append(root.execute_task(note, f"step {x}").result)
    root.halt("deploy window")
    return done


@app.workflow
def retired_patch_flow(x: int) -> list[str]:
    """Version 3: every run older than version 2 is gone; the audit step is unconditional."""
    root = retired_patch_flow.wf.root
    root.deprecate_patch("add-audit")
    return [
        root.execute_task(note, f"audit {x}").result,
        root.execute_task(note, f"step {x}").result,
    ]


@app.workflow
def checking_loop(name: str, cancel_at: int) -> int:
    """Plain work in a loop, checking for cancellation between items; at item
    ``cancel_at`` one of its own activities cancels it."""
    root = checking_loop.wf.root
    with root.saga() as saga:
        for i in range(5):
            root.check_cancelled()
            root.execute_task(book_flight, f"{name}-{i}").result
            saga.add_compensation(cancel_flight, f"{name}-{i}")
            if i == cancel_at:
                root.execute_task(
                    request_cancel, str(checking_loop.wf.identity.workflow_id)
                ).result
    return 5


# --------------------------------------------------------------------------- other apps


@plain_app.task
def plain_add(x: int, y: int) -> int:
    return x + y


@plain_app.workflow
def plain_flow(x: int) -> list[Any]:
    root = plain_flow.wf.root
    total = root.execute_task(plain_add, x, 1).result
    return [total, round(root.random(), 6), len(root.uuid())]


@plain_app.workflow
def plain_sleeper() -> None:
    plain_sleeper.wf.root.sleep(5)


@builder_app.task
def builder_flaky(key: str) -> str:
    return flaky.func(key)  # type: ignore[no-any-return]


@builder_app.workflow
def builder_flow(key: str) -> str:
    root = builder_flow.wf.root
    root.sleep(dt.timedelta(hours=1))
    return root.execute_task_with_retry(builder_flaky, key)  # type: ignore[no-any-return]


@late_id_app.task
def late_id_flaky(key: str) -> str:
    return flaky.func(key)  # type: ignore[no-any-return]


@late_id_app.workflow
def late_id_flow(key: str) -> str:
    return late_id_flow.wf.root.execute_task_with_retry(late_id_flaky, key)  # type: ignore[no-any-return]


@app.task
def refuse_refund(trip: str) -> None:
    """A compensation that fails (the refund service is down)."""
    CALLS.append(("refuse_refund", trip, now()))
    raise Fatal(f"refund service down for {trip}")


@app.workflow
def saga_with_a_failing_compensation(name: str) -> str:
    """Books a flight and a hotel, then the charge is declined; undoing the hotel fails."""
    root = saga_with_a_failing_compensation.wf.root
    with root.saga() as saga:
        root.execute_task(book_flight, name).result
        saga.add_compensation(cancel_flight, name)
        root.execute_task(book_hotel, name).result
        saga.add_compensation(refuse_refund, name)
        saga.add_compensation(cancel_hotel, name)
        root.execute_task(charge, f"declined-{name}").result
    return f"booked {name}"
