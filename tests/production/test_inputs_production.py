"""The engine tried as a new user would, on pynenc's ThreadRunner + SQLite: every bad input
is refused at the call with an engine error that names the problem and the fix, never a
raw pynenc or Python exception from deep inside (a ``TypeError`` of pynenc's signature
binding, an ``AttributeError`` for a non-task, an ``OverflowError`` of a deadline past
the year 9999, pynenc's ``RuntimeError("Task has not been invoked yet")``), and nothing is
started or recorded by a refused call."""

from __future__ import annotations

import datetime as dt

import pytest
from pynenc import Pynenc, PynencBuilder

from pynenc_wf_testing.engine import (
    InvalidWorkflowArgument,
    InvalidWorkflowOperation,
    Keyring,
    MissingEncryptionKey,
    UnknownWorkflow,
    cancel_workflow,
    describe_workflow,
    query_workflow,
    set_retry_policy,
    signal_workflow,
    start_workflow,
    workflow_result,
)
from pynenc_wf_testing.engine.retry import RetryPolicy
from tests.production import inputs_app
from tests.production import prod_app as pa
from tests.production.conftest import Production

pytestmark = [
    pytest.mark.production,
    pytest.mark.filterwarnings("ignore:Running in a secondary thread"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning"),
]


def test_bad_inputs_inside_a_workflow_raise_engine_errors_at_the_call(prod: Production) -> None:
    inputs_app.bind(prod.app)
    prod.start_runner()
    runs = {case: inputs_app.inputs(case) for case in inputs_app.CASES}
    answers = {case: prod.result(run) for case, run in runs.items()}
    for case, (kind, message) in inputs_app.EXPECTED.items():
        assert answers[case].startswith(f"{kind}: {message}"), (case, answers[case])


def test_start_workflow_with_arguments_the_workflow_does_not_take(prod: Production) -> None:
    """Refused before the id is claimed or anything routed: the id stays free."""
    cases = [
        ((), {}, r"\(missing a required argument: 'timeout'\)\. Pass the arguments of "
                 r"signals's function\.$"),
        ((1.0, 2), {}, r"\(too many positional arguments\)"),
        ((), {"time_out": 1.0}, r"\(missing a required argument: 'timeout'\)"),
        ((1.0,), {"extra": 1}, r"\(got an unexpected keyword argument 'extra'\)"),
    ]
    for args, kwargs, message in cases:
        prefix = r"^start_workflow\(\): signals\(timeout\) cannot be called with these arguments "
        with pytest.raises(InvalidWorkflowArgument, match=prefix + message):
            start_workflow(pa.signals, *args, workflow_id="order-1", **kwargs)
    with pytest.raises(UnknownWorkflow):
        describe_workflow(prod.app, "order-1")


def test_a_run_timeout_past_the_year_9999_is_refused_and_the_id_stays_free(
    prod: Production,
) -> None:
    with pytest.raises(
        InvalidWorkflowArgument,
        match=r"^start_workflow\(run_timeout=\): datetime\.timedelta\(days=999999999.* is past "
              r"the year 9999, the last date Python can hold\. Give a shorter duration",
    ):
        start_workflow(pa.signals, 1.0, workflow_id="order-2", run_timeout=dt.timedelta.max)
    with pytest.raises(UnknownWorkflow):
        describe_workflow(prod.app, "order-2")
    # a long one that fits is taken as given
    run = start_workflow(pa.signals, 1.0, workflow_id="order-2", run_timeout=dt.timedelta(days=10**6))
    assert describe_workflow(prod.app, "order-2").run_id == run.invocation_id


def test_cancel_reason_must_be_a_string(prod: Production) -> None:
    run = start_workflow(pa.signals, 1.0, workflow_id="order-3")
    for reason in (None, 5, ["late"]):
        with pytest.raises(
            InvalidWorkflowArgument,
            match=rf"^cancel_workflow\(reason={reason!r}\): expected a string \(it becomes the "
                  r"message of WorkflowCancelled\)".replace("[", r"\["),
        ):
            cancel_workflow(prod.app, run, reason)  # type: ignore[arg-type]
    assert describe_workflow(prod.app, run).cancelled is None  # nothing recorded
    cancel_workflow(prod.app, run, "first")
    cancel_workflow(prod.app, run, "second")  # changes nothing: the first reason stays
    assert describe_workflow(prod.app, run).cancelled == "first"


def test_workflow_operations_outside_an_invocation(prod: Production) -> None:
    """From a script or a web handler: an engine error that points to the client."""
    root = pa.signals.wf.root
    for operation, call in [
        ("sleep", lambda: root.sleep(1)),
        ("now", lambda: root.now()),
        ("wait_for_signal", lambda: root.wait_for_signal("go")),
        ("execute_task_with_retry", lambda: root.execute_task_with_retry(pa.note, "x")),
        ("uuid", lambda: root.uuid()),  # pynenc's own, behind the same check
        ("random", lambda: root.random()),
        ("utc_now", lambda: root.utc_now()),
    ]:
        with pytest.raises(
            InvalidWorkflowOperation,
            match=rf"^signals\.wf\.root\.{operation}\(\) was called outside any invocation: "
                  r"workflow operations run inside the body of the workflow signals .* From "
                  r"outside, use the client: start_workflow, signal_workflow",
        ):
            call()
    with pytest.raises(InvalidWorkflowOperation, match=r"^signals\.wf\.save_state\(\) was called"):
        pa.signals.wf.save_state({"phase": 1})
    with pytest.raises(
        AttributeError,
        match=r"^note is a plain task: wf\.root \(durable timers, signals, waits, child calls\) "
              r"exists only on workflows",
    ):
        pa.note.wf.root
    assert not hasattr(pa.note.wf, "root")  # still an AttributeError for hasattr/getattr


def test_set_retry_policy_needs_a_task(prod: Production) -> None:
    with pytest.raises(
        InvalidWorkflowArgument,
        match=r"^set_retry_policy\(\) expects a pynenc task .* got NoneType: None\.",
    ):
        set_retry_policy(None, RetryPolicy())  # type: ignore[arg-type]
    with pytest.raises(InvalidWorkflowArgument, match=r"set_retry_policy\(\) expects a pynenc task"):
        set_retry_policy(pa.note.func, RetryPolicy())  # type: ignore[attr-defined]


def test_a_signal_payload_the_serializer_would_change_is_refused(prod: Production) -> None:
    """A dict with int keys would reach the workflow with str keys: refused at the sender,
    and nothing stored (the next signal is the workflow's first)."""
    prod.start_runner()
    run = start_workflow(pa.signals, 30.0)
    with pytest.raises(
        InvalidWorkflowArgument,
        match=r"^signal_workflow\('go'\): the payload \(dict\) does not survive pynenc's "
              r"serializer: \{1: 'x'\} reads back as \{'1': 'x'\}\. Pass plain data",
    ):
        signal_workflow(prod.app, run, "go", {1: "x"})
    assert signal_workflow(prod.app, run, "go", {"1": "x"}) == 1
    assert signal_workflow(prod.app, run, "go", [1, "two"]) == 2
    assert prod.result(run) == [{"1": "x"}, [1, "two"]]
    assert query_workflow(prod.app, run).status == "success"


def test_an_invocation_of_another_app_is_named_as_such(prod: Production, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Two apps in one process: handing one app's invocation to the other's client raised
    the store's raw KeyError."""
    run = start_workflow(pa.signals, 1.0, workflow_id="shared-id")
    other = (
        PynencBuilder().app_id(f"{prod.app_id}-other").sqlite(str(tmp_path / "other.db"))
        .enable_workflows().build()
    )
    for call in (describe_workflow, query_workflow):
        with pytest.raises(
            UnknownWorkflow,
            match=rf"^{call.__name__}\(\): invocation {run.invocation_id} belongs to app "
                  rf"'{prod.app_id}', and this call was given app '{prod.app_id}-other'\. "
                  r"Pass the app the workflow runs in \(its task's \.app\)\.$",
        ):
            call(other, run)
    with pytest.raises(UnknownWorkflow, match=r"belongs to app"):
        signal_workflow(other, run, "go", 1)
    with pytest.raises(UnknownWorkflow, match=r"has no workflow with id or invocation id 'shared-id'"):
        describe_workflow(other, "shared-id")
    assert describe_workflow(prod.app, "shared-id").run_id == run.invocation_id


# jsonpickle, handed a ciphertext string, warns about its yaml backend
@pytest.mark.filterwarnings("ignore:The yaml backend:DeprecationWarning")
def test_a_client_without_the_keyring_reading_an_encrypted_store(prod: Production) -> None:
    """Built without ``encryption=``, a client read the ciphertext as data (the workflow-id
    index as a string of characters: pynenc's raw 'Invalid TaskId key format: -')."""
    prod.rebuild(engine_first={"encryption": Keyring({"k1": Keyring.generate_key()}, "k1")})
    prod.start_runner()
    run = start_workflow(pa.sleeper, 0.01, workflow_id="sealed")
    assert isinstance(prod.result(run), float)  # the wall time it woke at
    prod.stop_runner(prod.runners[0][0])
    Pynenc._clear_instances()
    bare = PynencBuilder().app_id(prod.app_id).sqlite(prod.db_path).enable_workflows().build()
    with pytest.raises(
        MissingEncryptionKey,
        match=rf"^the index of workflow id 'sealed' of app '{prod.app_id}' is encrypted \(key id "
              r"'k1'\), and this app was built without a keyring\. Build it as the workers do",
    ):
        describe_workflow(bare, "sealed")
    with pytest.raises(
        MissingEncryptionKey,
        match=rf"^the result of workflow {run.invocation_id} of app .* is encrypted \(key id 'k1'\)",
    ):
        workflow_result(bare, run.invocation_id)


def test_start_workflow_refuses_arguments_the_serializer_would_change(prod: Production) -> None:
    """pynenc stores a lambda argument as None and a dict's int keys as strings: the workflow
    would run with other arguments than it was given. Refused before the id is claimed."""
    with pytest.raises(
        InvalidWorkflowArgument,
        match=r"^start_workflow\(\): argument #1 \(function\) does not survive pynenc's "
              r"serializer: <function> reads back as None\. Pass plain data",
    ):
        start_workflow(pa.await_signal, lambda: "go", workflow_id="order-4")
    with pytest.raises(
        InvalidWorkflowArgument,
        match=r"^start_workflow\(\): argument 'name' \(dict\) does not survive pynenc's "
              r"serializer: \{1: 'go'\} reads back as \{'1': 'go'\}",
    ):
        start_workflow(pa.await_signal, name={1: "go"}, workflow_id="order-4")
    with pytest.raises(UnknownWorkflow):
        describe_workflow(prod.app, "order-4")
