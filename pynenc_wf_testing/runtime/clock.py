"""The virtual clock: the only time source inside a simulation.

Shaped after trio's ``MockClock``: it has a current time, moves forward only, and the scheduler
jumps it to the next deadline when every invocation is blocked on time (autojump). Time is kept
in integer microseconds so that repeated sleeps never accumulate float drift.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from pynenc_wf_testing.errors import InvalidArgument

__all__ = ["DEFAULT_START", "VirtualClock"]

#: The instant every simulation starts at unless told otherwise.
DEFAULT_START = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def to_micros(when: dt.datetime) -> int:
    delta = when - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(micros: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(microseconds=micros)


def normalize_start(start: dt.datetime | None) -> dt.datetime:
    if start is None:
        return DEFAULT_START
    if not isinstance(start, dt.datetime):
        raise InvalidArgument(
            f"start must be a datetime, got {type(start).__name__}: {start!r}. "
            "Pass e.g. datetime(2030, 1, 1, tzinfo=UTC)."
        )
    if start.tzinfo is None:
        raise InvalidArgument(
            f"start must be timezone-aware, got naive {start.isoformat()}. "
            "Pass e.g. datetime(2030, 1, 1, tzinfo=UTC)."
        )
    return start.astimezone(dt.UTC)


class VirtualClock:
    """Current virtual time of a simulation; moves only forward.

    ``on_move`` is called with the new time whenever it moves (the harness moves freezegun
    there, so ``datetime.now()`` and ``time.time()`` follow).
    """

    def __init__(
        self, start: dt.datetime | None = None, on_move: Callable[[dt.datetime], None] | None = None
    ) -> None:
        self._micros = to_micros(normalize_start(start))
        self._on_move = on_move

    @property
    def now(self) -> dt.datetime:
        """The current virtual instant, an aware UTC datetime."""
        return from_micros(self._micros)

    @property
    def micros(self) -> int:
        """The current virtual instant in microseconds since the Unix epoch."""
        return self._micros

    def timestamp(self) -> float:
        """The current virtual instant as ``time.time()`` would report it."""
        return self._micros / 1_000_000

    def move_to_micros(self, micros: int) -> None:
        """Move to ``micros`` (microseconds since the Unix epoch); never backwards."""
        if micros < self._micros:
            raise InvalidArgument(
                f"the virtual clock cannot go backwards: it is at {self.now.isoformat()} and "
                f"was asked to move to {from_micros(micros).isoformat()}. "
                "Time only moves forward in a simulation."
            )
        if micros == self._micros:
            return
        target = from_micros(micros)  # raises OverflowError past year 9999: nothing changed
        if self._on_move is not None:
            self._on_move(target)
        self._micros = micros

    def jump(self, seconds: float) -> None:
        """Move forward by ``seconds`` (trio's ``MockClock.jump``)."""
        if seconds < 0:
            raise InvalidArgument(
                f"cannot jump the clock by a negative amount ({seconds} s): time only moves forward."
            )
        self.move_to_micros(self._micros + round(seconds * 1_000_000))
