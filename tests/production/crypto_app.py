"""A production app with encrypted payloads (ThreadRunner + SQLite or Redis): the tasks.

Every payload carries a marker string; the tests read the raw store and must not find it.
``build(...)`` binds the functions to a fresh app for each test, like prod_app.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from pynenc import Pynenc, PynencBuilder

from pynenc_wf_testing.engine import Keyring

#: The app of the current test (``build()``).
app: Any = None
#: Cards charged, one entry per execution of ``charge`` (the outside world).
CHARGED: list[str] = []
_DEFINITIONS: list[tuple[str, Callable[..., Any]]] = []


def _task(func: Callable[..., Any]) -> Any:
    _DEFINITIONS.append(("task", func))
    return func


def _workflow(func: Callable[..., Any]) -> Any:
    _DEFINITIONS.append(("workflow", func))
    return func


def build(
    app_id: str,
    keyring: Keyring,
    *,
    db_path: str | None = None,
    redis_url: str | None = None,
    serializer: str | None = None,
) -> Pynenc:
    """The app on SQLite at ``db_path`` or on the Redis server at ``redis_url``, encrypted
    with ``keyring``. ``serializer``: ``"json"`` chooses pynenc's JSON serializer *after*
    ``enable_workflows`` (the encrypting serializer must wrap it anyway)."""
    global app
    builder = PynencBuilder().enable_workflows(encryption=keyring).app_id(app_id)
    if db_path is not None:
        builder = builder.sqlite(db_path)
    else:
        assert redis_url is not None
        # pynenc-redis 0.3.0 cannot run on pynenc 0.4 as released: its broker and
        # orchestrator through the smallest compatible subclasses (docs/backends.md)
        from pynenc_wf_testing.runtime import redis_compat  # noqa: F401  (registers them)

        builder = builder.redis(url=redis_url).custom_config(
            orchestrator_cls="CompatRedisOrchestrator", broker_cls="CompatRedisBroker"
        )
    if serializer == "json":
        builder = builder.serializer_json()
    builder = builder.thread_runner(min_threads=1, max_threads=4).runner_tuning(
        runner_loop_sleep_time_sec=0.01, invocation_wait_results_sleep_time_sec=0.01
    ).custom_config(
        cached_status_time=0, logging_level="warning", log_use_colors=False,
        engine_max_poll_interval_sec=0.1,
    )
    app = builder.build()
    namespace = globals()
    for kind, func in _DEFINITIONS:
        namespace[func.__name__] = (app.workflow if kind == "workflow" else app.task)(func)
    return app


class SecretError(Exception):
    pass


@_task
def charge(card: str) -> str:
    CHARGED.append(card)
    return f"charged {card}"


@_task
def refuse(card: str) -> str:
    raise SecretError(f"declined {card}")


@_workflow
def checkout(card: str) -> dict[str, Any]:
    """Arguments, a child's arguments and result, workflow data, saved state, a signal and
    the result all carry ``card``."""
    root = checkout.wf.root
    receipt = root.execute_task(charge, card).result
    checkout.wf.set_data("card-note", f"note for {card}")
    checkout.wf.save_state({"phase": f"charged {card}"})
    approval = root.wait_for_signal("approve", timeout=dt.timedelta(seconds=10))
    return {"receipt": receipt, "approval": approval}


@_workflow
def failing_checkout(card: str) -> str:
    return failing_checkout.wf.root.execute_task(refuse, card).result  # type: ignore[no-any-return]


@_workflow
def two_charges(card: str) -> list[str]:
    """Charges, waits for a signal (a key rotation happens meanwhile), charges the same card
    again: the second call is the same child (same call id) replayed, not a new charge."""
    root = two_charges.wf.root
    first = root.execute_task(charge, card).result
    root.wait_for_signal("continue", timeout=dt.timedelta(seconds=10))
    second = root.execute_task(charge, card).result
    return [first, second]


def redis_dump(client: Any, pattern: str = "*") -> bytes:
    """Every key matching ``pattern`` and its value, raw, as a Redis server holds them."""
    out = []
    for key in sorted(client.keys(pattern)):
        kind = client.type(key).decode()
        if kind == "string":
            values = [client.get(key)]
        elif kind == "hash":
            values = [b for pair in client.hgetall(key).items() for b in pair]
        elif kind == "list":
            values = client.lrange(key, 0, -1)
        elif kind == "set":
            values = sorted(client.smembers(key))
        elif kind == "zset":
            values = [m for m, _ in client.zrange(key, 0, -1, withscores=True)]
        else:
            raise AssertionError(f"unexpected redis type {kind} of {key!r}")
        out.append(key + b"\n" + b"\n".join(values))
    return b"\n".join(out)
