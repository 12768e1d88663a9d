"""Determinism checks: a re-executed workflow body must ask for the children it asked for before.

Each workflow body's child calls are kept in call order (its *positions*). When the body runs
again (after a crash, a retry, or a replay of a recorded history) each child it obtains is
compared with the one recorded at the same position; a different call is a
:class:`~pynenc_wf_testing.errors.NondeterminismError`. A replay of a recorded history also sets
a limit: a finished history must not grow, an unfinished one ends the replay at its frontier
(:class:`ReplayFrontier`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pynenc_wf_testing.errors import NondeterminismError
from pynenc_wf_testing.runtime.recorder import InvocationInfo, StepRecorder
from pynenc_wf_testing.runtime.scheduler import Scheduler, SimThread

__all__ = ["DeterminismGuard", "ReplayFrontier"]


class ReplayFrontier(BaseException):
    """The replayed code went past the end of an unfinished history: replay ends there.

    A ``BaseException``: pynenc must not record it as the workflow's failure.
    """


class DeterminismGuard:
    """Child-call positions of every workflow body, and the replay limits that bound them."""

    __slots__ = (
        "_recorder",
        "_scheduler",
        "positions",
        "replay_calls",
        "replay_limits",
        "replay_obtained",
        "seed",
    )

    def __init__(self, *, seed: int, recorder: StepRecorder, scheduler: Scheduler) -> None:
        self.seed = seed
        self._recorder = recorder
        self._scheduler = scheduler
        # What each workflow body obtained, in call order (workflow id -> child invocation
        # ids), to catch a re-execution that asks for something else. (A child's logical call,
        # the k-th call of its task in one execution of the body, is on its InvocationInfo.)
        self.positions: dict[str, list[str]] = {}
        # Replays of recorded histories: workflow id -> (recorded child calls, finished?),
        # how many child calls the replayed code made so far, and the recorded call ids.
        self.replay_limits: dict[str, tuple[int, bool]] = {}
        self.replay_obtained: dict[str, int] = {}
        self.replay_calls: dict[str, list[str]] = {}

    def execute_task_hook(
        self, original: Callable[..., Any], executor: Any, task: Any, args: Any, kwargs: Any
    ) -> Any:
        """Around pynenc's ``execute_task``: a child replayed from the store (not routed now)
        is counted here; a routed one was counted when it was routed."""
        scheduler = self._scheduler
        thread = scheduler.current if scheduler.in_simulated_invocation() else None
        if thread is None:
            return original(executor, task, *args, **kwargs)
        routed_before = thread.routed
        thread.in_execute_task += 1
        try:
            invocation = original(executor, task, *args, **kwargs)
        finally:
            thread.in_execute_task -= 1
        if thread.routed == routed_before:
            # Replayed from the store: the child was counted when it was first routed.
            self.child_obtained(thread, invocation)
        return invocation

    def child_obtained(self, thread: SimThread, child: Any) -> None:
        """``thread``'s workflow body obtained ``child``: name its logical call and check it
        against the recorded position (aborts the invocation on a divergence)."""
        parent_wf = thread.invocation.workflow
        if parent_wf is None:
            return
        wf_id = str(parent_wf.workflow_id)
        child_id = str(child.invocation_id)
        info = self._recorder.describe_new(child)
        base = child.call.task.task_id.func_name
        count = thread.child_counts.get(base, 0) + 1
        thread.child_counts[base] = count
        if info.logical is None:
            info.logical = (wf_id, base, count)
        seq = thread.child_seq = thread.child_seq + 1
        obtained = self.positions.get(wf_id)
        if obtained is None:
            obtained = self.positions[wf_id] = []
        recorded = obtained[seq - 1] if seq <= len(obtained) else None
        limit = self.replay_limits.get(wf_id)
        if limit is not None:
            self.replay_obtained[wf_id] = max(self.replay_obtained.get(wf_id, 0), seq)
            if recorded is None:
                if limit[1]:
                    self._scheduler.abort(
                        NondeterminismError(
                            f"workflow {self._recorder.label(thread.invocation_id)} diverged "
                            f"from its recorded history at child call #{thread.child_seq}: the "
                            f"history ends after {limit[0]} child calls, but the replayed code "
                            f"now calls {info.name.split('#')[0]}({self._args_of(child)})."
                        )
                    )
                self._scheduler.abort(ReplayFrontier())
        if recorded is None:
            obtained.append(child_id)
            return
        if limit is not None:
            # A replayed history: its recorded call ids are the reference (a history whose
            # children's arguments were edited still maps the data key to the same child).
            if self.replay_calls[wf_id][seq - 1] == str(child.call.call_id):
                return
        elif recorded == child_id or self._call_of(thread.app, recorded) == str(
            child.call.call_id
        ):
            # The same child, or another invocation of the same call (pynenc's
            # route-before-record window: a duplicate the ledger reports): no divergence.
            return
        try:
            recorded_child = thread.app.state_backend.get_invocation(recorded)
        except Exception:  # pragma: no cover - recorded children are stored before recording
            recorded_child = None
        self._scheduler.abort(self._divergence(thread, seq, recorded_child, child, info))

    def _divergence(
        self, thread: SimThread, seq: int, recorded_child: Any, child: Any, info: InvocationInfo,
    ) -> NondeterminismError:
        old_args = self._args_of(recorded_child) if recorded_child is not None else "?"
        old_task = (
            recorded_child.call.task.task_id.func_name if recorded_child is not None else "?"
        )
        new_args = self._args_of(child)
        # A replay of a recorded history diverges whatever the seed: naming one would send
        # the reader after the wrong cause.
        wf_id = str(thread.invocation.workflow.workflow_id)
        seed = "" if wf_id in self.replay_limits else f" Seed: {self.seed}."
        return NondeterminismError(
            f"workflow {self._recorder.label(thread.invocation_id)} diverged from its recorded "
            f"history at child call #{seq}: the history recorded "
            f"{old_task}({old_args}) but the replayed code now calls "
            f"{info.name.split('#')[0]}({new_args}). Workflow code must make the same calls when it "
            "replays: take ids, random numbers and times from wf.root.uuid()/random()/"
            "utc_now() (or record them in a child task), never from uuid4(), random or "
            f"datetime.now() in the workflow body.{seed}"
        )

    @staticmethod
    def _call_of(app: Any, invocation_id: str) -> str | None:
        try:
            return str(app.state_backend.get_invocation(invocation_id).call.call_id)
        except Exception:  # pragma: no cover - recorded children are stored before recording
            return None

    @staticmethod
    def _args_of(invocation: Any) -> str:
        try:
            items = sorted(invocation.call.serialized_arguments.items())
        except Exception:  # pragma: no cover - arguments already validated by pynenc
            return "?"
        return ", ".join(f"{k}={v}" for k, v in items)
