"""A sweep of bad inputs to the Python API (issue 14, point 5): each is refused at the call
with an error of the harness naming the problem and the fix, and leaves the environment
usable (the plugin's options and markers: tests/test_plugin_bad_inputs.py; random
sequences of operations: tests/test_fuzz_api.py).

Each case is ``(id, call, error, message)``: ``call(env)`` runs on an open environment that
uses ``tests.fuzz_apps``; ``message`` is a regular expression searched in the error's text.
After the error the same environment still runs a workflow to its result.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from pynenc_wf_testing import InvalidArgument, Signal, WorkflowEnv
from pynenc_wf_testing.engine import cancel_workflow
from pynenc_wf_testing.engine.exceptions import InvalidWorkflowArgument  # the engine's own
from pynenc_wf_testing.errors import WorkflowTestingError
from tests import fuzz_apps as f

Case = tuple[str, Callable[[WorkflowEnv], Any], type[BaseException], str]

CONSTRUCTOR: list[tuple[str, dict[str, Any], str]] = [
    ("seed-str", {"seed": "1"}, r"seed must be a non-negative int, got '1'\. Pass e\.g\."),
    ("seed-negative", {"seed": -1}, r"seed must be a non-negative int, got -1"),
    ("seed-bool", {"seed": True}, r"seed must be a non-negative int, got True"),
    ("start-str", {"start": "2030-01-01"}, r"start must be a datetime, got str.*Pass e\.g\."),
    ("start-naive", {"start": dt.datetime(2030, 1, 1)}, r"start must be timezone-aware"),
    ("max-steps-zero", {"max_steps": 0}, r"max_steps must be a positive int, got 0"),
    ("max-steps-str", {"max_steps": "10"}, r"max_steps must be a positive int, got '10'"),
    ("log-level-upper", {"log_level": "ERROR"}, r"log_level must be one of debug, info"),
    ("backend-unknown", {"backend": "mongo"}, r"unknown backend 'mongo'; choose one of"),
    ("backend-int", {"backend": 5}, r"backend must be a name \('memory', \.\.\.\) or a Backend"),
    ("backend-options-str", {"backend_options": "url"},
     r"backend_options must be a dict of option name -> value, got 'url'\. Pass e\.g\."),
    ("backend-options-unknown", {"backend_options": {"x": 1}},
     r"unknown backend_options for the memory backend: x; it accepts: check_serialization"),
    ("backend-options-int-keys", {"backend_options": {1: 2}},
     r"backend_options must be a dict of option name -> value"),
    ("slice-timeout-zero", {"slice_timeout": 0}, r"slice_timeout must be a positive timedelta"),
    ("slice-timeout-str", {"slice_timeout": "1"}, r"slice_timeout must be a positive timedelta"),
    ("unknown-option-typo", {"sed": 1},
     r"^WorkflowEnv\(\) got an unknown option sed=1\. Did you mean seed=\? It takes: seed, "
     r"start, max_steps, "),
    ("unknown-option", {"speed": 2}, r"unknown option speed=2\.( Did you mean seed=\?)? It takes"),
]


@pytest.mark.parametrize(("kwargs", "message"), [c[1:] for c in CONSTRUCTOR],
                         ids=[c[0] for c in CONSTRUCTOR])
def test_bad_constructor_arguments(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        WorkflowEnv(**kwargs)


def test_a_second_positional_constructor_argument_is_refused() -> None:
    with pytest.raises(InvalidArgument, match=r"^WorkflowEnv\(\) takes only the seed "
                       r"positionally, got 2 positional arguments .* Pass the others by name"):
        WorkflowEnv(1, dt.datetime(2030, 1, 1, tzinfo=dt.UTC))  # type: ignore[misc]


def _waiting_run(env: WorkflowEnv) -> Any:
    return env.start(f.waiter, 1)


CASES: list[Case] = [
    # start / start_workflow
    ("start-none", lambda e: e.start(None), InvalidArgument,  # type: ignore[call-overload]
     r"start\(\) expects a pynenc task .*got NoneType"),
    ("start-name", lambda e: e.start("chain"), InvalidArgument,  # type: ignore[call-overload]
     r"start\(\) expects a pynenc task"),
    ("start-plain-function", lambda e: e.start(f.chain.func, 1), InvalidArgument,  # type: ignore[call-overload]
     r"start\(\) expects a pynenc task"),
    ("start-missing-argument", lambda e: e.start(f.chain), InvalidArgument,
     r"chain\(n\) cannot be called with these arguments \(missing a required argument"),
    ("start-lambda-argument", lambda e: e.start(f.chain, lambda: 1), WorkflowTestingError,
     r"argument 'n' .* does not survive pynenc's serializer.*Pass plain data"),
    ("start-workflow-id-int", lambda e: e.start_workflow(f.chain, 1, workflow_id=5),  # type: ignore[arg-type]
     InvalidWorkflowArgument, r"workflow_id=5\): expected a non-empty string"),
    ("start-workflow-id-empty", lambda e: e.start_workflow(f.chain, 1, workflow_id=""),
     InvalidWorkflowArgument, r"workflow_id=''\): expected a non-empty string"),
    ("start-run-timeout-int", lambda e: e.start_workflow(f.chain, 1, run_timeout=5),  # type: ignore[arg-type]
     InvalidWorkflowArgument, r"run_timeout=5\): expected a positive datetime\.timedelta.*e\.g\."),
    ("start-run-timeout-negative",
     lambda e: e.start_workflow(f.chain, 1, run_timeout=dt.timedelta(seconds=-1)),
     InvalidWorkflowArgument, r"expected a positive datetime\.timedelta"),
    ("start-workflow-id-reuse", lambda e: e.start_workflow(f.chain, 1, id_reuse="never"),  # type: ignore[arg-type]
     InvalidWorkflowArgument, r"id_reuse must be 'reuse', 'reject' or 'allow_after_completion'"),
    # advance
    ("advance-str", lambda e: e.advance(days="1"),  # type: ignore[arg-type]
     InvalidArgument, r"advance\(days='1'\): expected a number of days\. Use e\.g\."),
    ("advance-negative", lambda e: e.advance(hours=-1), InvalidArgument,
     r"time only moves forward.*start a new WorkflowEnv with start="),
    ("advance-nan", lambda e: e.advance(seconds=float("nan")), InvalidArgument,
     r"expected a finite number of seconds"),
    ("advance-past-9999", lambda e: e.advance(weeks=10**9), InvalidArgument,
     r"past the last representable instant \(year 9999\)"),
    ("advance-months", lambda e: e.advance(months=1), InvalidArgument,  # type: ignore[call-arg]
     r"^advance\(months=\.\.\.\): takes the amount by unit, as keywords: seconds=, minutes=, "
     r"hours=, days=, weeks= \(no months or years: their length varies\)\. Use e\.g\."),
    ("advance-positional", lambda e: e.advance(30), InvalidArgument,  # type: ignore[call-arg]
     r"^advance\(30\): takes the amount by unit, as keywords"),
    ("advance-timedelta", lambda e: e.advance(dt.timedelta(hours=1)), InvalidArgument,  # type: ignore[call-arg,arg-type]
     r"\(for a timedelta: advance\(seconds=3600\.0\)\)\.$"),
    # crash points
    ("crash-none", lambda e: e.crash_after(None), InvalidArgument,  # type: ignore[arg-type]
     r"cannot use None as a step\. Pass a step name"),
    ("crash-step-zero", lambda e: e.crash_after(0), InvalidArgument,
     r"step numbers start at 1, got 0"),
    ("crash-empty-name", lambda e: e.crash_before(""), InvalidArgument,
     r"a step name cannot be empty"),
    ("crash-name-hash-word", lambda e: e.crash_after("double#x"), InvalidArgument,
     r"step name 'double#x': expected '<name>#<n>' with n >= 1.*'charge_payment#2'"),
    ("crash-name-hash-zero", lambda e: e.crash_before("double#0"), InvalidArgument,
     r"step name 'double#0': expected '<name>#<n>' with n >= 1"),
    ("crash-name-hash-only", lambda e: e.crash_after("#"), InvalidArgument,
     r"step name '#': expected '<name>#<n>'"),
    ("crash-bytes", lambda e: e.crash_after(b"double"), InvalidArgument,  # type: ignore[arg-type]
     r"cannot use a bytes .* as a step"),
    ("crash-predicate-no-argument", lambda e: e.crash_after(lambda: True), InvalidArgument,
     r"^the crash point <lambda>\(\) cannot be called with a Step \(too many positional "
     r"arguments\): a predicate crash point takes one argument, the step just committed"),
    ("crash-predicate-two-arguments",
     lambda e: e.crash_before(lambda step, env: True), InvalidArgument,  # type: ignore[arg-type,misc]
     r"the crash point <lambda>\(step, env\) cannot be called with a Step \(missing a "
     r"required argument: 'env'\)"),
    ("crash-restart-int", lambda e: e.crash_after("double", restart_after=5),  # type: ignore[arg-type]
     InvalidArgument, r"restart_after must be a non-negative datetime\.timedelta, got 5\. Pass"),
    ("crash-during-name", lambda e: e.crash_during("double"), InvalidArgument,  # type: ignore[arg-type]
     r"crash_during\(\) expects a pynenc task"),
    # failures
    ("fail-name", lambda e: e.fail("double"), InvalidArgument,  # type: ignore[arg-type]
     r"fail\(\) expects a pynenc task"),
    ("fail-times-zero", lambda e: e.fail(f.double, times=0), InvalidArgument,
     r"fail\(times=0\): expected a positive int"),
    ("fail-exc-int", lambda e: e.fail(f.double, exc=42), InvalidArgument,  # type: ignore[arg-type]
     r"fail\(exc=42\): expected an exception class or instance, e\.g\."),
    ("fail-exc-keyboard-interrupt", lambda e: e.fail(f.double, exc=KeyboardInterrupt),
     InvalidArgument,
     r"fail\(exc=<class 'KeyboardInterrupt'>\): KeyboardInterrupt is not an Exception, so it "
     r"is no failure pynenc records.*use crash_during\(task\)"),
    ("fail-exc-system-exit-instance", lambda e: e.fail(f.double, exc=SystemExit(3)),
     InvalidArgument, r"SystemExit is not an Exception"),
    # mocks
    ("mock-name", lambda e: e.mock("double", returns=1), InvalidArgument,  # type: ignore[arg-type]
     r"mock\(\) expects a pynenc task"),
    ("mock-conflict", lambda e: e.mock(f.double, returns=1, raises=ValueError), InvalidArgument,
     r"returns and raises conflict; give one of returns=, raises=, side_effect="),
    ("mock-raises-int", lambda e: e.mock(f.double, raises=42), InvalidArgument,  # type: ignore[arg-type]
     r"mock\(raises=42\): expected an exception instance or class"),
    ("mock-side-effect-int", lambda e: e.mock(f.double, side_effect=5), InvalidArgument,  # type: ignore[arg-type]
     r"mock\(side_effect=5\): expected a callable"),
    ("mock-side-effect-signature", lambda e: e.mock(f.double, side_effect=lambda: 1),
     InvalidArgument,
     r"mock\(double, side_effect='<lambda>'\): it is called with the task's arguments by name "
     r"\(x\) and cannot take them: .*side_effect=lambda x: \.\.\."),
    ("mock-returns-lambda", lambda e: e.mock(f.double, returns=lambda: 1), InvalidArgument,
     r"mock\(double, returns=\.\.\.\): the value does not survive pynenc's serializer "
     r"\(JsonPickleSerializer\), which stores every result: returns: builtins\.function comes "
     r"back as NoneType.*Return plain data"),
    ("mock-per-attempt-lambda",
     lambda e: e.mock(f.double, per_attempt={0: ValueError("x"), "1+": lambda: 2}),
     InvalidArgument, r"mock\(double, per_attempt\[1\+\]=\.\.\.\): the value does not survive"),
    ("mock-per-attempt-list", lambda e: e.mock(f.double, per_attempt=[1]),  # type: ignore[arg-type]
     InvalidArgument, r"per_attempt must be a non-empty dict of attempt -> outcome.*E\.g\."),
    ("mock-per-attempt-key", lambda e: e.mock(f.double, per_attempt={"x": 1}), InvalidArgument,
     r"per_attempt key 'x': expected an attempt number"),
    ("mock-per-attempt-overlap", lambda e: e.mock(f.double, per_attempt={"0-2": 1, 1: 2}),
     InvalidArgument, r"per_attempt: attempts overlap"),
    ("mock-delay-int", lambda e: e.mock(f.double, returns=1, delay=5),  # type: ignore[arg-type]
     InvalidArgument, r"mock\(delay=5\): expected a non-negative datetime\.timedelta, e\.g\."),
    # check_crash_safety
    ("check-none", lambda e: e.check_crash_safety(None), InvalidArgument,  # type: ignore[arg-type]
     r"check_crash_safety\(\) expects a pynenc task"),
    ("check-max-crashes-zero", lambda e: e.check_crash_safety(f.chain, 1, max_crashes=0),
     InvalidArgument, r"max_crashes must be an int >= 1, got 0"),
    ("check-max-examples-zero",
     lambda e: e.check_crash_safety(f.chain, 1, max_crashes=2, max_examples=0),
     InvalidArgument, r"max_examples must be an int >= 1 \(multi-crash schedules"),
    ("check-max-examples-str", lambda e: e.check_crash_safety(f.chain, 1, max_examples="5"),  # type: ignore[arg-type]
     InvalidArgument, r"max_examples must be an int >= 1"),
    ("check-fine-str", lambda e: e.check_crash_safety(f.chain, 1, fine="yes"),  # type: ignore[arg-type]
     InvalidArgument, r"fine must be True or False, got 'yes'"),
    ("check-compare-int", lambda e: e.check_crash_safety(f.chain, 1, compare=5),  # type: ignore[arg-type]
     InvalidArgument, r"compare must be a function \(golden, got\) -> bool, got 5"),
    ("check-invariant-int", lambda e: e.check_crash_safety(f.chain, 1, invariant=5),  # type: ignore[arg-type]
     InvalidArgument, r"invariant must be a function \(env\) -> bool"),
    ("check-restart-int", lambda e: e.check_crash_safety(f.chain, 1, restart_after=5),  # type: ignore[arg-type]
     InvalidArgument, r"restart_after must be a non-negative datetime\.timedelta"),
    ("check-before-each-int", lambda e: e.check_crash_safety(f.chain, 1, before_each=5),  # type: ignore[arg-type]
     InvalidArgument, r"before_each must be a function \(\) -> None, got 5"),
    ("check-after-start-int", lambda e: e.check_crash_safety(f.chain, 1, after_start=5),  # type: ignore[arg-type]
     InvalidArgument, r"after_start must be a function \(env, run\), got 5"),
    ("check-starter-int", lambda e: e.check_crash_safety(f.chain, 1, starter=5),  # type: ignore[arg-type]
     InvalidArgument, r"starter must be a function \(env\) -> WorkflowRun, got 5"),
    ("check-on-blocked-int", lambda e: e.check_crash_safety(f.chain, 1, on_blocked=5),  # type: ignore[arg-type]
     InvalidArgument, r"on_blocked must be a function \(env, run\) -> bool, got 5"),
    ("check-starter-returns-none",
     lambda e: e.check_crash_safety(f.chain, 1, starter=lambda env: None),  # type: ignore[arg-type,return-value]
     InvalidArgument, r"starter\(env\) must return the WorkflowRun it started, e\.g\. .*got None"),
    ("check-compare-one-argument",
     lambda e: e.check_crash_safety(f.chain, 1, compare=lambda result: True), InvalidArgument,
     r"^compare=<lambda>\(result\) cannot be called as compare\(golden, got\) \(too many "
     r"positional arguments\): the check calls it with 2 argument\(s\), golden, got\. Write "
     r"e\.g\. compare=lambda golden, got: golden == got\.$"),
    ("check-invariant-no-argument",
     lambda e: e.check_crash_safety(f.chain, 1, invariant=lambda: True), InvalidArgument,
     r"^invariant=<lambda>\(\) cannot be called as invariant\(env\)"),
    ("check-before-each-argument",
     lambda e: e.check_crash_safety(f.chain, 1, before_each=lambda env: None), InvalidArgument,
     r"^before_each=<lambda>\(env\) cannot be called as before_each\(\) \(missing a required "
     r"argument: 'env'\)"),
    ("check-starter-no-argument",
     lambda e: e.check_crash_safety(f.chain, 1, starter=lambda: None), InvalidArgument,  # type: ignore[arg-type,return-value]
     r"^starter=<lambda>\(\) cannot be called as starter\(env\)"),
    ("check-evictions-str", lambda e: e.check_crash_safety(f.chain, 1, evictions="no"),  # type: ignore[arg-type]
     InvalidArgument, r"^evictions must be True or False, got 'no'\.$"),
    ("check-worker-crashes-str",
     lambda e: e.check_crash_safety(f.chain, 1, worker_crashes="no"),  # type: ignore[arg-type]
     InvalidArgument, r"^worker_crashes must be True or False, got 'no'\.$"),
    # check_interleavings
    ("interleave-compare-two-arguments",
     lambda e: e.check_interleavings(f.waiter, 1, events=[Signal("go")],
                                     compare=lambda golden, got: golden == got),
     InvalidArgument,
     r"^compare=<lambda>\(golden, got\) cannot be called as compare\(result\) \(missing a "
     r"required argument: 'got'\): the check calls it with 1 argument\(s\), result\. Write "
     r"e\.g\. compare=lambda result: result == 'archived'\.$"),
    ("interleave-after-start-one-argument",
     lambda e: e.check_interleavings(f.waiter, 1, events=[Signal("go")],
                                     after_start=lambda run: None),
     InvalidArgument, r"^after_start=<lambda>\(run\) cannot be called as after_start\(env, run\)"),
    ("interleave-compare-int",
     lambda e: e.check_interleavings(f.waiter, 1, events=[Signal("go")], compare=5),  # type: ignore[arg-type]
     InvalidArgument, r"^compare must be a function \(result\) -> bool, got 5\.$"),
    # run handles and queries
    ("signal-name-none", lambda e: e.signal(_waiting_run(e), None),  # type: ignore[arg-type]
     InvalidWorkflowArgument, r"a signal name must be a non-empty string, got None"),
    ("signal-id-int", lambda e: e.signal(7, "go"), InvalidArgument,  # type: ignore[arg-type]
     r"expected a WorkflowRun \(what env\.start returns\) or a workflow id string, got int"),
    ("query-none", lambda e: e.query(None), InvalidArgument,  # type: ignore[arg-type]
     r"expected a WorkflowRun .* got NoneType"),
    ("cancel-reason-int", lambda e: e.cancel(_waiting_run(e), reason=5),  # type: ignore[arg-type]
     InvalidArgument, r"cancel\(reason=5\): expected a string .* e\.g\."),
    ("engine-cancel-reason-int",
     lambda e: cancel_workflow(f.app, _waiting_run(e), 5),  # type: ignore[arg-type]
     InvalidWorkflowArgument, r"^cancel_workflow\(reason=5\): expected a string"),
    ("run-of-int", lambda e: e.run_of(0), InvalidArgument,  # type: ignore[arg-type]
     r"run_of\(\) expects an invocation id"),
    ("run-of-unknown", lambda e: e.run_of("nope"), InvalidArgument,
     r"'nope' is neither an invocation id nor a workflow id.*Start runs with env\.start"),
    ("executions-int", lambda e: e.executions(5), InvalidArgument,  # type: ignore[arg-type]
     r"executions\(\) expects a pynenc task"),
    ("executions-unknown-name", lambda e: e.executions("doubel"), InvalidArgument,
     r"executions\('doubel'\): no task of the apps in use is named 'doubel' \(known: boom, "
     r"chain, double, failing, waiter\)\. Pass the task object"),
    ("executions-unknown-step", lambda e: e.executions("doubel#2"), InvalidArgument,
     r"no task of the apps in use is named 'doubel'"),
    ("calls-int", lambda e: e.calls(5), InvalidArgument,  # type: ignore[arg-type]
     r"calls\(\) expects a pynenc task"),
    ("mark-non-idempotent-int", lambda e: e.mark_non_idempotent(5), InvalidArgument,  # type: ignore[arg-type]
     r"mark_non_idempotent\(\) expects a pynenc task"),
    ("use-name", lambda e: e.use("fuzz"), InvalidArgument,  # type: ignore[arg-type]
     r"use\(\) expects a pynenc app .*Pass your module-level app"),
]


@pytest.mark.parametrize(("call", "error", "message"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_call_is_refused_at_the_call_and_the_env_stays_usable(
    call: Callable[[WorkflowEnv], Any], error: type[BaseException], message: str
) -> None:
    with WorkflowEnv(seed=1) as env:
        env.use(f.app)
        with pytest.raises(error, match=message):
            call(env)
        assert env.start(f.chain, 1).result == 2  # nothing half-armed is left behind
        assert env.unused_mocks() == []


def test_a_run_of_another_or_a_closed_environment_is_refused() -> None:
    with WorkflowEnv(seed=1) as first:
        run = first.start(f.chain, 1)
        assert run.result == 2
    assert repr(run) == f"<WorkflowRun {run.invocation_id[:8]} (environment closed)>"
    for read in ("status", "done", "history"):
        with pytest.raises(InvalidArgument, match=r"this WorkflowEnv is closed"):
            getattr(run, read)
    with WorkflowEnv(seed=2) as second:
        calls: list[Callable[[], Any]] = [
            lambda: second.signal(run, "go"), lambda: second.query(run),
            lambda: second.cancel(run), lambda: second.describe(run),
        ]
        for call in calls:
            with pytest.raises(
                InvalidArgument,
                match=rf"^{run.invocation_id[:8]} is a run of another WorkflowEnv; each "
                r"environment has its own store\. Signal, query or cancel it through",
            ):
                call()


def test_mocks_keep_plain_and_storable_values() -> None:
    """The round-trip check refuses only what the serializer changes."""
    with WorkflowEnv(seed=1) as env:
        env.use(f.app)
        env.mock(f.double, per_attempt={0: ValueError("first"), "1+": 7}, returns=dt.timedelta(1))
        env.mock(f.double, returns={"a": [1, 2.5, None]})
        env.mock(f.double, side_effect=lambda **kwargs: kwargs["x"] * 3)
        assert env.start(f.chain, 2).result == 0 + 3 + 6


@pytest.mark.parametrize(
    "options",
    [{"workflow_id": 5}, {"workflow_id": ""}, {"run_timeout": 5}, {"id_reuse": "never"},
     {"run_timeout": dt.timedelta(0)}],
    ids=["id-int", "id-empty", "timeout-int", "id-reuse", "timeout-zero"],
)
def test_start_workflow_refuses_alike_through_the_env_and_the_engine(options: dict[str, Any]) -> None:
    """One check (the engine's): the same mistake is the same exception and message."""
    from pynenc_wf_testing.engine import start_workflow

    with WorkflowEnv(seed=1) as env:
        env.use(f.app)
        with pytest.raises(InvalidWorkflowArgument) as through_env:
            env.start_workflow(f.chain, 1, **options)
        with pytest.raises(InvalidWorkflowArgument) as through_engine:
            start_workflow(f.chain, 1, **options)
        assert str(through_env.value) == str(through_engine.value)
        assert env.start(f.chain, 1).result == 2


def test_a_predicate_crash_point_that_raises_says_so() -> None:
    """The user's own error surfaces from the run, with a note naming the crash point."""
    def broken(step: Any) -> bool:
        raise ZeroDivisionError("oops")

    with WorkflowEnv(seed=1) as env:
        env.crash_after(broken)
        with pytest.raises(ZeroDivisionError, match="oops") as raised:
            env.start(f.chain, 1).result
    assert raised.value.__notes__ == [
        "raised by the crash point predicate broken at step #1 route:chain#1"
    ]
