"""Mocks of an environment: ``wf_env.mock(task, ...)`` and ``wf_env.calls(task)``.

A mock replaces a task (or a child workflow, with its whole subtree: its body never runs, so
its children are never called) for the rest of the environment. The swap happens in the
runtime, where the simulator runs the invocation: pynenc still writes RUNNING, the result or
the exception, and its retries; only the call of the task function is replaced (see
:class:`~pynenc_wf_testing.runtime.faults.ArmedMock`). The user's module is never patched.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pynenc_wf_testing.env._faults import EnvFaults, check_task
from pynenc_wf_testing.errors import InvalidArgument, UnusedMockError
from pynenc_wf_testing.runtime.faults import _UNSET, ArmedMock, AttemptRange

if TYPE_CHECKING:
    from pynenc.task import Task

__all__ = ["EnvMocks", "TaskCall"]

_RANGE = re.compile(r"^\s*(\d+)\s*(?:(-)\s*(\d+)\s*|(\+)\s*)?$")


@dataclass(frozen=True)
class TaskCall:
    """One call of a task in the environment (``wf_env.calls(task)``), mocked or not.

    ``kwargs``: its arguments by parameter name (pynenc binds every argument, positional or
    not, to its name); ``args``: the same values in the order of the function's parameters.
    ``executions``: how many times it ran (pynenc retries and re-executions after crashes
    included); ``mocked``: ``wf_env.mock`` ran instead of the task.
    """

    kwargs: dict[str, Any]
    invocation_id: str
    name: str
    executions: int = 1
    mocked: bool = False
    args: tuple[Any, ...] = field(default=())


def _parse_attempt(key: object) -> AttemptRange:
    if isinstance(key, bool):
        raise InvalidArgument(f"per_attempt key {key!r}: expected an attempt number or range.")
    if isinstance(key, int):
        if key < 0:
            raise InvalidArgument(f"per_attempt key {key}: attempts start at 0.")
        return key, key
    if isinstance(key, range):
        if key.step != 1 or len(key) == 0:
            raise InvalidArgument(f"per_attempt key {key!r}: use a non-empty range with step 1.")
        return key.start, key.stop - 1
    if isinstance(key, str):
        match = _RANGE.match(key)
        if match:
            first = int(match.group(1))
            if match.group(4):
                return first, None
            last = int(match.group(3)) if match.group(2) else first
            if last < first:
                raise InvalidArgument(
                    f"per_attempt key {key!r}: the range ends before it starts."
                )
            return first, last
    raise InvalidArgument(
        f"per_attempt key {key!r}: expected an attempt number (0, '0'), an inclusive range "
        "('1-2', range(1, 3)) or an open one ('3+': attempt 3 and every later one)."
    )


def _is_exception(outcome: object) -> bool:
    return isinstance(outcome, BaseException) or (
        isinstance(outcome, type) and issubclass(outcome, BaseException)
    )


def _check_result_round_trip(task: Task[Any, Any], name: str, where: str, value: Any) -> None:
    """A mocked result is stored through the app's serializer like a real one: a value that
    does not come back (a lambda comes back as None) would reach the caller changed."""
    from pynenc_wf_testing.runtime.serialization import is_plain, round_trip_problem

    if is_plain(value):
        return
    problem = round_trip_problem(task.app, value, where)
    if problem is not None:
        raise InvalidArgument(
            f"mock({name}, {where}=...): the value does not survive pynenc's serializer "
            f"({type(task.app.serializer).__name__}), which stores every result: {problem}. "
            "Return plain data (str, int, float, bool, None, lists, str-keyed dicts, "
            "dataclasses of those), or use side_effect= to compute it per call."
        )


def _check_side_effect_signature(task: Task[Any, Any], side_effect: Callable[..., Any]) -> None:
    """``side_effect`` is called with the task's arguments by parameter name: refuse at the
    call one that cannot take them (else every mocked execution fails with a TypeError)."""
    import inspect

    try:
        accepts = inspect.signature(side_effect)
        params = inspect.signature(task.func).parameters
    except (TypeError, ValueError):
        return  # (a builtin without a signature: nothing to check)
    names = [
        p.name for p in params.values()
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    try:
        accepts.bind(**dict.fromkeys(names))
    except TypeError as error:
        raise InvalidArgument(
            f"mock({task.task_id.func_name}, side_effect={getattr(side_effect, '__name__', side_effect)!r}): "
            f"it is called with the task's arguments by name ({', '.join(names) or 'none'}) "
            f"and cannot take them: {error}. Give it the task's parameters, e.g. "
            f"side_effect=lambda {', '.join(names) or '**kwargs'}: ...; or **kwargs."
        ) from None


def _parse_per_attempt(per_attempt: object) -> tuple[tuple[AttemptRange, Any], ...]:
    if not isinstance(per_attempt, Mapping) or not per_attempt:
        raise InvalidArgument(
            f"per_attempt must be a non-empty dict of attempt -> outcome, got {per_attempt!r}. "
            "E.g. per_attempt={'0': TimeoutError('x'), '1-2': TimeoutError('y'), '3': 'ok'}."
        )
    parsed = [(_parse_attempt(key), outcome) for key, outcome in per_attempt.items()]
    ordered = sorted(parsed, key=lambda item: item[0][0])
    for (a, b), (c, _d) in zip(
        [r for r, _ in ordered], [r for r, _ in ordered[1:]], strict=False
    ):
        if b is None or c <= b:
            raise InvalidArgument(
                f"per_attempt: attempts overlap ({a}{'+' if b is None else f'-{b}'} and "
                f"{c}...); give each attempt one outcome."
            )
    return tuple(ordered)


class EnvMocks(EnvFaults):
    """The mock part of :class:`WorkflowEnv`."""

    def mock(
        self,
        task: Task[Any, Any],
        *,
        returns: Any = _UNSET,
        raises: BaseException | type[BaseException] | None = None,
        side_effect: Callable[..., Any] | None = None,
        per_attempt: Mapping[int | str | range, Any] | None = None,
        delay: dt.timedelta | None = None,
    ) -> None:
        """Replace ``task`` (a task or a child workflow, with its whole subtree) for this
        environment: its executions run the mock instead of the function, through pynenc
        (statuses, result or exception, retries), and appear in the ledger
        (``Execution.mocked``) and history as any other.

        - ``returns=value``: each call returns ``value``;
        - ``raises=exc``: each call raises ``exc`` (an instance, or a class instantiated
          with a message);
        - ``side_effect=fn``: each call returns ``fn(**arguments)`` (the task's arguments by
          parameter name; what ``fn`` raises is raised);
        - ``per_attempt={attempt or range: outcome}``: the outcome of each attempt (an
          exception instance or class is raised, anything else returned); keys ``0``,
          ``"0"``, ``"1-2"`` (inclusive), ``range(1, 3)``, ``"3+"`` (3 and later). Attempts
          not listed fall back to ``returns``/``raises``/``side_effect`` when given; else
          the execution fails with ``InvalidArgument``. Attempt ``n`` is the ``n``-th try
          (from 0) of the task in the run, in start order: a try is one pynenc execution
          attempt (a new invocation, including each engine attempt of
          ``execute_task_with_retry``, or a pynenc retry of it); a re-execution after a
          worker crash repeats its try and gets the same outcome;
        - ``delay=timedelta``: the mock completes that long (virtual time) after it starts;
          the invocation waits on the virtual clock, as ``time.sleep`` in a task does.

        Nothing given: each call returns ``None``. A mock never called is an error at the end
        of the test (:class:`UnusedMockError`); mocks are removed when the environment
        closes. Mocking the same task again replaces its mock.
        """
        self._require_open("mock()")
        checked = check_task(task, "mock()")
        outcomes = [
            name
            for name, given in (
                ("returns", returns is not _UNSET),
                ("raises", raises is not None),
                ("side_effect", side_effect is not None),
            )
            if given
        ]
        if len(outcomes) > 1:
            raise InvalidArgument(
                f"mock({checked.task_id.func_name}): {' and '.join(outcomes)} conflict; give "
                "one of returns=, raises=, side_effect= (per_attempt= for outcomes that vary "
                "by attempt, with at most one of them as the default)."
            )
        if raises is not None and not (
            isinstance(raises, BaseException)
            or (isinstance(raises, type) and issubclass(raises, BaseException))
        ):
            raise InvalidArgument(
                f"mock(raises={raises!r}): expected an exception instance or class."
            )
        if side_effect is not None and not callable(side_effect):
            raise InvalidArgument(
                f"mock(side_effect={side_effect!r}): expected a callable taking the task's "
                "arguments (its return value is the result)."
            )
        seconds = 0.0
        if delay is not None:
            if not isinstance(delay, dt.timedelta) or delay < dt.timedelta(0):
                raise InvalidArgument(
                    f"mock(delay={delay!r}): expected a non-negative datetime.timedelta, "
                    "e.g. delay=timedelta(minutes=5)."
                )
            seconds = delay.total_seconds()
        attempts = _parse_per_attempt(per_attempt) if per_attempt is not None else ()
        self._check_used_app(checked)
        self._require_sim()
        if side_effect is not None:
            _check_side_effect_signature(checked, side_effect)
        if getattr(self._host.backend, "check_serialization", True):
            name = checked.task_id.func_name
            if returns is not _UNSET:
                _check_result_round_trip(checked, name, "returns", returns)
            for (first, last), outcome in attempts:
                if not _is_exception(outcome):
                    where = f"per_attempt[{first}{'+' if last is None else f'-{last}'}]"
                    _check_result_round_trip(checked, name, where, outcome)
        self._host.arm_mock(
            ArmedMock(
                checked.task_id.key,
                checked.task_id.func_name,
                returns=returns,
                raises=raises,
                side_effect=side_effect,
                per_attempt=attempts,
                delay=seconds,
            )
        )

    def _check_used_app(self, task: Task[Any, Any]) -> None:
        apps = self._host.apps
        app = task.app
        if not any(used is app for used in apps):
            used_ids = ", ".join(repr(a.app_id) for a in apps) or "none"
            raise InvalidArgument(
                f"mock({task.task_id.func_name}): its app {app.app_id!r} is not used by this "
                f"environment (apps used: {used_ids}). Call wf_env.use(app) first, or mock a "
                "task of a used app."
            )
        if task.task_id not in app.tasks:
            raise InvalidArgument(
                f"mock({task.task_id.func_name}): not a registered task of app "
                f"{app.app_id!r}."
            )

    def calls(self, task: Task[Any, Any]) -> list[TaskCall]:
        """Every call of ``task`` in the current run, mocked or not, in start order: one
        :class:`TaskCall` per invocation (its arguments, how many times it ran)."""
        checked = check_task(task, "calls()")
        key = checked.task_id.key
        by_invocation: dict[str, list[Any]] = {}
        for execution in self._require_sim().ledger:
            if execution.task == key:
                by_invocation.setdefault(execution.invocation_id, []).append(execution)
        import inspect

        params = list(inspect.signature(checked.func).parameters)
        result = []
        for invocation_id, runs in by_invocation.items():
            invocation: Any = checked.app.state_backend.get_invocation(invocation_id)
            kwargs = dict(invocation.arguments.kwargs)
            result.append(
                TaskCall(
                    kwargs=kwargs,
                    invocation_id=invocation_id,
                    name=runs[0].name,
                    executions=len(runs),
                    mocked=any(run.mocked for run in runs),
                    args=tuple(kwargs[p] for p in params if p in kwargs),
                )
            )
        return result

    def unused_mocks(self) -> list[str]:
        """The names of mocked tasks never called in any world of this environment."""
        return [m.task_name for m in self._host.mocks.values() if m.calls == 0]

    def check_faults_fired(self) -> None:
        """Raise :class:`UnknownStepError` for any armed crash point that never fired, then
        :class:`UnusedMockError` for any mock never called."""
        super().check_faults_fired()
        unused = self.unused_mocks()
        if unused:
            raise UnusedMockError(
                f"wf_env.mock({', '.join(unused)}) was never called: the test did not run "
                "what it mocked. Check that the workflow calls that task (a mocked parent "
                "workflow never runs its children), or remove the mock."
            )
