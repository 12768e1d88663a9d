"""Fire times of a daily cron expression by arithmetic, with croniter's exact answers.

A cron expression whose day-of-month, month and day-of-week fields are ``*`` and whose
minute and hour fields are plain (digits, ``*``, ``,``, ``-``, ``/``) fires at the same
minutes of every day: ``* * * * *``, ``*/5 * * * *``, ``0 9-17 * * *``, ``0 0 * * *``. On UTC
instants with whole seconds (what the virtual clock gives at a fire time) its next and previous
fire are a bisect in the day's sorted fire times, instead of croniter's dateutil arithmetic
(about a quarter of a simulated firing). The fields come from croniter's own parser
(``croniter.expand``); anything else (other zones, naive instants, sub-second instants, other
fields, ``L``/``W``/``#``/``H``/``R``, seconds) answers ``None`` and the caller asks croniter.
``tests/test_cron_steps.py`` compares every answer with croniter's.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_right
from typing import Any

__all__ = ["DailyCron", "cron_condition_satisfied", "daily_cron", "utc_whole_micros"]

DAY = 86_400_000_000
_MINUTE = 60_000_000
_SECOND = 1_000_000
_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
_PLAIN = frozenset("0123456789*,-/ ")
_CACHE_SIZE = 1024


class DailyCron:
    """The fire times of one daily cron expression (microseconds into a UTC day)."""

    __slots__ = ("_fires", "expression")

    def __init__(self, expression: str, fires: tuple[int, ...]) -> None:
        if not fires or list(fires) != sorted(set(fires)):
            raise ValueError(f"fire times must be sorted, distinct and not empty: {fires!r}")
        self.expression = expression
        self._fires = fires

    def next_after(self, micros: int) -> int:
        """The first fire strictly after ``micros`` (croniter's ``get_next``)."""
        day, into = divmod(micros, DAY)
        fires = self._fires
        i = bisect_right(fires, into)
        if i < len(fires):
            return day * DAY + fires[i]
        return (day + 1) * DAY + fires[0]

    def at_or_before(self, micros: int) -> int:
        """The last fire at or before ``micros``."""
        day, into = divmod(micros, DAY)
        fires = self._fires
        i = bisect_right(fires, into)
        if i:
            return day * DAY + fires[i - 1]
        return (day - 1) * DAY + fires[-1]


_CACHE: dict[str, DailyCron | None] = {}


def daily_cron(expression: object) -> DailyCron | None:
    """The arithmetic stepper of ``expression``, or ``None`` when croniter must answer."""
    # (attribute and `in` checks, not type()/.get(): no call per firing for a known one)
    if expression.__class__ is not str:
        return None
    if expression in _CACHE:
        return _CACHE[expression]
    assert isinstance(expression, str)
    stepper = _build(expression)
    if len(_CACHE) >= _CACHE_SIZE:
        _CACHE.clear()
    _CACHE[expression] = stepper
    return stepper


def _build(expression: str) -> DailyCron | None:
    if not _PLAIN.issuperset(expression) or len(expression.split()) != 5:
        return None
    from croniter import croniter

    try:
        expanded, nth_weekday = croniter.expand(expression)
    except Exception:  # (croniter's own path raises its own error to the caller)
        return None
    if nth_weekday or len(expanded) != 5:
        return None
    minutes, hours, days, months, weekdays = expanded
    if days != ["*"] or months != ["*"] or weekdays != ["*"]:
        return None
    minute_values = range(60) if minutes == ["*"] else minutes
    hour_values = range(24) if hours == ["*"] else hours
    if not all(type(v) is int for v in (*minute_values, *hour_values)):
        return None
    fires = sorted({h * 3600 * _SECOND + m * _MINUTE for h in hour_values for m in minute_values})
    return DailyCron(expression, tuple(fires))


def utc_whole_micros(when: Any) -> int | None:
    """``when`` in microseconds since the epoch if it is an aware UTC datetime with no
    sub-second part (exactly representable in croniter's float timestamps), else ``None``."""
    if when.tzinfo is not dt.UTC or when.microsecond:
        return None
    days: int = when.toordinal() - _EPOCH_ORDINAL
    seconds: int = ((days * 24 + when.hour) * 60 + when.minute) * 60 + when.second
    return seconds * _SECOND


def cron_condition_satisfied(condition: Any, at: Any, last: Any) -> bool | None:
    """pynenc's ``CronCondition._is_satisfied_by`` of a context at ``at`` with last execution
    ``last``, by arithmetic; ``None`` when the expression or the instants need croniter.

    pynenc: not within ``min_interval_seconds`` of the last execution, nor before croniter's
    next fire after it; then ``croniter.match`` (the last fire at or before ``at``, plus 1 us
    when ``at`` has no microseconds, is under 60 s back) counts as 0 s late, else the
    distance to the previous fire; that must be within ``check_window_seconds`` (and
    ``precision_tolerance_seconds`` under ``strict_timing``)."""
    cron = daily_cron(condition.cron_expression)
    if cron is None:
        return None
    t = utc_whole_micros(at)
    if t is None:
        return None
    if last:
        previous = utc_whole_micros(last)
        if previous is None:
            return None
        if (t - previous) / _SECOND < condition.min_interval_seconds:
            return False
        if t < cron.next_after(previous):
            return False
    late = t - cron.at_or_before(t)
    diff = 0.0 if late + 1 < _MINUTE else late / _SECOND
    if not 0 <= diff <= condition.check_window_seconds:
        return False
    return not (condition.strict_timing and diff > condition.precision_tolerance_seconds)
