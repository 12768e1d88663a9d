"""Values pynenc's serializer cannot round-trip are an error where they are handed over (issue
14, point 5), on every backend.

pynenc's jsonpickle serializer stores a lambda, a closure, an open file or a socket as ``null``
(``None`` for the worker), drops a function-valued attribute and turns an int dict key into a
string, without a word. The memory backend keeps objects by reference and used to hide it. Now:
the arguments of a call (``start``, a direct call, a child call, ``parallelize``), a signal's
payload and workflow data are checked with the app's serializer, and the error names the task
and parameter (or the workflow and key, or the signal), the type, what is lost, and the fix.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from pynenc_wf_testing import (
    ArgumentSerializationError,
    InvalidArgument,
    UnserializableValueError,
    WorkflowDataSerializationError,
    WorkflowEnv,
)
from tests import direct_apps as apps
from tests.apps.guard import guard_app

BACKENDS = ["memory", "sqlite", "redis"]
KINDS = sorted(apps.KINDS)


@pytest.fixture(autouse=True)
def _guarded() -> Iterator[None]:
    with guard_app(apps.app), guard_app(apps.second):
        yield
    apps.close_resources()


def env_on(backend: str, **options: Any) -> WorkflowEnv:
    return WorkflowEnv(seed=1, backend=backend, backend_options=options or None)


def assert_argument_error(error: BaseException, kind: str, parameter: str = "value") -> None:
    type_name, lost = apps.KINDS[kind]
    message = str(error)
    assert isinstance(error, ArgumentSerializationError)
    assert isinstance(error, UnserializableValueError)
    assert isinstance(error, TypeError)
    assert message.startswith(
        f"task tests.direct_apps.describe: argument {parameter!r} (type {type_name}) does not "
        "survive pynenc's serializer (JsonPickleSerializer): "
    )
    assert f"{parameter}{lost}" in message or f"{parameter}: {type_name} {lost}" in message
    assert "Pass plain data" in message  # the fix


# --------------------------------------------------------------------------- arguments


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", KINDS)
def test_start_with_an_argument_that_cannot_round_trip(backend: str, kind: str) -> None:
    with env_on(backend) as env:
        with pytest.raises(ArgumentSerializationError) as info:
            env.start(apps.describe, apps.unserializable(kind))
        assert_argument_error(info.value, kind)
        assert env.steps == []  # refused before anything was written
        assert env.start(apps.describe, "fine").result == "str"  # the env goes on


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_direct_call_with_a_lambda(backend: str) -> None:
    with env_on(backend) as env:
        with pytest.raises(ArgumentSerializationError) as info:
            apps.describe(label="x", value=lambda: 1)
        assert_argument_error(info.value, "lambda")
        assert env.steps == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_child_call_with_a_socket_fails_the_workflow_at_the_call(backend: str) -> None:
    with env_on(backend) as env:
        run = env.start(apps.passes_to_child, "socket")
        with pytest.raises(ArgumentSerializationError) as info:
            run.result
        assert_argument_error(info.value, "socket")
        assert env.executions(apps.describe) == 0
        assert not any(step.startswith("route:describe") for step in env.steps)


@pytest.mark.parametrize("backend", BACKENDS)
def test_parallelize_checks_every_call(backend: str) -> None:
    with env_on(backend), pytest.raises(ArgumentSerializationError) as info:
        apps.describe.parallelize([("ok",), (apps.unserializable("file"),)])
    assert_argument_error(info.value, "file")


@pytest.mark.parametrize("backend", BACKENDS)
def test_arguments_that_survive_pass(backend: str) -> None:
    order = apps.Order("o-1", on_paid=apps.module_level_callback)
    with env_on(backend) as env:
        assert env.start(apps.describe, order).result == "Order"
        assert apps.describe((1, 2)).result == "tuple"
        assert apps.describe({"a": [1, None, {"b": 2.5}]}).result == "dict"
        assert apps.describe(apps.module_level_callback).result == "function"
        assert apps.describe(b"bytes").result == "bytes"


# --------------------------------------------------------------------------- signals


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_signal_payload_that_cannot_round_trip(backend: str) -> None:
    with env_on(backend) as env:
        run = env.start(apps.approval)
        env.run_until_idle()
        with pytest.raises(WorkflowDataSerializationError) as info:
            env.signal(run, "approved", apps.unserializable("lambda"))
        message = str(info.value)
        assert message.startswith(
            f"workflow tests.direct_apps.approval (id {run.workflow_id}) stores the payload of "
            "signal 'approved' with a value of type builtins.function "
        )
        assert "payload: builtins.function comes back as NoneType" in message
        assert "Store plain data" in message
        # Nothing arrived: the workflow still waits, and a good payload gets through.
        assert not run.done
        env.signal(run, "approved", {"by": "ops"})
        assert run.result == {"by": "ops"}


# --------------------------------------------------------------------------- workflow data


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["lambda", "file", "nested", "attribute", "int_keys"])
def test_workflow_data_that_cannot_round_trip(backend: str, kind: str) -> None:
    type_name, lost = apps.KINDS[kind]
    with env_on(backend) as env:
        run = env.start(apps.stores, kind)
        with pytest.raises(WorkflowDataSerializationError) as info:
            run.result
    message = str(info.value)
    assert message.startswith(
        f"workflow tests.direct_apps.stores (id {run.workflow_id}) stores key 'cfg' with a "
        f"value of type {type_name} "
    )
    assert f"value{lost}" in message or f"value: {type_name} {lost}" in message
    assert f"the {backend} backend" in message


@pytest.mark.parametrize("backend", BACKENDS)
def test_workflow_data_that_survives_passes(backend: str) -> None:
    with env_on(backend) as env:
        assert env.start(apps.stores_fine).result == ["Order", "module_level_callback"]


# --------------------------------------------------------------------------- switched off


@pytest.mark.parametrize("backend", BACKENDS)
def test_without_the_check_the_loss_is_silent(backend: str) -> None:
    """What pynenc does on its own: the worker gets None for the lambda (every backend stores
    the call serialized); the memory backend keeps workflow data by reference."""
    with env_on(backend, check_serialization=False) as env:
        assert env.start(apps.describe, lambda: 1).result == "NoneType"
        if backend == "memory":
            assert env.start(apps.stores, "lambda").result == "stored"


def test_memory_options_are_checked() -> None:
    with pytest.raises(InvalidArgument, match=re.escape(
        "unknown backend_options for the memory backend: colour; it accepts: "
        "check_serialization."
    )):
        WorkflowEnv(backend_options={"colour": "red"})
    with pytest.raises(InvalidArgument, match="must be True or False"):
        WorkflowEnv(backend_options={"check_serialization": "yes"})
