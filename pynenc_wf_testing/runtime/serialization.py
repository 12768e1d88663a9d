"""Values that must survive pynenc's serializer: task arguments, workflow data, signal payloads.

pynenc's jsonpickle serializer does not fail on what it cannot store: a lambda, a closure, a
bound method, an open file, a socket are written as ``null`` (and come back as ``None``), a
function-valued attribute or dict entry is dropped, a non-str dict key becomes a string. In
production the worker that reads the value gets something else, silently. The harness checks,
with the app's own serializer (``app.serializer``), on every backend, where the value is
handed to pynenc:

- :func:`check_call_arguments`: the arguments of every new invocation (``env.start``, a direct
  call, a child call, ``parallelize``), from the orchestrator hook before pynenc registers it
  (every backend, memory included, hands the task the serialized arguments read back). It
  reads the text pynenc's serializer already produced for the call id
  (``call.serialized_arguments``), reads it back and compares types.
- :func:`check_workflow_data`: every workflow-data write (``task.wf.set_data``, a signal's
  payload, the engine's records): persistent backends store the serialized text; the memory
  backend keeps objects by reference, so there the loss would only show in production.

Open files and sockets fail too when jsonpickle rebuilds them as new, unopened objects of the
same type (a ``BufferedRandom``); in-memory ``BytesIO``/``StringIO`` survive with their content.

Plain values (str, int, float, bool, None, and lists / str-keyed dicts of them) always survive
and are not checked: only other values pay for a check. ``backend_options={
"check_serialization": False}`` turns the checks off (to watch what production would store).
"""

from __future__ import annotations

import io
import socket
from typing import TYPE_CHECKING, Any

from pynenc_wf_testing.engine import schema
from pynenc_wf_testing.errors import ArgumentSerializationError, WorkflowDataSerializationError

if TYPE_CHECKING:
    from collections.abc import Iterable

    from pynenc.app import Pynenc
    from pynenc.invocation.dist_invocation import DistributedInvocation
    from pynenc.workflow.workflow_identity import WorkflowIdentity

__all__ = [
    "check_call_arguments",
    "check_workflow_data",
    "first_mismatch",
    "is_plain",
    "round_trip_problem",
]

_MAX_DEPTH = 32

_FIX = (
    "Pass plain data (str, int, float, bool, None, lists, str-keyed dicts, dataclasses of "
    "those) and build functions, open files, sockets, clients or locks inside the task that "
    "needs them (a module-level function is stored by reference and survives; or pass a "
    "name, a path or an id to look the object up)."
)


def is_plain(value: Any, depth: int = 0) -> bool:
    """True for a value jsonpickle stores as plain JSON and reads back equal: str, int,
    float, bool, None, lists and dicts of str keys (not jsonpickle's ``py/`` tags)."""
    t = type(value)
    if t is str or t is int or t is float or t is bool or value is None:
        return True
    if depth > _MAX_DEPTH:
        return False
    if t is list:
        return all(is_plain(item, depth + 1) for item in value)
    if t is dict:
        return all(
            type(key) is str and not key.startswith("py/") and is_plain(item, depth + 1)
            for key, item in value.items()
        )
    return False


def _type_name(value: Any) -> str:
    return f"{type(value).__module__}.{type(value).__qualname__}"


def _is_live_resource(value: Any) -> bool:
    """An open file or socket: no serializer carries the OS resource behind it (jsonpickle
    writes some as ``null`` and rebuilds others as new, unopened objects of the same type)."""
    if isinstance(value, io.IOBase):
        return not isinstance(value, io.BytesIO | io.StringIO)  # in-memory: rebuilt with content
    return isinstance(value, socket.socket)


def _frozen_twin(original: Any, restored: Any) -> bool:
    """``restored`` is freezegun's stand-in for ``original``'s class (a ``datetime`` read back
    while the simulation's clock is frozen comes back as ``FakeDatetime``, a subclass equal to
    it): in production it comes back as the real class, so this is no loss."""
    return type(restored).__module__.startswith("freezegun") and isinstance(restored, type(original))


def first_mismatch(original: Any, restored: Any, where: str, depth: int = 0) -> str | None:
    """Where (and how) ``restored`` differs in type from ``original``, or None."""
    if type(restored) is not type(original) and not _frozen_twin(original, restored):
        return (
            f"{where}: {_type_name(original)} comes back as {type(restored).__qualname__} "
            f"({restored!r:.60})"
        )
    if _is_live_resource(original):
        return (
            f"{where}: {_type_name(original)} is an open file or socket: it comes back as a "
            "new object that is not connected to anything"
        )
    if depth > 20:
        return None
    if isinstance(original, dict):
        for key, value in original.items():
            if key not in restored:
                if not isinstance(key, str) and repr(key) in restored:
                    return (
                        f"{where}[{key!r}]: the {type(key).__qualname__} key comes back as "
                        f"the string {repr(key)!r}"
                    )
                return f"{where}[{key!r}]: the key is lost"
            found = first_mismatch(value, restored[key], f"{where}[{key!r}]", depth + 1)
            if found:
                return found
    elif isinstance(original, list | tuple) and len(original) == len(restored):
        for index, (a, b) in enumerate(zip(original, restored, strict=True)):
            found = first_mismatch(a, b, f"{where}[{index}]", depth + 1)
            if found:
                return found
    elif hasattr(original, "__dict__") and hasattr(restored, "__dict__"):
        for name, value in vars(original).items():
            if name not in vars(restored):
                return f"{where}.{name}: the attribute is lost"
            found = first_mismatch(value, vars(restored)[name], f"{where}.{name}", depth + 1)
            if found:
                return found
    return None


def round_trip_problem(app: Pynenc, value: Any, where: str, text: str | None = None) -> str | None:
    """What the app's serializer loses of ``value`` (``text``: its output, if already made),
    or None when ``value`` comes back with the same types."""
    serializer = app.serializer
    try:
        if text is None:
            text = serializer.serialize(value)
        return first_mismatch(value, serializer.deserialize(text), where)
    except Exception as exc:  # any serializer failure is the finding
        return f"the serializer raised {type(exc).__name__}: {exc}"


# --------------------------------------------------------------------------- arguments


#: Argument types that always survive the serializer unchanged (``None`` included).
_SCALARS = frozenset({str, int, float, bool, type(None)})


def check_call_arguments(app: Pynenc, invocations: Iterable[DistributedInvocation[Any, Any]]) -> None:
    """Raise :class:`ArgumentSerializationError` for the first argument of a new invocation
    that does not come back from the app's serializer with the same types."""
    for invocation in invocations:
        call = invocation.call
        # None: a call read back from the store (its arguments are the serialized ones).
        arguments = getattr(call, "_arguments", None)
        if arguments is None:
            continue
        kwargs = arguments.kwargs
        if _SCALARS.issuperset(map(type, kwargs.values())):
            continue  # (the common case, tested in C: every argument a plain scalar)
        for name, value in kwargs.items():
            t = type(value)
            if t is str or t is int or t is float or t is bool or value is None:
                continue
            if (t is list or t is dict) and is_plain(value):
                continue
            _check_argument(app, call, name, value)


def _check_argument(app: Pynenc, call: Any, name: str, value: Any) -> None:
    text: str | None = call.serialized_arguments.get(name)  # what pynenc already made
    if text is not None and app.client_data_store.is_reference(text):
        text = None  # a large value kept apart: serialize it again to read it back
    problem = round_trip_problem(app, value, name, text)
    if problem is None:
        return
    task = call.task.task_id.key
    raise ArgumentSerializationError(
        f"task {task}: argument {name!r} (type {_type_name(value)}) does not survive "
        f"pynenc's serializer ({type(app.serializer).__name__}): {problem}. pynenc stores "
        "every call serialized, on every backend: the task would run with that instead, "
        f"without a word. {_FIX}"
    )


# --------------------------------------------------------------------------- workflow data


def check_workflow_data(
    app: Pynenc, identity: WorkflowIdentity, key: str, value: Any, backend: str
) -> None:
    """Raise :class:`WorkflowDataSerializationError` unless ``value`` round-trips through the
    app's serializer with the same types (what a persistent backend stores and reads back)."""
    if is_plain(value):
        return
    subject, checked, where = f"key {key!r}", value, "value"
    signal = _signal_name(key, value)
    if signal is not None:
        subject, checked, where = f"the payload of signal {signal!r}", value["payload"], "payload"
    problem = round_trip_problem(app, checked, where)
    if problem is None:
        return
    workflow = getattr(identity.workflow_type, "key", identity.workflow_type)
    serializer = type(app.serializer).__name__
    if backend.startswith("memory"):
        where_lost = (
            f"that pynenc's serializer cannot store faithfully ({serializer}; the {backend} "
            "backend keeps workflow data by reference and would hide this, a persistent "
            "backend and production would not)"
        )
    else:
        where_lost = (
            f"that the {backend} backend cannot store faithfully ({serializer}); the memory "
            "backend keeps workflow data by reference and would hide this"
        )
    raise WorkflowDataSerializationError(
        f"workflow {workflow} (id {identity.workflow_id}) stores {subject} with a value of "
        f"type {_type_name(checked)} {where_lost}: {problem}. In production the value would "
        "be lost or changed. Store plain data (str, int, float, bool, None, lists, dicts, "
        "dataclasses of those) and rebuild objects such as locks, clients, files or "
        "functions in the task that needs them."
    )


def _signal_name(key: str, value: Any) -> str | None:
    """The name of the signal whose arrival ``key`` records (the engine's ``SignalRecord``)."""
    if not schema.is_engine_key(key) or not isinstance(value, dict) or "payload" not in value:
        return None
    found = schema.classify(key, value, lambda _: None)
    if found is None or found[0] != "signal" or not found[1].startswith("signal:"):
        return None
    return found[1].removeprefix("signal:").rsplit("#", 1)[0]
