"""README "Hard bounds on work", "Values that cannot round-trip" and the run handle's
environment, probed as a user would hit them: a run that never ends, a busy wait, an
argument pynenc's serializer would lose, a run handle carried into another environment.
"""

from __future__ import annotations

import datetime as dt

import pytest

from pynenc_wf_testing import (
    ArgumentSerializationError,
    BusyWaitError,
    InvalidArgument,
    StepLimitExceeded,
    WorkflowEnv,
)
from tests import probe_apps as pa


@pytest.fixture(autouse=True)
def outside_world() -> None:
    pa.reset()


def test_a_uuid_loop_hits_the_step_limit_and_driving_again_raises_it_again() -> None:
    """"driving again raises again": the second ``.result`` used to be a DeadlockError about
    the invocation the limit had stopped."""
    with WorkflowEnv(seed=3, max_steps=200) as env:
        run = env.start(pa.spinning, 1)
        for _ in range(2):
            with pytest.raises(StepLimitExceeded, match="committed 200 history steps"):
                run.result
        with pytest.raises(StepLimitExceeded):
            env.run_until_idle()


def test_a_busy_wait_on_the_virtual_clock_names_the_task_and_line() -> None:
    pattern = r"busy#1 .* at .*probe_apps\.py:\d+ in busy"
    with WorkflowEnv(seed=3, log_level="critical") as env, pytest.raises(BusyWaitError, match=pattern):
        env.start(pa.busy, 5).result


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (lambda: 1, "builtins.function comes back as NoneType"),
        ({1: "a"}, "the int key comes back as the string '1'"),
    ],
)
def test_an_argument_the_serializer_would_change_is_refused_at_the_call(
    wf_env: WorkflowEnv, value: object, message: str
) -> None:
    with pytest.raises(ArgumentSerializationError, match=message) as caught:
        wf_env.start(pa.takes_callback, "o", on_paid=value)
    assert isinstance(caught.value, TypeError)
    assert "argument 'on_paid'" in str(caught.value)


def test_the_serialization_check_can_be_turned_off() -> None:
    with WorkflowEnv(seed=3, backend_options={"check_serialization": False}) as env:
        assert env.start(pa.takes_callback, "o", on_paid=lambda: 1).result == "o"


@pytest.mark.parametrize(
    ("backend", "options", "message"),
    [
        ("memory", {"nope": 1}, "unknown backend_options for the memory backend: nope"),
        ("memory", [1], "backend_options must be a dict"),
        ("sqlite", {"path": 5}, r"backend_options\['path'\] must be a str or pathlib.Path"),
    ],
)
def test_bad_backend_options(backend: str, options: object, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        WorkflowEnv(backend=backend, backend_options=options)  # type: ignore[arg-type]


def test_a_run_belongs_to_its_environment() -> None:
    with WorkflowEnv(seed=3) as first:
        run = first.start(pa.approval, "d")
        first.run_until_idle()
    with pytest.raises(InvalidArgument, match="closed"):
        run.status
    with WorkflowEnv(seed=3) as second:
        for call in (
            lambda: second.signal(run, "approved", {"by": "x"}),
            lambda: second.describe(run),
            lambda: second.query(run),
            lambda: second.cancel(run, "r"),
        ):
            with pytest.raises(InvalidArgument, match="is a run of another WorkflowEnv"):
                call()


def test_restart_after_and_slice_timeout_accept_timedeltas() -> None:
    with WorkflowEnv(seed=3, slice_timeout=dt.timedelta(seconds=2)) as env:
        assert env.start(pa.fulfill, "o").result == "shipped o"
    with WorkflowEnv(seed=3, slice_timeout=None) as env:
        assert env.start(pa.fulfill, "o").result == "shipped o"


@pytest.mark.parametrize(
    ("backend", "options", "message"),
    [
        ("sqlite", {"path": "run.db", "resume": "yes"}, r"backend_options\['resume'\] must be True or False"),
        ("sqlite", {"check_serialization": "no"}, r"\['check_serialization'\] must be True or False"),
        ("redis", {"check_serialization": "no"}, r"\['check_serialization'\] must be True or False"),
        ("memory", {"check_serialization": "no"}, r"\['check_serialization'\] must be True or False"),
    ],
)
def test_backend_flags_must_be_bools(backend: str, options: dict[str, object], message: str) -> None:
    """``"no"`` used to be taken for True by the sqlite and redis backends, silently."""
    with pytest.raises(InvalidArgument, match=message):
        WorkflowEnv(backend=backend, backend_options=options)


def test_an_unreachable_redis_url_is_refused_where_it_is_given() -> None:
    """It used to pass the constructor, then fail the first ``start`` with redis-py's bare
    ``ConnectionError`` (and again at close)."""
    with pytest.raises(InvalidArgument, match=r"cannot reach the Redis server .*check the URL"):
        WorkflowEnv(backend="redis", backend_options={"url": "redis://127.0.0.1:1/0"})
