"""Module-level apps for tests/test_direct_calls.py and tests/test_serialization_checks.py.

``app`` is never handed to ``use()`` by those tests: its tasks are called directly, or through
``env.start``. ``second`` is another app whose task a workflow of ``app`` calls as a child.
``unserializable(kind)`` builds the values pynenc's jsonpickle serializer cannot keep.
"""

from __future__ import annotations

import dataclasses
import socket
import tempfile
import threading
import time
from typing import Any

from pynenc import Pynenc

from pynenc_wf_testing.engine import enable_workflows

app = enable_workflows(Pynenc(config_values={"app_id": "wf-direct-tests"}))
second = Pynenc(config_values={"app_id": "wf-direct-tests-second"})

#: Open files and sockets made by ``unserializable``, closed by ``close_resources``.
RESOURCES: list[Any] = []


@dataclasses.dataclass
class Order:
    order_id: str
    on_paid: Any = None


def module_level_callback(amount: int) -> int:
    return amount * 2


def unserializable(kind: str) -> Any:
    """A value that does not survive pynenc's serializer (see the ``KINDS`` table)."""
    if kind == "lambda":
        return lambda amount: amount * 2
    if kind == "closure":
        factor = 3

        def closure(amount: int) -> int:
            return amount * factor

        return closure
    if kind == "file":
        handle = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close_resources
        RESOURCES.append(handle)
        return handle
    if kind == "socket":
        sock = socket.socket()
        RESOURCES.append(sock)
        return sock
    if kind == "nested":
        return {"hooks": [1, lambda: 0]}
    if kind == "attribute":
        return Order("o-1", on_paid=lambda: "paid")
    if kind == "int_keys":
        return {1: "one"}
    raise ValueError(kind)


#: kind -> (the type the error names, the part of the message that says what is lost)
KINDS: dict[str, tuple[str, str]] = {
    "lambda": ("builtins.function", "comes back as NoneType"),
    "closure": ("builtins.function", "comes back as NoneType"),
    "file": ("_io.BufferedRandom", "is an open file or socket"),
    "socket": ("socket.socket", "comes back as NoneType"),
    "nested": ("builtins.dict", "['hooks'][1]: builtins.function comes back as NoneType"),
    "attribute": ("tests.direct_apps.Order", ".on_paid: the attribute is lost"),
    "int_keys": ("builtins.dict", "[1]: the int key comes back as the string '1'"),
}


def close_resources() -> None:
    while RESOURCES:
        RESOURCES.pop().close()


@app.task
def describe(value: Any, label: str = "") -> str:
    """What the task received: the type of its argument."""
    return f"{label}{type(value).__name__}"


@app.task
def slow_add(x: int, y: int) -> int:
    time.sleep(60)  # a minute of virtual time
    return x + y


@app.workflow
def total(n: int) -> int:
    """``n`` sequential children."""
    result = 0
    for i in range(n):
        result = total.wf.root.execute_task(slow_add, result, i).result
    return result


@app.workflow
def passes_to_child(kind: str) -> str:
    """Hands a value pynenc cannot store to a child task."""
    return passes_to_child.wf.root.execute_task(describe, unserializable(kind)).result


@app.workflow
def stores(kind: str) -> str:
    """Stores a value pynenc cannot store as workflow data."""
    stores.wf.set_data("cfg", unserializable(kind))
    return "stored"


@app.workflow
def stores_fine() -> list[str]:
    """Values that survive: plain data, a dataclass, a module-level function, a lock."""
    stores_fine.wf.set_data("plain", {"a": [1, 2.5, "x", None, True]})
    stores_fine.wf.set_data("order", Order("o-1", on_paid=module_level_callback))
    stores_fine.wf.set_data("lock", threading.Lock())
    stores_fine.wf.set_data("tuple", (1, 2))
    order = stores_fine.wf.get_data("order")
    return [type(order).__name__, order.on_paid.__name__]


@app.workflow
def approval() -> Any:
    """Waits for the ``approved`` signal and returns its payload."""
    return approval.wf.root.wait_for_signal("approved")


@app.workflow
def calls_second(x: int) -> int:
    """A child of another app (``second``), which no env uses before this runs."""
    return calls_second.wf.root.execute_task(echo, x).result + 1


@app.workflow
def calls_second_directly(x: int) -> int:
    """Calls a task of ``second`` directly (``Task._call``) and waits for it."""
    return echo(x).result + 1


@second.task
def echo(x: int) -> int:
    return x
