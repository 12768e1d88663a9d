"""The neutral model the reports render: what ran, when, how often, and with what outcome.

:func:`~pynenc_wf_testing.env.report.render_text` and
:func:`~pynenc_wf_testing.env.report.render_html` draw a :class:`ReportData`. Two kinds of
source produce one:

- a simulation: :func:`report_data` reads an open ``WorkflowEnv`` (its history, its
  side-effect ledger, pynenc's statuses, what is blocked), on the virtual clock;
- a store or a file: :mod:`pynenc_wf_testing.env.report_sources` reads a production SQLite
  or Redis store of pynenc (its status history with real timestamps and the workflows' data)
  or an exported history file, without writing to it.

The renderer never looks past this model, so a test author and an operator see the same page.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pynenc_wf_testing.engine import schema as engine_schema
from pynenc_wf_testing.runtime.history import Step

if TYPE_CHECKING:
    from pynenc_wf_testing.runtime.simulation import Simulation
    from pynenc_wf_testing.runtime.world import WorldHost

__all__ = ["InvocationView", "ReportData", "ReportedEnv", "RunView", "report_data", "run_links"]


class ReportedEnv(Protocol):
    """What the reports read of an environment (a ``WorkflowEnv``): its world (simulation
    and start of the virtual clock) and how to rerun it."""

    @property
    def world(self) -> WorldHost: ...

    @property
    def rerun_hint(self) -> str: ...


@dataclass(frozen=True)
class InvocationView:
    """One invocation of the report: a workflow, a sub-workflow or a task.

    ``name`` is its step name (``charge_payment#1``: the first ``charge_payment`` call of its
    workflow). ``parent_invocation_id`` is the invocation that called it,
    ``owner_workflow_id`` the workflow its routing and result belong to (for a sub-workflow:
    the parent workflow), ``workflow_id`` the workflow it runs in (a workflow's own id).
    ``status`` is pynenc's status value (``success``, ``running``, ...). ``first_seen`` is
    the ISO 8601 instant it was first recorded (``None``: unknown). ``blocked`` says what it
    waits for right now (``None``: nothing known).

    Links between runs of a workflow, from the engine's records: ``rerun_of`` is the run a
    re-run (``rerun_workflow``) re-runs and ``rerun_from_step`` the step it executed again
    from (``None``: it reused every valid result); ``rerun_as`` the re-runs of this run, in
    order; ``continued_from``/``continued_as`` the runs before and after this one in a
    ``continue_as_new`` chain.
    """

    invocation_id: str
    name: str
    task: str
    is_workflow: bool
    status: str
    parent_invocation_id: str | None = None
    owner_workflow_id: str | None = None
    workflow_id: str | None = None
    first_seen: str | None = None
    blocked: str | None = None
    rerun_of: str | None = None
    rerun_from_step: str | None = None
    rerun_as: tuple[str, ...] = ()
    continued_from: str | None = None
    continued_as: str | None = None


@dataclass(frozen=True)
class RunView:
    """One execution of an invocation's function (a run): ``attempt`` counts from 1;
    ``outcome`` is ``success``, ``failed``, ``retry``, ``crashed``, ``running``, ``stalled``
    or ``aborted``; ``started``/``finished`` are ISO 8601 instants (``finished`` ``None``:
    still open, or unknown); ``injected``: a failure injected by ``wf_env.fail``; ``worker``:
    the pool worker that ran it (``WorkflowEnv(workers=N)``; 0 without a pool or unknown)."""

    invocation_id: str
    name: str
    attempt: int
    outcome: str
    started: str
    finished: str | None = None
    injected: bool = False
    worker: int = 0


@dataclass(frozen=True)
class ReportData:
    """Everything a report draws, whatever it was read from.

    ``source`` heads the report (``seed 3`` for a simulation, ``sqlite store prod.db, app
    shop`` for a store); ``rerun`` is the rerun recipe of a simulation (``None`` elsewhere);
    ``clock`` says whether the instants are ``virtual`` (a simulation, a recorded history) or
    ``real`` (a production store). ``start``/``now`` bound the time axis (ISO 8601).
    ``invocations`` are in order of first appearance, ``steps`` in history order (crash and
    recovery events included), ``runs`` in start order.
    """

    source: str
    clock: Literal["virtual", "real"]
    start: str
    now: str
    invocations: tuple[InvocationView, ...]
    steps: tuple[Step, ...]
    runs: tuple[RunView, ...]
    rerun: str | None = None
    notes: tuple[str, ...] = ()


def _status_of(sim: Simulation, inv_id: str) -> str:
    """pynenc's current status of ``inv_id``; never raises (a report must not fail a test)."""
    try:
        app = sim._app_of(inv_id)
        if not sim.is_stored(app, inv_id):
            return "never stored"
        return str(app.orchestrator.get_invocation_status(inv_id).value)
    except Exception:
        return "unknown"


def run_links(data: Mapping[str, Any]) -> dict[str, Any]:
    """The :class:`InvocationView` link fields of a workflow run, from its engine records
    (``data``: record key -> decoded value; records that are missing or unreadable, such as
    encrypted payloads read without the key, give no link)."""
    links: dict[str, Any] = {}
    rerun = data.get(engine_schema.RERUN_OF)
    if isinstance(rerun, Mapping) and isinstance(rerun.get("run"), str):
        links["rerun_of"] = rerun["run"]
        step = rerun.get("from_step")
        links["rerun_from_step"] = step if isinstance(step, str) else None
    by = data.get(engine_schema.RERUN_BY)
    if isinstance(by, list) and by and all(isinstance(r, str) for r in by):
        links["rerun_as"] = tuple(by)
    for key, field_name in (
        (engine_schema.CONTINUED_FROM, "continued_from"),
        (engine_schema.CONTINUED_AS, "continued_as"),
    ):
        if isinstance(data.get(key), str):
            links[field_name] = data[key]
    return links


_LINK_KEYS = (
    engine_schema.RERUN_OF, engine_schema.RERUN_BY, engine_schema.CONTINUED_FROM,
    engine_schema.CONTINUED_AS,
)


def _sim_links(sim: Simulation, inv_id: str, is_workflow: bool) -> dict[str, Any]:
    """The links of a workflow run of the simulation, read from its store; never raises."""
    if not is_workflow:
        return {}
    try:
        app = sim._app_of(inv_id)
        if not sim.is_stored(app, inv_id):
            return {}
        identity = app.state_backend.get_invocation(inv_id).workflow
        return run_links({
            key: app.state_backend.get_workflow_data(identity, key, None) for key in _LINK_KEYS
        })
    except Exception:
        return {}


def report_data(env: ReportedEnv) -> ReportData:
    """The model of everything ``env`` (an open ``WorkflowEnv``) ran so far."""
    if not hasattr(env, "world"):
        from pynenc_wf_testing.errors import InvalidArgument

        raise InvalidArgument(
            f"expected a WorkflowEnv or a ReportData, got {type(env).__name__}: {env!r}. "
            "Read a store or a history with pynenc_wf_testing.env.report_sources "
            "(read_sqlite_store, read_redis_store, read_history)."
        )
    world = env.world
    sim = world.sim
    blocked_by_label = sim.blocked_report()
    invocations = tuple(
        InvocationView(
            invocation_id=inv_id,
            name=info.name,
            task=info.task,
            is_workflow=info.is_workflow,
            status=_status_of(sim, inv_id),
            parent_invocation_id=info.parent_invocation_id,
            owner_workflow_id=info.owner_workflow_id,
            workflow_id=info.workflow_id,
            first_seen=info.first_seen or None,
            blocked=blocked_by_label.get(sim.label(inv_id)),
            **_sim_links(sim, inv_id, info.is_workflow),
        )
        for inv_id, info in sim.invocations.items()
    )
    runs = tuple(_run_view(execution) for execution in sim.ledger)
    return ReportData(
        source=f"seed {sim.seed}",
        clock="virtual",
        start=world.start.isoformat(),
        now=sim.clock.now.isoformat(),
        invocations=invocations,
        steps=tuple(sim.history),
        runs=runs,
        rerun=env.rerun_hint,
    )


def _run_view(execution: Any) -> RunView:
    finished = getattr(execution, "finished", None)  # recorded by newer simulations
    return RunView(
        invocation_id=execution.invocation_id,
        name=execution.name,
        attempt=execution.attempt,
        outcome=execution.outcome,
        started=execution.started,
        finished=finished if isinstance(finished, str) else None,
        injected=execution.injected,
        worker=getattr(execution, "worker", 0),
    )
