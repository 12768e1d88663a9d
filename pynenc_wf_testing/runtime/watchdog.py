"""Hard bounds on one slice: a wall-time watchdog and a busy-wait detector on the virtual clock.

Both cost nothing per step while they do not fire:

- :class:`SliceWatchdog`: one daemon thread per process looks at the slice in progress every
  ``timeout / 4`` (real time). A slice it sees unchanged for ``timeout`` is interrupted: the
  thread samples the running greenlet's frame (``sys._current_frames``: a greenlet runs on the
  driving thread) and raises :class:`SliceInterrupt` in the driving thread
  (``PyThreadState_SetAsyncExc``), which surfaces at the next bytecode of the spinning code.
  The scheduler turns it into :class:`~pynenc_wf_testing.errors.SliceTimeoutError`. The
  driving thread pays a lock per slice; arming and disarming happen under it, and disarming
  cancels an exception not yet delivered, so the interrupt never lands outside its slice.
- :data:`CLOCK_READS`: the virtual clock's reads (``datetime.now()``, ``time.time()``) count
  up; every ``limit`` reads :meth:`ClockReads.check` asks the simulation whether anything
  happened since the previous check (another slice, a committed step). Nothing did: a busy
  wait on a clock that cannot move, raised as
  :class:`~pynenc_wf_testing.errors.BusyWaitError`.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

__all__ = [
    "CLOCK_READS",
    "DEFAULT_SLICE_TIMEOUT",
    "WATCHDOG",
    "ClockReads",
    "SliceInterrupt",
    "SliceWatchdog",
    "user_location",
]

_SET_ASYNC_EXC: Any = ctypes.pythonapi.PyThreadState_SetAsyncExc


def _raise_in(thread_id: int, exc: type[BaseException] | None) -> None:
    """Raise ``exc`` in the thread at its next bytecode (None: cancel a pending one)."""
    _SET_ASYNC_EXC(ctypes.c_ulong(thread_id), None if exc is None else ctypes.py_object(exc))

#: Real seconds one slice may run by default before the watchdog interrupts it.
DEFAULT_SLICE_TIMEOUT = 5.0


class SliceInterrupt(BaseException):
    """Raised by the watchdog inside a slice that ran too long (caught by the scheduler).

    A ``BaseException``: pynenc's ``except Exception`` must not record it as a task failure."""


def _is_harness_frame(frame: FrameType) -> bool:
    filename = frame.f_code.co_filename
    return (
        "freezegun" in filename
        or os.sep + "pynenc_wf_testing" + os.sep in filename
        or os.sep + "greenlet" + os.sep in filename
    )


def user_location(frame: FrameType | None) -> str:
    """``file:line in function`` of the innermost frame that is not the harness's or
    freezegun's (the code that spins or reads the clock)."""
    first = frame
    while frame is not None and _is_harness_frame(frame):
        frame = frame.f_back
    frame = frame or first
    if frame is None:
        return "an unknown place"
    return f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}"


class SliceWatchdog:
    """Interrupts a slice that runs longer than ``timeout`` seconds of real time."""

    __slots__ = (
        "_event",
        "_thread",
        "armed",
        "fired",
        "lock",
        "seq",
        "target",
        "timeout",
        "where",
    )

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seq = 0
        self.armed = False
        self.fired = False
        self.timeout: float = 0.0
        self.target = 0
        self.where = ""
        self._thread: threading.Thread | None = None
        self._event = threading.Event()

    def arm(self, timeout: float, target: int) -> None:
        """A slice starts on thread ``target`` (call right before switching into it).

        No lock (this runs once per slice): only :meth:`disarm` writes ``armed`` besides
        this, under the lock, and the watchdog thread ignores an unarmed watchdog. ``seq``
        moves before ``armed`` turns true, so the watchdog never sees the new slice under
        the previous one's count; ``fired`` is false before either."""
        self.seq += 1
        self.fired = False
        self.timeout = timeout
        self.target = target
        self.armed = True
        if self._thread is None:
            self._start()

    def disarm(self) -> bool:
        """The slice is over: returns True when the watchdog fired for it. After this, no
        interrupt of this slice can be delivered any more (the watchdog fires under the same
        lock)."""
        lock = self.lock
        lock.acquire()  # (not ``with``: half the cost, once per slice)
        try:
            self.armed = False
            fired = self.fired
            if fired:
                _raise_in(self.target, None)  # cancel it if still pending
            return fired
        finally:
            lock.release()

    def _start(self) -> None:
        thread = threading.Thread(target=self._watch, name="pynenc-wf-watchdog", daemon=True)
        self._thread = thread
        thread.start()

    def _watch(self) -> None:
        seen = -1
        since = 0.0
        clock = _real_monotonic
        while True:
            timeout = self.timeout or 1.0
            self._event.wait(min(max(timeout / 4, 0.005), 0.5))
            now = clock()
            with self.lock:
                if not self.armed or self.fired:
                    seen = -1
                    continue
                if self.seq != seen:
                    seen, since = self.seq, now
                    continue
                if now - since < self.timeout:
                    continue
                frame = sys._current_frames().get(self.target)
                self.where = user_location(frame)
                self.fired = True
                _raise_in(self.target, SliceInterrupt)


def _real_monotonic() -> float:
    return _MONOTONIC()


_MONOTONIC: Callable[[], float] = __import__("time").monotonic

#: The process's watchdog (one thread, started by the first armed slice).
WATCHDOG = SliceWatchdog()


class ClockReads:
    """Counts reads of the virtual clock; every ``limit`` reads calls ``on_limit``."""

    __slots__ = ("count", "limit", "on_limit")

    def __init__(self, limit: int) -> None:
        self.count = 0
        self.limit = limit
        self.on_limit: Callable[[FrameType], Any] | None = None

    def check(self) -> None:
        self.count = 0
        on_limit = self.on_limit
        if on_limit is not None:
            on_limit(sys._getframe(1))


#: Reads of the virtual clock between two busy-wait checks (a busy wait is reported after two
#: checks in the same slice without a committed step: 2 x 50,000 reads, ~0.1 s).
CLOCK_READS = ClockReads(50_000)
