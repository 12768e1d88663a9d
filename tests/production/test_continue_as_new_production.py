"""Continue-as-new on pynenc's stock ThreadRunner with the SQLite backend, in real time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pynenc.identifiers.task_id import TaskId
from pynenc.invocation.status import InvocationStatus

from pynenc_wf_testing.engine import (
    InvalidWorkflowArgument,
    WorkflowNotFinished,
    describe_workflow,
    signal_workflow,
    start_workflow,
    workflow_result,
)
from tests.production import chain_prod as cp
from tests.production.conftest import Production

pytestmark = [
    pytest.mark.production,
    pytest.mark.filterwarnings("ignore:Running in a secondary thread"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning"),
]


@pytest.fixture
def chain(prod: Production) -> Iterator[Production]:
    cp.reset()
    cp.bind(prod.app)
    yield prod
    cp.reset()


def runs_of(prod: Production, task: object) -> list[str]:
    key = task.task_id.key  # type: ignore[attr-defined]
    return [str(w.workflow_id) for w in prod.app.state_backend.get_workflow_runs(TaskId.from_key(key))]


def test_a_renewal_chain_under_one_workflow_id(chain: Production) -> None:
    app = chain.app
    first = start_workflow(cp.renewal, "acct-1", months=3, workflow_id="acct-1")
    with pytest.raises(WorkflowNotFinished):
        workflow_result(app, "acct-1")
    chain.start_runner()
    info = chain.wait_until(
        lambda: (d := describe_workflow(app, "acct-1")).finished and len(d.runs) == 3 and d
    )
    assert info.workflow_id == "acct-1" and info.status == "success"
    assert info.runs[0] == str(first.invocation_id)
    assert info.continued_from == info.runs[1]
    assert workflow_result(app, "acct-1") == {"account": "acct-1", "months": 3}
    assert cp.CHARGES == [("acct-1", 1), ("acct-1", 2), ("acct-1", 3)]
    # pynenc's own view: three top-level runs, the first two ended with a link.
    assert sorted(runs_of(chain, cp.renewal)) == sorted(info.runs)
    assert first.result == {"continued_as_new": info.runs[1]}
    assert chain.status(first) == InvocationStatus.SUCCESS


def test_signals_sent_before_and_between_runs_reach_the_chain(chain: Production) -> None:
    app = chain.app
    start_workflow(cp.inbox, [], workflow_id="box")
    for message in ("a", "b"):  # stored in the first run before it runs
        signal_workflow(app, "box", "msg", message)
    chain.start_runner()
    chain.wait_until(lambda: len(describe_workflow(app, "box").runs) == 3)
    signal_workflow(app, "box", "msg", "stop")  # reaches the third run by the workflow id
    chain.wait_until(lambda: describe_workflow(app, "box").finished)
    assert workflow_result(app, "box") == ["a", "b", "stop"]
    assert len(describe_workflow(app, "box").runs) == 3


def test_a_runner_stopped_mid_chain_resumes_it_without_a_second_run(chain: Production) -> None:
    app = chain.app
    start_workflow(cp.renewal, "acct-2", months=4, pause=0.2, workflow_id="acct-2")
    first = chain.start_runner()
    chain.wait_until(lambda: len(describe_workflow(app, "acct-2").runs) >= 2)
    chain.stop_runner(first)  # graceful stop: the run in its sleep is rerouted
    chain.start_runner()
    info = chain.wait_until(
        lambda: (d := describe_workflow(app, "acct-2")).finished and d, timeout=20
    )
    assert len(info.runs) == 4
    assert sorted(runs_of(chain, cp.renewal)) == sorted(info.runs)
    assert sorted(set(cp.CHARGES)) == [("acct-2", m) for m in range(1, 5)]


def test_an_argument_that_cannot_be_stored_fails_the_run_and_starts_nothing(
    chain: Production,
) -> None:
    run = start_workflow(cp.bad_argument, workflow_id="bad")
    chain.start_runner()
    with pytest.raises(InvalidWorkflowArgument, match="does not survive pynenc's serializer"):
        chain.result(run)
    assert describe_workflow(chain.app, "bad").runs == (str(run.invocation_id),)
    assert runs_of(chain, cp.bad_argument) == [str(run.invocation_id)]


@pytest.mark.parametrize("reader", ["describe_workflow", "workflow_result"])
def test_a_run_that_continues_while_a_client_reads_it_is_not_taken_for_the_chains_end(
    reader: str, chain: Production, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The flake of test_a_runner_stopped_mid_chain_...: a client resolved the chain's last
    run, the run continued as new, then the client read its status: SUCCESS, read as the
    chain's end. Here the continuation is made to land exactly in that window."""
    app = chain.app
    first = start_workflow(cp.inbox, [], workflow_id="box-race")
    first_id = str(first.invocation_id)
    chain.start_runner()
    chain.wait_until(lambda: describe_workflow(app, "box-race").suspended is not None)
    orchestrator = app.orchestrator
    original = orchestrator.get_invocation_status_record
    landed: list[str] = []

    def continues_meanwhile(invocation_id: Any, *args: Any, **kwargs: Any) -> Any:
        if str(invocation_id) == first_id and not landed:
            landed.append(first_id)  # once: the calls below read through
            signal_workflow(app, "box-race", "msg", "a")  # the run continues as new
            chain.wait_until(lambda: original(first_id).status == InvocationStatus.SUCCESS)
        return original(invocation_id, *args, **kwargs)

    monkeypatch.setattr(orchestrator, "get_invocation_status_record", continues_meanwhile)
    if reader == "describe_workflow":
        info = describe_workflow(app, "box-race")
        assert landed and not info.finished
        assert info.runs[0] == first_id and len(info.runs) == 2
        assert info.run_id == info.runs[1]
    else:
        with pytest.raises(WorkflowNotFinished):
            workflow_result(app, "box-race")
        assert landed
    monkeypatch.undo()
    signal_workflow(app, "box-race", "msg", "stop")
    chain.wait_until(lambda: describe_workflow(app, "box-race").finished)
    assert workflow_result(app, "box-race") == ["a", "stop"]
