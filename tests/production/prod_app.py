"""The engine's features on pynenc's stock ThreadRunner and SQLite backend: the app.

pynenc resolves tasks by ``module.function`` and apps are multitons by ``app_id``, so the
functions are defined here, at module level, and ``build(db_path, app_id)`` binds them to a
fresh app for each test: it replaces each module attribute with its task of that app (like
``PynencBuilder().build()`` followed by ``@app.task``). ``serve()`` is what a worker process
runs: the same build, then ``ThreadRunner(app).run()`` in its main thread.

The fakes (``LOG``, ``FLAKY``) are in-process: tests that use them run their runner in a
thread of the test process.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from pynenc import Pynenc, PynencBuilder

from pynenc_wf_testing.engine import RetryPolicy

#: The app of the current test (``build()``); None before.
app: Any = None

#: What the activities did: (name, argument, wall time from time.time()).
LOG: list[tuple[str, Any, float]] = []
#: How many more times ``flaky`` fails, per key.
FLAKY: dict[str, int] = defaultdict(int)
#: Calls of the function recorded with side_effect.
DRAWS: list[float] = []

_DEFINITIONS: list[tuple[str, Callable[..., Any], dict[str, Any]]] = []


def _task(func: Callable[..., Any]) -> Any:
    _DEFINITIONS.append(("task", func, {}))
    return func


def _workflow(func: Callable[..., Any]) -> Any:
    _DEFINITIONS.append(("workflow", func, {}))
    return func


def build(
    db_path: str,
    app_id: str,
    *,
    retry_policy: RetryPolicy | None = None,
    threads: int = 8,
    engine_first: dict[str, Any] | None = None,
    redis_state_url: str | None = None,
    config: dict[str, Any] | None = None,
    redis_url: str | None = None,
) -> Pynenc:
    """A production app: SQLite at ``db_path``, a ThreadRunner, the durable engine on.
    ``engine_first``: ``enable_workflows`` options given before every other builder call.
    ``redis_state_url``: keep the state backend (workflow data, the engine's atomic store) in
    that Redis server instead (pynenc-redis' state backend; its broker and orchestrator do
    not build with pynenc 0.4 outside the simulator). ``config``: more pynenc settings
    (e.g. ``runner_considered_dead_after_minutes``). ``redis_url``: everything on that Redis
    server instead of SQLite (state, orchestrator, broker; pynenc-redis' broker and
    orchestrator through the compatible subclasses of docs/backends.md)."""
    global app
    builder = PynencBuilder()
    if engine_first is not None:
        builder = builder.enable_workflows(**engine_first)
    builder = (
        builder
        .app_id(app_id)
        .sqlite(db_path)
        .thread_runner(min_threads=1, max_threads=threads)
        .runner_tuning(
            runner_loop_sleep_time_sec=0.01, invocation_wait_results_sleep_time_sec=0.01
        )
        .custom_config(
            cached_status_time=0,
            logging_level="warning",
            log_use_colors=False,
            # the engine's polls: from 0.05 s up to 0.25 s (default cap 1 s) for quick tests
            engine_max_poll_interval_sec=0.25,
        )
    )
    if redis_state_url is not None:
        builder = builder.custom_config(
            state_backend_cls="RedisStateBackend", redis_url=redis_state_url
        )
    if redis_url is not None:
        from pynenc_wf_testing.runtime import redis_compat  # noqa: F401  (registers them)

        builder = builder.redis(url=redis_url).custom_config(
            orchestrator_cls="CompatRedisOrchestrator", broker_cls="CompatRedisBroker"
        )
    if config:
        builder = builder.custom_config(**config)
    if engine_first is None:
        builder = builder.enable_workflows(retry_policy=retry_policy)
    app = builder.build()
    namespace = globals()
    for kind, func, options in _DEFINITIONS:
        namespace[func.__name__] = (app.workflow if kind == "workflow" else app.task)(
            func, **options
        )
    return app


def reset() -> None:
    VERSION["current"] = 1
    LOG.clear()
    FLAKY.clear()
    DRAWS.clear()


def serve(
    db_path: str, app_id: str, redis_state_url: str | None = None,
    config: dict[str, Any] | None = None,
) -> None:
    """A worker process: build the app and run a ThreadRunner until SIGTERM."""
    from pynenc.runner.thread_runner import ThreadRunner

    build(db_path, app_id, redis_state_url=redis_state_url, config=config)
    ThreadRunner(app).run()


def _log(name: str, arg: Any) -> None:
    LOG.append((name, arg, time.time()))


class Transient(Exception):
    pass


class Fatal(Exception):
    pass


# --------------------------------------------------------------------------- activities


@_task
def note(what: str) -> str:
    _log("note", what)
    return what


@_task
def work(label: str, seconds: float) -> str:
    time.sleep(seconds)
    _log("work", label)
    return label


@_task
def external_job(x: int) -> int:
    _log("external_job", x)
    return x * 2


@_task
def flaky(key: str) -> str:
    _log("flaky", key)
    if FLAKY[key] > 0:
        FLAKY[key] -= 1
        raise Transient(f"{key}: try again")
    return f"{key}: ok"


@_task
def declined(key: str) -> str:
    _log("declined", key)
    raise Fatal(f"{key}: declined")


@_task
def book(what: str) -> str:
    _log("book", what)
    return what


@_task
def unbook(what: str) -> None:
    _log("unbook", what)


@_task
def charge(key: str, amount: int) -> str:
    """A non-idempotent effect made safe by its idempotency key: the "payment provider" (the
    engine's atomic store, shared by every process) applies the first request per key and
    answers the same receipt to every retry. ``proof:attempts:<key>`` counts the requests,
    ``proof:applied:<key>`` the charges applied."""
    from pynenc_wf_testing.engine.atomic import atomic_store

    store = atomic_store(app)
    store.incr(f"proof:attempts:{key}")
    if store.put_if_absent(f"proof:charge:{key}", str(amount)) is None:
        store.incr(f"proof:applied:{key}")
    return f"{key}:{store.get(f'proof:charge:{key}')}"


@_task
def refuse_unbook(what: str) -> None:
    _log("refuse_unbook", what)
    raise Fatal(f"cannot unbook {what}")


def _draw() -> float:
    DRAWS.append(time.time())
    return 1000.0 + len(DRAWS)


# --------------------------------------------------------------------------- workflows


@_workflow
def timed_sleep(seconds: float) -> dict[str, float]:
    """Sleeps; returns the wall times (time.time()) at which it started and woke."""
    root = timed_sleep.wf.root
    started = root.now()
    root.sleep(seconds)
    woke = root.now()
    return {"started": started.timestamp(), "woke": woke.timestamp()}


@_workflow
def drawn_then_sleep(seconds: float) -> list[float]:
    root = drawn_then_sleep.wf.root
    value = root.side_effect(_draw)
    at = root.now()
    root.sleep(seconds)
    return [value, at.timestamp()]


@_workflow
def until(instant: str) -> float:
    root = until.wf.root
    root.sleep_until(dt.datetime.fromisoformat(instant))
    return root.now().timestamp()


@_workflow
def signals(timeout: float) -> list[Any]:
    root = signals.wf.root
    first = root.wait_for_signal("go", timeout=dt.timedelta(seconds=timeout))
    second = root.wait_for_signal(
        "go", timeout=dt.timedelta(seconds=timeout), default="no second signal"
    )
    return [first, second]


@_workflow
def progress(pause: float) -> str:
    progress.wf.save_state({"phase": "started"})
    progress.wf.root.sleep(pause)
    progress.wf.save_state({"phase": "slept"})
    progress.wf.root.wait_for_signal("finish")
    progress.wf.save_state({"phase": "finished"})
    return "done"


@_workflow
def waits(x: int) -> dict[str, Any]:
    root = waits.wf.root
    slow = root.execute_task(work, "slow", 0.5)
    fast = root.execute_task(work, "fast", 0.05)
    index, first = root.wait_any([slow, fast])
    both = root.wait_all([slow, fast])
    child = root.execute_task(work, "child", 0.05)
    waited = root.wait_for_task(child)
    return {"any": [index, first], "all": both, "task": waited}


@_workflow
def late_race(slow: float, fast: float, pause: float) -> list[Any]:
    """Both children finish while the workflow sleeps: wait_any picks the one that finished
    first, not the first of the list."""
    root = late_race.wf.root
    first = root.execute_task(work, "slow", slow)
    second = root.execute_task(work, "fast", fast)
    root.sleep(pause)
    index, value = root.wait_any([first, second])
    return [index, value]


@_workflow
def watcher(timeout: float) -> Any:
    return watcher.wf.root.wait_for_task(external_job, timeout=dt.timedelta(seconds=timeout))


@_workflow
def retrying(key: str, delay: float, attempts: int) -> str:
    policy = RetryPolicy.fixed(
        dt.timedelta(seconds=delay), max_attempts=attempts, retry_on=(Transient,)
    )
    return retrying.wf.root.execute_task_with_retry(flaky, key, retry=policy)  # type: ignore[no-any-return]


@_workflow
def never_retried(key: str) -> str:
    policy = RetryPolicy.fixed(dt.timedelta(seconds=0.1), max_attempts=5, retry_on=(Transient,))
    return never_retried.wf.root.execute_task_with_retry(declined, key, retry=policy)  # type: ignore[no-any-return]


@_workflow
def by_default(key: str) -> str:
    return by_default.wf.root.execute_task_with_retry(flaky, key)  # type: ignore[no-any-return]


@_workflow
def approval(x: int) -> int:
    root = approval.wf.root
    root.execute_task(note, f"before {x}").result
    root.halt("needs approval")
    root.execute_task(note, f"after {x}").result
    return x + 1


@_workflow
def booking(name: str, wait: float) -> str:
    root = booking.wf.root
    with root.saga() as saga:
        root.execute_task(book, f"flight {name}").result
        saga.add_compensation(unbook, f"flight {name}")
        root.execute_task(book, f"hotel {name}").result
        saga.add_compensation(unbook, f"hotel {name}")
        root.sleep(wait)
        root.wait_for_signal("confirm")
    return f"booked {name}"


@_workflow
def fragile_booking(name: str) -> str:
    """The charge is declined and undoing the hotel fails: the flight is still undone."""
    root = fragile_booking.wf.root
    with root.saga() as saga:
        root.execute_task(book, f"flight {name}").result
        saga.add_compensation(unbook, f"flight {name}")
        root.execute_task(book, f"hotel {name}").result
        saga.add_compensation(refuse_unbook, f"hotel {name}")
        root.execute_task(declined, name).result
    return f"booked {name}"


#: The code version of ``versioned`` (a deploy changes it while runs are in flight).
VERSION = {"current": 1}


@_workflow
def versioned(x: int) -> Any:
    """Version 2 added a branch at the start; runs begun under version 1 replay without."""
    root = versioned.wf.root
    took_new_branch = None
    if VERSION["current"] >= 2:
        took_new_branch = root.patched("v2")
    root.now()
    root.halt("deploy window")
    return took_new_branch


@_workflow
def trip(name: str) -> str:
    """A sub-workflow (timed_sleep) between two activities: for the report views."""
    root = trip.wf.root
    root.execute_task(note, f"plan {name}").result
    root.execute_task(timed_sleep, 0.05).result
    return root.execute_task(note, f"done {name}").result  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- parent close

#: Gates of ``gated_work``: each call blocks until the test opens its label's gate (at most
#: 30 s, so nothing hangs). In-process: tests that use them run their runner in a thread.
GATES: dict[str, threading.Event] = defaultdict(threading.Event)


@_task
def gated_work(label: str) -> str:
    GATES[label].wait(30)
    _log("gated_work", label)
    return label


@_workflow
def blocked_on_gate(label: str) -> str:
    """Blocked in a plain ``.result`` on a child that runs until its gate opens."""
    root = blocked_on_gate.wf.root
    with root.saga() as saga:
        saga.add_compensation(unbook, label)
        return str(root.execute_task(gated_work, label).result)


@_workflow
def keeps_one_child(label: str) -> str:
    """Starts an abandoned and a default child, then waits for a signal that never comes."""
    root = keeps_one_child.wf.root
    root.start_child(gated_work, f"{label}-kept", parent_close="abandon")
    root.execute_task(gated_work, f"{label}-dropped")
    return str(root.wait_for_signal("never"))


@_workflow
def sleeps_past_its_timeout(label: str) -> str:
    """Starts a child, then sleeps 10 s: a short run timeout interrupts the sleep."""
    root = sleeps_past_its_timeout.wf.root
    root.execute_task(gated_work, label)
    root.sleep(10.0)
    return "slept"


@_workflow
def blocked_past_its_timeout(label: str) -> str:
    """Blocked in a plain ``.result`` on a gated child, under a saga, with no engine wait."""
    root = blocked_past_its_timeout.wf.root
    with root.saga() as saga:
        saga.add_compensation(unbook, label)
        return str(root.execute_task(gated_work, label).result)


@_workflow
def blocked_on_a_sub_workflow(label: str) -> str:
    """Blocked in a plain ``.result`` on a sub-workflow that is itself blocked on a child."""
    root = blocked_on_a_sub_workflow.wf.root
    return str(root.execute_task(blocked_past_its_timeout, label).result)


@_workflow
def leaves_children(label: str, fail: bool) -> str:
    """Starts a default, an abandoned child and a sub-workflow waiting for a signal, then
    completes (or fails) without waiting for them."""
    root = leaves_children.wf.root
    root.start_child(gated_work, f"{label}-dropped")
    root.start_child(gated_work, f"{label}-kept", parent_close="abandon")
    root.start_child(await_signal, f"{label}-sub")
    if fail:
        raise ValueError(f"{label} failed by itself")
    return "done"


@_workflow
def await_signal(name: str) -> list[Any]:
    """Waits for signal ``name``; returns its payload and the wall time it woke at."""
    root = await_signal.wf.root
    payload = root.wait_for_signal(name)
    return [payload, root.now().timestamp()]


@_workflow
def await_child(label: str, seconds: float) -> str:
    root = await_child.wf.root
    child = root.execute_task(work, label, seconds)
    return root.wait_for_task(child)  # type: ignore[no-any-return]


@_workflow
def order(key: str, amount: int, seconds: float | None) -> str:
    """Waits on a timer (``seconds``) or, with None, for the signal "approve"; then charges
    ``amount`` under the idempotency key ``key`` (the workflow id) and returns the receipt."""
    root = order.wf.root
    if seconds is None:
        root.wait_for_signal("approve")
    else:
        root.sleep(seconds)
    return root.execute_task(charge, key, amount).result  # type: ignore[no-any-return]


@_workflow
def sleeper(seconds: float) -> float:
    """Sleeps; returns the wall time it woke at."""
    root = sleeper.wf.root
    root.sleep(seconds)
    return root.now().timestamp()


@_workflow
def rerunnable(order: str) -> str:
    """Two notes, then a flaky call: for re-runs from a step and invalidation."""
    root = rerunnable.wf.root
    reserved = root.execute_task(note, f"reserve {order}").result
    charged = root.execute_task(note, f"charge {order}").result
    return f"{reserved}|{charged}|{root.execute_task(flaky, order).result}"


@_workflow
def rerunnable_parent(order: str) -> str:
    """A note, then ``rerunnable`` as a sub-workflow: a sub-workflow is re-run through it."""
    root = rerunnable_parent.wf.root
    root.execute_task(note, f"open {order}").result
    return f"[{root.execute_task(rerunnable, order).result}]"


@_workflow
def gate_watcher(timeout: float) -> Any:
    """Waits for any new run of ``gated_work`` (``wait_for_task(task)``)."""
    root = gate_watcher.wf.root
    return root.wait_for_task(gated_work, timeout=dt.timedelta(seconds=timeout))


@_workflow
def slow_compensation(label: str) -> str:
    """Fails; its compensations: one that fails, then one that runs until its gate opens."""
    root = slow_compensation.wf.root
    with root.saga() as saga:
        root.execute_task(book, label).result
        saga.add_compensation(gated_work, f"{label}-undo")
        saga.add_compensation(refuse_unbook, label)
        root.execute_task(declined, label).result
    return f"booked {label}"
