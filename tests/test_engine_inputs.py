"""Bad inputs to the engine, in the simulator and where no runner is involved: the same
answers as on ThreadRunner + SQLite (tests/production/test_inputs_production.py), an engine
error at the call that names the problem and the fix."""

from __future__ import annotations

import datetime as dt
import math

import pytest
from pynenc import Pynenc, PynencBuilder

from pynenc_wf_testing import ArgumentSerializationError, WorkflowEnv
from pynenc_wf_testing.engine import (
    InvalidWorkflowArgument,
    InvalidWorkflowOperation,
    RetryPolicy,
    UnknownStep,
    UnknownWorkflow,
    enable_workflows,
    enable_workflows_in_config,
)
from tests import rerun_apps as ra
from tests.production import inputs_app

app = enable_workflows(Pynenc(config_values={"app_id": "wf-tests-engine-inputs"}))


@pytest.mark.parametrize("case", sorted(inputs_app.CASES))
def test_bad_inputs_inside_a_workflow_raise_engine_errors_at_the_call(case: str) -> None:
    inputs_app.bind(app)
    kind, message = inputs_app.SIMULATOR.get(case, inputs_app.EXPECTED[case])
    with WorkflowEnv(seed=1) as env:
        answer = env.start(inputs_app.inputs, case).result
    assert answer.startswith(f"{kind}: {message}"), answer


def test_start_workflow_of_the_engine_checks_arguments_and_deadline_in_the_simulator() -> None:
    inputs_app.bind(app)
    with WorkflowEnv(seed=1) as env:
        env.use(app)
        from pynenc_wf_testing.engine import start_workflow

        with pytest.raises(
            InvalidWorkflowArgument,
            match=r"^start_workflow\(\): inputs\(case\) cannot be called with these arguments "
                  r"\(too many positional arguments\)",
        ):
            start_workflow(inputs_app.inputs, "sleep-nan", 2, workflow_id="w-1")
        with pytest.raises(InvalidWorkflowArgument, match=r"is past the year 9999"):
            env.start_workflow(
                inputs_app.inputs, "sleep-nan", workflow_id="w-1", run_timeout=dt.timedelta.max
            )
        with pytest.raises(ArgumentSerializationError, match=r"does not survive pynenc's"):
            env.start_workflow(inputs_app.inputs, lambda: "sleep-nan", workflow_id="w-1")
        with pytest.raises(UnknownWorkflow):
            env.describe("w-1")  # no refused start took the id
        assert env.start_workflow(inputs_app.inputs, "sleep-nan", workflow_id="w-1").result


def test_workflow_operations_outside_an_invocation_in_the_simulator() -> None:
    inputs_app.bind(app)
    with WorkflowEnv(seed=1) as env:
        env.use(app)
        with pytest.raises(
            InvalidWorkflowOperation, match=r"^inputs\.wf\.root\.sleep\(\) was called outside"
        ):
            inputs_app.inputs.wf.root.sleep(1)
        with pytest.raises(
            InvalidWorkflowOperation, match=r"^inputs\.wf\.root\.uuid\(\) was called outside"
        ):
            inputs_app.inputs.wf.root.uuid()
        with pytest.raises(AttributeError, match=r"^add is a plain task: wf\.root"):
            inputs_app.add.wf.root


def test_a_malformed_call_number_is_named_as_such(wf_env) -> None:  # type: ignore[no-untyped-def]
    ra.reset()
    run = wf_env.start(ra.fulfill, "o-1")
    run.result
    for step in ("charge_payment#0", "charge_payment#-1", "charge_payment#x"):
        with pytest.raises(
            UnknownStep,
            match=rf"^rerun_workflow\(\): step '{step}' has no call number: calls are numbered "
                  r"from 1 \('charge_payment#1' \.\.\. 'charge_payment#2'\)",
        ):
            wf_env.rerun(run, from_step=step)


# -- retry policies


def test_retry_policy_multiplier_must_be_finite() -> None:
    for value in (math.inf, math.nan):
        with pytest.raises(InvalidWorkflowArgument, match=r"multiplier must be a number \(finite\)"):
            RetryPolicy(multiplier=value)
    with pytest.raises(InvalidWorkflowArgument, match=r"jitter must be a number \(finite\)"):
        RetryPolicy(jitter=math.inf)


def test_a_policy_that_retries_forever_stays_at_its_cap() -> None:
    """2.0 ** 1024 overflows a float: attempt 1,025 of an exponential policy with
    max_attempts=None used to raise OverflowError in the workflow."""
    policy = RetryPolicy.exponential(max_attempts=None, cap=dt.timedelta(minutes=10))
    assert [policy.delay(n, "s") for n in (1, 2, 11, 1025, 10**6)] == [
        dt.timedelta(seconds=1), dt.timedelta(seconds=2), dt.timedelta(minutes=10),
        dt.timedelta(minutes=10), dt.timedelta(minutes=10),
    ]
    huge = RetryPolicy(initial_delay=dt.timedelta.max, max_delay=dt.timedelta.max)
    assert huge.delay(1, "s") <= dt.timedelta.max  # no OverflowError
    zero = RetryPolicy(initial_delay=dt.timedelta(0), multiplier=1e300)
    assert zero.delay(5, "s") == dt.timedelta(0)


# -- enabling


def test_enable_workflows_refuses_a_retry_policy_that_is_not_one() -> None:
    message = r"^enable_workflows\(retry_policy=5\): expected a RetryPolicy or None, e\.g\. "
    with pytest.raises(InvalidWorkflowArgument, match=message):
        PynencBuilder().enable_workflows(retry_policy=5)
    with pytest.raises(InvalidWorkflowArgument, match=message):
        enable_workflows(Pynenc(config_values={"app_id": "wf-tests-inputs-2"}), retry_policy=5)  # type: ignore[arg-type]
    with pytest.raises(InvalidWorkflowArgument, match=message):
        enable_workflows_in_config({}, retry_policy=5)  # type: ignore[arg-type]
    with pytest.raises(
        InvalidWorkflowArgument,
        match=r"^enable_workflows_in_config\(\) expects the config dict the app will be built "
              r"with, got NoneType: None\.",
    ):
        enable_workflows_in_config(None)  # type: ignore[arg-type]


def test_the_builder_method_takes_keyword_arguments_only() -> None:
    with pytest.raises(
        InvalidWorkflowArgument,
        match=r"^enable_workflows\(\) takes keyword arguments only, got 1 positional "
              r"\(RetryPolicy\); write e\.g\. enable_workflows\(retry_policy=",
    ):
        PynencBuilder().enable_workflows(RetryPolicy())
