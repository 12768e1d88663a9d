"""Every error the harness raises: when, and with which message."""

from __future__ import annotations

import re

import pytest

from pynenc_wf_testing import (
    DeadlockError,
    InvalidArgument,
    StepLimitExceeded,
    UnknownStepError,
    WorkflowEnv,
    WorkflowTestingError,
)
from tests.apps import flows, other
from tests.apps.guard import guard_app


def label(run_or_id: object, name: str) -> str:
    inv_id = getattr(run_or_id, "invocation_id", run_or_id)
    return f"{name} [{str(inv_id)[:8]}]"


PAUSE_REASON = (
    "its code returned but it is still RUNNING (pynenc swallows WorkflowPauseError and leaves "
    "the invocation RUNNING: nothing will resume it)"
)


# --------------------------------------------------------------------------- deadlock


def test_deadlock_on_a_child_left_running_by_workflow_pause() -> None:
    with WorkflowEnv(seed=0) as env:
        run = env.start(flows.waits_on_paused)
        with pytest.raises(DeadlockError) as info:
            run.result
        (child_exec,) = [e for e in env.ledger if e.name == "pause_me#1"]
        wf = label(run, "waits_on_paused#1")
        child = label(child_exec.invocation_id, "pause_me#1")
        assert info.value.blocked == {
            wf: f"waits for the result of {child} (status: running)",
            child: PAUSE_REASON,
        }
        assert str(info.value) == (
            "the simulation cannot make progress: nothing is runnable, no timer is pending, "
            f"and {wf} (status: running) is not finished.\n"
            "Blocked:\n"
            f"  - {wf} waits for the result of {child} (status: running)\n"
            f"  - {child} {PAUSE_REASON}\n"
            "Virtual time: 2030-01-01T00:00:00+00:00; seed: 0."
        )
        assert env.blocked() == info.value.blocked
        assert child_exec.outcome == "stalled"
        # Asking again raises again, at once.
        with pytest.raises(DeadlockError):
            run.result


def test_deadlock_on_a_plain_task_left_running() -> None:
    with WorkflowEnv(seed=4) as env:
        env.advance(hours=2)
        run = env.start(flows.pause_me)
        with pytest.raises(DeadlockError) as info:
            run.result
        me = label(run, "pause_me#1")
        assert info.value.blocked == {me: PAUSE_REASON}
        assert str(info.value).endswith(
            f"\nBlocked:\n  - {me} {PAUSE_REASON}\n"
            "Virtual time: 2030-01-01T02:00:00+00:00; seed: 4."
        )


def test_deadlock_does_not_stop_other_runs() -> None:
    with WorkflowEnv() as env:
        stuck = env.start(flows.waits_on_paused)
        fine = env.start(flows.napper, "x", 5, 2)
        assert fine.result == ["2030-01-01T00:00:05+00:00", "2030-01-01T00:00:10+00:00"]
        with pytest.raises(DeadlockError):
            stuck.result
        env.advance(days=1)  # idle and blocked: advancing is fine, nothing wakes up
        assert not stuck.done


def test_deadlock_is_raised_only_after_pending_timers() -> None:
    """A run blocked forever is reported only once every timer that could help has fired."""
    with WorkflowEnv() as env:
        sleeper = env.start(flows.nap, "late", 3600)
        stuck = env.start(flows.waits_on_paused)
        with pytest.raises(DeadlockError) as info:
            stuck.result
        assert sleeper.done
        assert "Virtual time: 2030-01-01T01:00:00+00:00" in str(info.value)


def test_blocked_is_empty_when_nothing_waits() -> None:
    with WorkflowEnv() as env:
        assert env.blocked() == {}
        env.start(flows.sequential, 1).result
        assert env.blocked() == {}


def test_waiting_on_a_task_of_an_unused_app_joins_the_simulation() -> None:
    """A task awaiting a task of an app no env uses yet: the call hands that app to the env
    (as use() would), so the awaited task runs in the simulation instead of being polled."""
    with guard_app(other.app), WorkflowEnv(max_steps=300) as env:
        run = env.start(flows.calls_unused_app)
        assert run.result == 1
        assert other.app in env.world.apps
        assert env.executions(other.echo) == 1


def test_awaiting_an_invocation_created_before_use_names_the_mistake() -> None:
    """An invocation routed to the app's own components before env.use(app) is unknown to
    the simulated store: awaiting it is an error at the ``.result`` call that says so, not
    pynenc's bare KeyError from deep inside."""
    with guard_app(other.app):
        early = other.echo(1)  # routed to the app's production components, never run
        with WorkflowEnv() as env:
            env.use(other.app)
            with pytest.raises(InvalidArgument, match=re.escape("created before env.use(app)")) as raised:
                early.result
            assert early.invocation_id in str(raised.value)
            assert "env.start(task, ...)" in str(raised.value)
            # The environment is still usable afterwards.
            assert env.start(other.echo, 2).result == 2


# --------------------------------------------------------------------------- step limit


def test_step_limit_on_endless_retries() -> None:
    with WorkflowEnv(max_steps=200) as env:
        run = env.start(flows.always_fails)
        with pytest.raises(StepLimitExceeded) as info:
            run.result
    assert str(info.value) == (
        "the simulation committed 200 history steps without finishing (limit max_steps=200, "
        "which bounds both scheduler slices and committed steps). If the run is meant to be "
        "this long, raise the limit: WorkflowEnv(max_steps=...) or @pytest.mark.wf(max_steps=...) "
        "(or --wf-max-steps / the wf_max_steps ini value). Otherwise look for a workflow that "
        "never ends (an endless loop of children, sleeps, retries or wf.root.uuid()/random() "
        "calls). Busiest invocations over the last 200 steps: "
        f"{label(run, 'always_fails#1')} (200). Last steps: "
        + ", ".join(["retry_status:always_fails#1", "retry:always_fails#1"] * 4)
        + ". Virtual time: 2030-01-01T00:00:00+00:00; seed: 0."
    )


def test_step_limit_on_a_workflow_spawning_children_forever() -> None:
    with WorkflowEnv(seed=2, max_steps=300) as env:
        run = env.start(flows.spawn_forever)
        with pytest.raises(
            StepLimitExceeded,
            match=r"the simulation (ran 300 scheduler|committed 300 history) steps without "
            r"finishing \(limit max_steps=300, which bounds both scheduler slices and committed "
            r"steps\)\. If the run is meant to be this long, raise the limit: "
            r"WorkflowEnv\(max_steps=\.\.\.\)",
        ) as info:
            run.result
        message = str(info.value)
        assert re.search(r"Last steps: (route:child#\d+, child#\d+, ){3}", message), message
        assert message.endswith("Virtual time: 2030-01-01T00:00:00+00:00; seed: 2.")
        assert env.executions(flows.child) > 100


def test_step_limit_is_raised_again_when_driven_again() -> None:
    with WorkflowEnv(max_steps=50) as env:
        run = env.start(flows.always_fails)
        with pytest.raises(StepLimitExceeded):
            run.result
        with pytest.raises(StepLimitExceeded):
            env.run_until_idle()


def test_a_long_but_finite_run_passes_with_a_raised_limit() -> None:
    with WorkflowEnv(max_steps=60) as env, pytest.raises(StepLimitExceeded):
        env.start(flows.running_sum, 40).result
    with WorkflowEnv(max_steps=1_000) as env:
        assert env.start(flows.running_sum, 40).result == sum(range(40))


@pytest.mark.parametrize("max_steps", [0, -5, 1.5, True, "10"])
def test_max_steps_must_be_a_positive_int(max_steps: object) -> None:
    with pytest.raises(
        InvalidArgument,
        match=re.escape(
            f"max_steps must be a positive int, got {max_steps!r}. "
            "The default is 100_000 scheduler steps."
        ),
    ):
        WorkflowEnv(max_steps=max_steps)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- bad arguments


@pytest.mark.parametrize("seed", [-1, 1.0, "1", True, None])
def test_seed_must_be_a_non_negative_int(seed: object) -> None:
    with pytest.raises(
        InvalidArgument,
        match=re.escape(
            f"seed must be a non-negative int, got {seed!r}. Pass e.g. WorkflowEnv(seed=7)."
        ),
    ):
        WorkflowEnv(seed=seed)  # type: ignore[arg-type]


def test_use_rejects_what_is_not_an_app() -> None:
    thing = object()
    with (
        WorkflowEnv() as env,
        pytest.raises(
            InvalidArgument,
            match=(
                "^"
                + re.escape(
                    f"use() expects a pynenc app (a Pynenc instance), got object: {thing!r}. "
                )
                + re.escape("Pass your module-level app, e.g. env.use(myshop.tasks.app).")
                + "$"
            ),
        ),
    ):
        env.use(thing)  # type: ignore[arg-type]


def _not_a_task(x: int) -> int:
    return x  # pragma: no cover


@pytest.mark.parametrize("thing", ["x", _not_a_task, flows.child.func])
def test_start_rejects_what_is_not_a_task(thing: object) -> None:
    with WorkflowEnv() as env:
        with pytest.raises(
            InvalidArgument,
            match="^"
            + re.escape(
                "start() expects a pynenc task (a function decorated with @app.task or "
                f"@app.workflow), got {type(thing).__name__}: {thing!r}."
            )
            + "$",
        ):
            env.start(thing, 1)  # type: ignore[arg-type]
        assert env.history == []


def test_executions_and_fail_reject_what_is_not_a_task() -> None:
    with WorkflowEnv() as env:
        with pytest.raises(InvalidArgument, match=re.escape("executions() expects a pynenc task")):
            env.executions(42)  # type: ignore[arg-type]
        with pytest.raises(InvalidArgument, match=re.escape("fail() expects a pynenc task")):
            env.fail("child")  # type: ignore[arg-type]
        for times in (0, -1, 1.5, True):
            with pytest.raises(
                InvalidArgument,
                match=f"^{re.escape(f'fail(times={times!r}): expected a positive int.')}$",
            ):
                env.fail(flows.child, times=times)  # type: ignore[arg-type]


def test_invalid_argument_is_also_a_type_error() -> None:
    with pytest.raises(TypeError):
        WorkflowEnv(seed=-1)


# --------------------------------------------------------------------------- crash points


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        (
            "",
            (
                "a step name cannot be empty. Use a task name such as 'charge_payment', "
                "'charge_payment#2', or a kind name such as 'uuid#1'."
            ),
        ),
        (
            0,
            (
                "step numbers start at 1, got 0. Use the numbers listed by run.history or "
                "wf_env.history."
            ),
        ),
        (
            True,
            (
                "cannot use True as a step. Pass a step name ('charge_payment#1'), a task object, "
                "a step number (int >= 1) or a predicate taking a Step."
            ),
        ),
        (
            None,
            (
                "cannot use None as a step. Pass a step name ('charge_payment#1'), a task object, "
                "a step number (int >= 1) or a predicate taking a Step."
            ),
        ),
        (
            1.5,
            (
                "cannot use a float (1.5) as a step. Pass a step name ('charge_payment#1'), a task "
                "object, a step number or a predicate taking a Step."
            ),
        ),
    ],
)
@pytest.mark.parametrize("phase", ["after", "before"])
def test_bad_crash_points_are_rejected_when_armed(phase: str, ref: object, message: str) -> None:
    with WorkflowEnv() as env, pytest.raises(InvalidArgument, match=f"^{re.escape(message)}$"):
        getattr(env, f"crash_{phase}")(ref)


SEQUENTIAL_2_STEPS = (
    "child#1, child#2, record:child#1, record:child#2, route:child#1, route:child#2, "
    "route:sequential#1, sequential#1"
)
UNKNOWN_HINT = "Check the name (a task's name is its function name; '#2' is its second call)."


@pytest.mark.parametrize("phase", ["after", "before"])
def test_unknown_crash_point_is_reported_when_the_run_ends(phase: str) -> None:
    with WorkflowEnv() as env:
        getattr(env, f"crash_{phase}")("chargee_payment")
        run = env.start(flows.sequential, 2)
        with pytest.raises(UnknownStepError) as info:
            run.result
        assert str(info.value) == (
            f"crash_{phase}('chargee_payment#1'): that step was never reached. "
            f"Steps seen: {SEQUENTIAL_2_STEPS}. {UNKNOWN_HINT}"
        )
        assert run.done
        assert env.crashes == 0


def test_unknown_crash_point_beyond_the_last_step_number() -> None:
    with WorkflowEnv() as env:
        env.crash_after(999)
        run = env.start(flows.sequential, 2)
        with pytest.raises(
            UnknownStepError,
            match=re.escape("crash_after(step 999): that step was never reached."),
        ):
            run.result


def test_check_faults_fired() -> None:
    with WorkflowEnv() as env:
        env.crash_after("child#2")
        env.crash_before("child#9")
        with pytest.raises(
            UnknownStepError,
            match=re.escape(
                "crash_after('child#2'), crash_before('child#9'): that step was never "
                f"reached. Steps seen: none. {UNKNOWN_HINT}"
            ),
        ):
            env.check_faults_fired()
        run = env.start(flows.fan_out, 2)
        env.run_until_idle()
        assert run.done
        assert env.crashes == 1
        with pytest.raises(UnknownStepError) as info:
            env.check_faults_fired()
        assert str(info.value).startswith(
            "crash_before('child#9'): that step was never reached. Steps seen: "
            "child#1, child#2, child#3, child#4, fan_out#1, route:child#1, route:child#2, "
            "route:child#3, route:child#4, route:fan_out#1."
        )
        # fan_out calls its children directly (not recorded): the replay after the crash
        # routed two new ones.
        assert env.executions(flows.child) == 4


def test_armed_crash_point_not_reached_yet_is_not_an_error_while_runs_are_pending() -> None:
    with WorkflowEnv() as env:
        env.crash_after("nap#1")
        quick = env.start(flows.child, 1)
        slow = env.start(flows.nap, "s", 60)
        env.run_until_idle()
        # The sleeper is still pending: the crash point may still fire, so no error yet.
        assert quick.result == 10
        assert slow.result[0] == "s"
        assert env.crashes == 1
        env.check_faults_fired()


def test_errors_escape_as_workflow_testing_errors() -> None:
    with WorkflowEnv() as env:
        run = env.start(flows.waits_on_paused)
        with pytest.raises(WorkflowTestingError):
            run.result


def test_log_level_is_validated_up_front() -> None:
    with pytest.raises(InvalidArgument, match="log_level"):
        WorkflowEnv(log_level="bogus")


# --------------------------------------------------------------------------- AssertionError


def assertion_note(run: object, name: str) -> str:
    return (
        f"raised by {label(run, name)} inside the simulation; an AssertionError in workflow "
        "code fails the test at once and is never retried"
    )


def test_assertion_error_in_a_task_fails_the_test_with_a_note() -> None:
    with WorkflowEnv() as env:
        run = env.start(flows.asserts, -1)
        with pytest.raises(AssertionError, match=r"^value must be positive, got -1\n") as info:
            env.run_until_idle()
        assert info.value.__notes__ == [assertion_note(run, "asserts#1")]
        assert env.executions(flows.asserts) == 1


def test_assertion_error_in_a_workflow_fails_the_test() -> None:
    with WorkflowEnv() as env:
        run = env.start(flows.workflow_asserting, -1)
        with pytest.raises(AssertionError, match=r"^child returned -10\n") as info:
            run.result
        assert info.value.__notes__ == [assertion_note(run, "workflow_asserting#1")]


def test_assertion_error_surfaces_while_driving_another_run() -> None:
    with WorkflowEnv() as env:
        env.start(flows.asserts, -1)
        slow = env.start(flows.nap, "later", 60)
        with pytest.raises(AssertionError, match=r"^value must be positive, got -1\n"):
            slow.result


def test_assertion_error_is_never_retried() -> None:
    with WorkflowEnv() as env:
        run = env.start(flows.asserts_with_retries, -1)
        with pytest.raises(AssertionError):
            run.result
        assert env.executions(flows.asserts_with_retries) == 1


def test_deadlock_when_awaiting_a_pynenc_invocation_directly() -> None:
    with WorkflowEnv() as env:
        env.use(flows.app)
        invocation = flows.waits_on_paused()
        with pytest.raises(DeadlockError) as info:
            invocation.result
        assert label(invocation.invocation_id, "waits_on_paused#1") in info.value.blocked
