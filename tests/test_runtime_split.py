"""The simulator's seams: the runtime imports no layer above it, faults come in through the
runtime's own protocol, and the coordinator stays small."""

from __future__ import annotations

import ast
import datetime as dt
import inspect
from pathlib import Path

from benchmarks import bench_app
from pynenc_wf_testing import WorkflowEnv
from pynenc_wf_testing.runtime import fault_hooks, simulation
from pynenc_wf_testing.runtime.clock import VirtualClock
from pynenc_wf_testing.runtime.determinism import ReplayFrontier
from pynenc_wf_testing.runtime.faults import ArmedFaults
from pynenc_wf_testing.runtime.history import Step
from pynenc_wf_testing.runtime.simulation import Simulation

RUNTIME = Path(simulation.__file__).parent
UPPER = ("pynenc_wf_testing.checks", "pynenc_wf_testing.env", "pynenc_wf_testing.tools")


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth (function-level and TYPE_CHECKING too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_the_runtime_imports_no_layer_above_it() -> None:
    offenders = {
        f"{path.name}: {name}"
        for path in RUNTIME.glob("*.py")
        for name in imported_modules(path)
        if name.startswith(UPPER) or name == "pynenc_wf_testing"
    }
    assert offenders == set()


def test_a_fault_plan_has_what_the_fault_hooks_ask_for() -> None:
    # mypy checks this statically where the environment hands its ArmedFaults to the
    # Simulation; here the runtime's view of it is exercised.
    for member in ("crash_for", "failure_for"):
        protocol = inspect.signature(getattr(fault_hooks.FaultHooks, member))
        plan = inspect.signature(getattr(ArmedFaults, member))
        assert list(protocol.parameters) == list(plan.parameters), member
    plan = ArmedFaults()
    hooks: fault_hooks.FaultHooks = plan
    point = plan.add_crash("after", "step#1")
    step = Step(1, "result", "step#1", None, None, "2024-01-01T00:00:00+00:00")
    assert hooks.crash_for(step, "before") is None
    fired = hooks.crash_for(step, "after")
    assert fired is point and fired.fired and fired.restart_after is None
    assert fired.snippet() == "crash_after('step#1')"


def test_a_simulation_without_a_fault_plan_consults_no_faults() -> None:
    sim = Simulation(seed=0, clock=VirtualClock(dt.datetime(2024, 1, 1, tzinfo=dt.UTC)),
                     max_steps=10)
    try:
        assert sim.faults is fault_hooks.NO_FAULTS
        assert not sim.faults.crash_points
        assert sim.faults.failure_for("any.task") is None
    finally:
        sim.close()


def test_the_replay_frontier_is_not_an_error_pynenc_would_record() -> None:
    assert not issubclass(ReplayFrontier, Exception)


def test_names_other_layers_use_on_a_simulation_still_work() -> None:
    with WorkflowEnv(seed=3) as env:
        env.use(bench_app.app)
        run = env.start(bench_app.chain, 0, 2)
        assert run.result == bench_app.expected_chain(0, 2)
        sim = env._require_sim()
        # shared containers, not copies
        assert sim.history is sim._recorder.history
        assert sim.ledger is sim._ledger.entries
        assert sim._positions[run.invocation_id]
        assert sim.label(run.invocation_id).startswith("chain#1 [")
        assert sim.current is None and not sim.in_simulated_invocation()
        assert sim.crashes == 0 and sim.blocked_report() == {}
        assert sim.is_stored(sim._app_of(run.invocation_id), run.invocation_id)
