"""External events as data: what reaches a running workflow from outside its worker.

``Signal(name, payload)``, ``Cancel(reason)``, ``Resume()`` and ``Advance(timedelta)`` are
what a client or the world does to a workflow while it runs. An :class:`EventSchedule` says
at which step boundaries they arrive: right after a step commits, before the invocation that
committed it goes on (``wf_env.deliver_after(step, event)`` arms one by hand). The
interleaving check (:mod:`pynenc_wf_testing.checks.interleavings`) builds schedules, the
Hypothesis strategy :func:`pynenc_wf_testing.checks.strategies.event_schedules` generates and
shrinks them, and reports print them as runnable ``wf_env.deliver_after(...)`` lines.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

from pynenc_wf_testing.errors import InvalidArgument
from pynenc_wf_testing.runtime.history import Step

if TYPE_CHECKING:
    from pynenc_wf_testing.runtime.world import WorldHost

__all__ = [
    "Advance",
    "Cancel",
    "Event",
    "EventSchedule",
    "EventTarget",
    "Resume",
    "ScheduledEvent",
    "Signal",
    "check_event",
]


class EventTarget(Protocol):
    """What delivering an event needs of the environment (a ``WorkflowEnv`` is one)."""

    @property
    def world(self) -> WorldHost: ...

    def signal(self, run: Any, name: str, payload: Any = None) -> int: ...

    def cancel(self, run: Any, reason: str = "cancelled") -> None: ...

    def resume(self, run: Any) -> None: ...


@dataclass(frozen=True)
class Signal:
    """Signal ``name`` with ``payload`` reaches the workflow (``wf_env.signal``)."""

    name: str
    payload: Any = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InvalidArgument(
                f"Signal(name=...) must be a non-empty string, got {self.name!r}. "
                "Pass the name the workflow waits for, e.g. Signal('approved', {'by': 'ann'})."
            )

    def snippet(self) -> str:
        if self.payload is None:
            return f"Signal({self.name!r})"
        return f"Signal({self.name!r}, {self.payload!r})"

    def deliver(self, env: EventTarget, workflow_id: str) -> None:
        env.signal(workflow_id, self.name, self.payload)


@dataclass(frozen=True)
class Cancel:
    """The workflow is cancelled (``wf_env.cancel``): the durable operation it waits in, or
    its next one, raises ``WorkflowCancelled``."""

    reason: str = "cancelled"

    def __post_init__(self) -> None:
        if not isinstance(self.reason, str):
            raise InvalidArgument(f"Cancel(reason=...) must be a string, got {self.reason!r}.")

    def snippet(self) -> str:
        return "Cancel()" if self.reason == "cancelled" else f"Cancel({self.reason!r})"

    def deliver(self, env: EventTarget, workflow_id: str) -> None:
        env.cancel(workflow_id, self.reason)


@dataclass(frozen=True)
class Resume:
    """A halted workflow is resumed (``wf_env.resume``); a running one is left as it is."""

    def snippet(self) -> str:
        return "Resume()"

    def deliver(self, env: EventTarget, workflow_id: str) -> None:
        env.resume(workflow_id)


@dataclass(frozen=True)
class Advance:
    """Virtual time jumps forward by ``delta`` at the boundary, with nothing running on the
    way (the worker stalls that long there): timers that fall due in between fire when the
    world runs on, so a signal delivered after an ``Advance`` at the same boundary arrives
    just as those timers fire."""

    delta: dt.timedelta

    def __post_init__(self) -> None:
        if not isinstance(self.delta, dt.timedelta) or self.delta <= dt.timedelta(0):
            raise InvalidArgument(
                f"Advance(delta) needs a positive datetime.timedelta, got {self.delta!r}. "
                "Pass e.g. Advance(timedelta(hours=1))."
            )

    def snippet(self) -> str:
        seconds = self.delta.total_seconds()
        shown = f"{int(seconds)}" if seconds == int(seconds) else f"{seconds!r}"
        return f"Advance(timedelta(seconds={shown}))"

    def deliver(self, env: EventTarget, workflow_id: str) -> None:
        sim = env.world.sim
        sim.jump_clock(sim.clock.micros + self.delta // dt.timedelta(microseconds=1))


#: One external event.
Event: TypeAlias = Signal | Cancel | Resume | Advance

_EVENT_TYPES = (Signal, Cancel, Resume, Advance)


def check_event(event: object, what: str) -> Event:
    """``event`` if it is one of the event types, else a clear :class:`InvalidArgument`."""
    if isinstance(event, _EVENT_TYPES):
        return event
    if isinstance(event, type) and event in _EVENT_TYPES:
        example = {"Signal": "Signal('approved')", "Advance": "Advance(timedelta(hours=1))"}
        shown = example.get(event.__name__, f"{event.__name__}()")
        raise InvalidArgument(
            f"{what}: got the class {event.__name__}, not an event. Pass an instance, e.g. "
            f"{shown}."
        )
    raise InvalidArgument(
        f"{what}: {event!r} ({type(event).__name__}) is not an event. Events are "
        "Signal(name, payload), Cancel(reason), Resume() and Advance(timedelta), from "
        "pynenc_wf_testing."
    )


def workflow_of(world: WorldHost, step: Step) -> str:
    """The top-level workflow a step belongs to: where an event delivered after it goes."""
    sim = world.sim
    workflow = step.workflow_id or step.invocation_id
    if workflow is None:
        raise InvalidArgument(
            f"step {step.name} belongs to no workflow: an event cannot be delivered to it."
        )
    parents = sim.workflow_parent
    while (parent := parents.get(workflow)) is not None:
        workflow = parent
    return workflow


def deliver(env: EventTarget, event: Event, step: Step, log: list[str] | None) -> None:
    """Deliver ``event`` to the workflow of ``step`` (just committed). An event the engine
    refuses because the workflow has finished is noted in ``log``, not raised: in a real
    system it can arrive too late as well."""
    from pynenc_wf_testing.engine import WorkflowEngineError, WorkflowFinished
    from pynenc_wf_testing.errors import UnserializableValueError

    workflow_id = workflow_of(env.world, step)
    at = f"{event.snippet()} after {step.name} (step {step.number})"
    try:
        event.deliver(env, workflow_id)
    except WorkflowFinished:
        if log is not None:
            log.append(f"{at}: refused, the workflow had finished")
        return
    except (WorkflowEngineError, UnserializableValueError) as error:
        # Not a race: the event itself cannot be delivered (an app without the engine, a
        # payload the serializer loses, ...).
        raise InvalidArgument(
            f"{at} could not be delivered: {type(error).__name__}: {error}"
        ) from None
    if log is not None:
        log.append(at)


@dataclass(frozen=True)
class ScheduledEvent:
    """``event`` delivered right after a step commits: the ``occurrence``-th step named
    ``name``, or, without a name, global step number ``step``."""

    step: int
    event: Event
    name: str | None = None
    occurrence: int = 1

    def __post_init__(self) -> None:
        if isinstance(self.step, bool) or not isinstance(self.step, int) or self.step < 1:
            raise InvalidArgument(f"ScheduledEvent.step must be an int >= 1, got {self.step!r}.")
        check_event(self.event, "ScheduledEvent")

    def ref(self) -> str | int:
        """How ``wf_env.deliver_after`` names the step: its name where that is its first
        occurrence, else its number."""
        return self.name if self.name is not None and self.occurrence == 1 else self.step

    def matcher(self) -> Callable[[Step], bool]:
        if self.name is None:
            number = self.step
            return lambda step: step.number == number
        name, wanted = self.name, self.occurrence
        seen = [0]

        def match(step: Step) -> bool:
            # Called once per committed step until it fires: counts the name's occurrences.
            if step.name != name:
                return False
            seen[0] += 1
            return seen[0] == wanted

        return match

    def snippet(self, env_name: str = "wf_env") -> str:
        return f"{env_name}.deliver_after({self.ref()!r}, {self.event.snippet()})"


@dataclass(frozen=True)
class EventSchedule:
    """The external events of one run, in delivery order (events at the same step arrive in
    the order listed)."""

    events: tuple[ScheduledEvent, ...] = ()

    def apply(
        self, env: EventTarget, *, optional: bool = False, log: list[str] | None = None
    ) -> None:
        """Arm every event on ``env``; ``log`` collects what each delivery did. With
        ``optional=True`` an event whose step the run never reaches is not an error."""
        for scheduled in self.events:
            event = scheduled.event

            def deliver_it(step: Step, event: Event = event) -> None:
                deliver(env, event, step, log)

            ref = scheduled.ref()
            env.world.faults.add_interrupt(
                scheduled.matcher() if scheduled.name is not None else ref,
                deliver_it,
                what=event.snippet(),
                description=repr(ref),
                optional=optional,
            )

    def event_types(self) -> list[str]:
        """The names of the event classes used, for an import line."""
        return sorted({type(s.event).__name__ for s in self.events})

    def snippet_lines(self, env_name: str = "wf_env") -> list[str]:
        return [s.snippet(env_name) for s in self.events]

    def __len__(self) -> int:
        return len(self.events)

    def __str__(self) -> str:
        if not self.events:
            return "no events"
        return "; ".join(self.snippet_lines("env"))
