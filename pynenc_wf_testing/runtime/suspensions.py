"""Evicted workflows: the engine's production suspension path, driven by the virtual clock.

A simulated workflow waits in one of two ways. Cached (the default, like a sticky worker's
cache in Temporal): its greenlet parks in the scheduler until a key is notified or its
deadline passes. Evicted: the engine suspends it exactly as in production
(``engine._suspend.suspend``: it records its wake-up condition, indexes its deadline and
awaited invocations in the atomic store, goes PAUSED and leaves), and a later execution
re-runs its body from the store. Which waits evict is :class:`EvictionPolicy`'s answer
(``WorkflowEnv(evict="every_wait")``, or one numbered wait: ``wf_env.evict_at_wait(n)``).

What wakes an evicted workflow is the engine's own code: signals, cancel and resume call
``_suspend.wake``; deadlines and awaited invocations go through the timer service's
``tick`` (the due-time index and the watch set), which this module calls at the exact
virtual instant a recorded deadline falls due and after each final status while some
workflow is suspended. Production runs the same tick every 0.25 s of real time.
"""

from __future__ import annotations

import datetime as dt
import heapq
from typing import TYPE_CHECKING

from pynenc_wf_testing.engine.host import suspension_of
from pynenc_wf_testing.errors import InvalidArgument
from pynenc_wf_testing.runtime.clock import VirtualClock, from_micros, to_micros

if TYPE_CHECKING:
    from pynenc.app import Pynenc

__all__ = ["EVICT_MODES", "EvictionPolicy", "Suspensions"]

#: ``WorkflowEnv(evict=...)`` values: ``"never"`` keeps every waiting workflow cached (its
#: greenlet parks), ``"every_wait"`` evicts it at each wait (every resume re-executes).
EVICT_MODES = ("never", "every_wait")


def check_evict_mode(mode: object) -> str:
    if mode not in EVICT_MODES:
        raise InvalidArgument(
            f"evict must be one of {', '.join(repr(m) for m in EVICT_MODES)}, got {mode!r}: "
            "'never' keeps waiting workflows cached (the default), 'every_wait' evicts them "
            "at each wait so every resume re-executes the body from the store."
        )
    return str(mode)


class EvictionPolicy:
    """Which waits evict: every one (``mode == "every_wait"``) or those whose global number
    (1, 2, ... in the order workflows reach a wait that can suspend) is in ``at_waits``."""

    __slots__ = ("at_waits", "evicted", "mode", "waits")

    def __init__(self, mode: str = "never") -> None:
        self.mode = check_evict_mode(mode)
        self.at_waits: set[int] = set()
        #: Waits reached so far in this world (those that could suspend).
        self.waits = 0
        #: Wait numbers that evicted because of ``at_waits`` (for unfired checks).
        self.evicted: list[int] = []

    def decide(self) -> bool:
        """Called once per wait that could suspend: evict this one?"""
        self.waits += 1
        if self.mode == "every_wait":
            return True
        if self.waits in self.at_waits:
            self.evicted.append(self.waits)
            return True
        return False


class Suspensions:
    """The simulator's side of suspended workflows: their deadlines on the virtual clock and
    the engine's tick after each final status."""

    __slots__ = ("_apps", "_clock", "_ids", "_seen_finals", "_seq", "_timers", "active")

    def __init__(self, clock: VirtualClock) -> None:
        self._clock = clock
        self._timers: list[tuple[int, int, str]] = []  # (virtual micros, seq, app id)
        self._seq = 0
        self._apps: dict[str, Pynenc] = {}
        self._seen_finals = 0
        self._ids: dict[str, Pynenc] = {}  # invocation id -> app, of every suspension seen
        #: Whether any workflow of this world suspended: until then no tick runs (a cached
        #: world pays nothing). Afterwards every final status costs one tick.
        self.active = False

    def suspended(self, app: Pynenc, invocation_id: str) -> bool:
        """An execution of ``invocation_id`` ended PAUSED: True if it is suspended (the
        engine recorded an unclaimed wake-up condition), with its deadline now on the
        virtual clock; False for other pauses (a halt)."""
        invocation = app.state_backend.get_invocation(invocation_id)
        if invocation.workflow is None:
            return False
        record = suspension_of(app, invocation.workflow)
        if record is None:
            return False
        self._apps.setdefault(app.app_id, app)
        self._ids[invocation_id] = app
        self.active = True
        deadline = record["deadline"]
        if deadline is not None:
            when = to_micros(dt.datetime.fromisoformat(deadline))
            self._seq += 1
            heapq.heappush(self._timers, (when, self._seq, app.app_id))
        return True

    def expect(self, app: Pynenc) -> None:
        """A workflow of ``app`` is about to suspend (the engine was told to evict)."""
        self._apps.setdefault(app.app_id, app)
        self.active = True

    def next_deadline(self) -> int | None:
        return self._timers[0][0] if self._timers else None

    def run_due(self, finals: int) -> None:
        """Run the engine's tick for what is due now: deadlines at this virtual instant,
        and the watch set when a status became final since the last call."""
        if not self.active:
            return
        now = self._clock.micros
        apps: list[str] = []
        while self._timers and self._timers[0][0] <= now:
            app_id = heapq.heappop(self._timers)[2]
            if app_id not in apps:
                apps.append(app_id)
        if finals != self._seen_finals:
            self._seen_finals = finals
            apps = sorted(self._apps) if not apps else sorted(set(apps) | set(self._apps))
        from pynenc_wf_testing.engine.atomic import atomic_store
        from pynenc_wf_testing.engine.host import timer_tick as tick

        for app_id in sorted(apps):
            app = self._apps[app_id]
            # The clock's own instant, as a timestamp computed like the engine's index entry
            # (``datetime.timestamp()``): a deadline at exactly this instant is due.
            tick(app, atomic_store(app), now=from_micros(now).timestamp())

    def blocked(self) -> dict[str, str]:
        """Invocation id -> what it waits for, of the workflows suspended now."""
        found: dict[str, str] = {}
        for inv_id in sorted(self._ids):
            reason = self.describe(self._ids[inv_id], inv_id)
            if reason is None:
                del self._ids[inv_id]  # woken since
            else:
                found[inv_id] = reason
        return found

    def describe(self, app: Pynenc, workflow_id: str) -> str | None:
        """What a suspended workflow waits for (diagnostics), or None."""
        invocation = app.state_backend.get_invocation(workflow_id)
        if invocation.workflow is None:
            return None
        record = suspension_of(app, invocation.workflow)
        if record is None:
            return None
        until = "no timeout" if record["deadline"] is None else f"until {record['deadline']}"
        return f"is suspended (evicted), waits for {record['what']} ({until})"
