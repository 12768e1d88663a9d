"""croniter parses a cron expression once per expression, not once per ``croniter`` object.

pynenc's ``CronCondition`` builds a fresh ``croniter`` (and ``croniter.match`` another) each
time the trigger loop evaluates a cron condition: about seven per firing of a per-minute cron,
each re-parsing the expression (``croniter._expand``), over half of what a firing costs in a
simulation. ``_expand`` of a plain expression (digits, ``*``, ``,``, ``-``, ``/`` only: no
random ``R``, hashed ``H``, ``L``, ``W``, ``#`` or names) with no hash id, no start-time
expansion and no strict checks is a pure function of the expression: its result is kept and
each caller gets its own copy (croniter copies and mutates what it is given). Anything else
takes croniter's own path.

The next (or previous) fire time of a plain expression is also a pure function of the
expression, the instant and the zone: ``_calc_next`` keeps it for the recent instants. One
per-minute firing asks for the same few instants several times (pynenc checks the condition
against its cache, then against its store, each time ``get_next`` of the last execution and
``match`` of now; the simulator's ``next_cron`` asks ``get_next`` of now, which is the next
firing's "next after the last execution"), and ``match_range`` (``match``) is a pure function
of its arguments too: one computation of each kind per firing instead of five. A fire time that
``_calc_next`` computed (forward, without the vixie-cron bug emulation) is remembered with its
fields, zone and options: ``match`` of exactly that instant is True by definition (the previous
fire from it plus 1 us is itself), answered without a second computation. pynenc's
``CronCondition._is_satisfied_by`` is asked twice per trigger-loop pass with equal contexts (its
cache of the last execution, then its store): for a plain expression its answer is kept too,
keyed on the condition's settings and both instants with their zones. Each memo holds at most
:data:`CALC_MEMO_SIZE` entries (cleared when full); errors are not kept.

Undone by the :class:`PatchSet` (croniter's ``_expand`` classmethod is put back, and the
condition's method).
"""

from __future__ import annotations

import inspect
from typing import Any

from pynenc_wf_testing.runtime.monkeypatches.registry import PatchSet

__all__ = ["CALC_MEMO_SIZE", "PLAIN_CRON_CHARS", "install_croniter_cache"]

PLAIN_CRON_CHARS = frozenset("0123456789*,-/ ")
CALC_MEMO_SIZE = 1024
_CALC_SIGNATURE = ("self", "is_prev")
_MATCH_SIGNATURE = (
    "cls", "cron_expression", "from_datetime", "to_datetime", "day_or",
    "second_at_beginning", "precision_in_seconds",
)
_SIGNATURE = (
    "cls", "expr_format", "hash_id", "second_at_beginning", "from_timestamp",
    "from_timestamp_tz", "strict", "strict_year",
)


#: function -> its parameter names (``inspect.signature`` costs ~0.1 ms; every env asks).
_PARAMETERS: dict[Any, tuple[str, ...]] = {}


def _parameters(function: Any) -> tuple[str, ...]:
    names = _PARAMETERS.get(function)
    if names is None:
        names = _PARAMETERS[function] = tuple(inspect.signature(function).parameters)
    return names


def install_croniter_cache(patches: PatchSet) -> None:
    from croniter import croniter

    method = croniter.__dict__.get("_expand")
    original = getattr(method, "__func__", None)
    if original is None or _parameters(original) != _SIGNATURE:
        return  # another croniter than the one this was written against: leave it alone
    cache: dict[str, tuple[Any, Any, Any, Any]] = {}

    def _expand(
        cls: type,
        expr_format: Any,
        hash_id: Any = None,
        second_at_beginning: bool = False,
        from_timestamp: Any = None,
        from_timestamp_tz: Any = None,
        strict: bool = False,
        strict_year: Any = None,
    ) -> Any:
        plain = (
            cls is croniter
            and type(expr_format) is str
            and hash_id is None
            and not second_at_beginning
            and from_timestamp is None
            and from_timestamp_tz is None
            and not strict
            and strict_year is None
        )
        if not plain or not PLAIN_CRON_CHARS.issuperset(expr_format):
            return original(
                cls, expr_format, hash_id, second_at_beginning, from_timestamp,
                from_timestamp_tz, strict, strict_year,
            )
        hit = cache.get(expr_format)
        if hit is None:
            hit = original(cls, expr_format)
            expanded, nth_weekday_of_month, expressions, nearest_weekday = hit
            if nth_weekday_of_month or nearest_weekday:  # (not plain after all: uncached)
                return hit
            cache[expr_format] = hit
        expanded, _, expressions, _ = hit
        return [list(field) for field in expanded], {}, list(expressions), set()

    patches.set_attr(croniter, "_expand", classmethod(_expand))
    # Fire times croniter computed: (fields, instant, zone, day_or, second_at_beginning).
    fires: dict[tuple[Any, ...], bool] = {}
    _install_calc_memo(patches, croniter, fires)
    _install_match_memo(patches, croniter, fires, cache)
    _install_condition_memo(patches)


def _install_condition_memo(patches: PatchSet) -> None:
    """pynenc asks a cron condition twice per trigger-loop pass with equal contexts (against
    its cache of the last execution, then against its store): the answer of a plain
    expression is a pure function of the condition's settings and the two instants."""
    from pynenc.trigger.conditions.cron import CronCondition, CronContext

    original = CronCondition.__dict__.get("_is_satisfied_by")
    if original is None or _parameters(original) != ("self", "context"):
        return  # another pynenc than the one this was written against: leave it alone
    memo: dict[tuple[Any, ...], bool] = {}

    def _is_satisfied_by(self: Any, context: Any) -> bool:
        expression = self.cron_expression
        if (
            type(self) is not CronCondition
            or type(context) is not CronContext
            or type(expression) is not str
            or not PLAIN_CRON_CHARS.issuperset(expression)
        ):
            return original(self, context)  # type: ignore[no-any-return]
        at, last = context.timestamp, context.last_execution
        # (the instants' zones are part of the key: equal instants in two zones differ)
        key = (
            expression, self.min_interval_seconds, self.check_window_seconds,
            self.precision_tolerance_seconds, self.strict_timing,
            at, getattr(at, "tzinfo", None), last, getattr(last, "tzinfo", None),
        )
        hit = memo.get(key)
        if hit is None:
            hit = bool(original(self, context))
            if len(memo) >= CALC_MEMO_SIZE:
                memo.clear()
            memo[key] = hit
        return hit

    patches.set_attr(CronCondition, "_is_satisfied_by", _is_satisfied_by)


def _install_match_memo(
    patches: PatchSet, croniter: Any, fires: dict[tuple[Any, ...], bool],
    parsed: dict[str, tuple[Any, Any, Any, Any]],
) -> None:
    method = croniter.__dict__.get("match_range")
    original = getattr(method, "__func__", None)
    if original is None or _parameters(original) != _MATCH_SIGNATURE:
        return  # another croniter than the one this was written against: leave it alone
    memo: dict[tuple[Any, ...], bool] = {}

    def match_range(
        cls: type,
        cron_expression: Any,
        from_datetime: Any,
        to_datetime: Any,
        day_or: bool = True,
        second_at_beginning: bool = False,
        precision_in_seconds: Any = None,
    ) -> bool:
        if (
            cls is not croniter
            or type(cron_expression) is not str
            or not PLAIN_CRON_CHARS.issuperset(cron_expression)
        ):
            return original(  # type: ignore[no-any-return]
                cls, cron_expression, from_datetime, to_datetime, day_or,
                second_at_beginning, precision_in_seconds,
            )
        # (the instants' zones are part of the key: equal instants in two zones differ)
        key = (
            cron_expression, from_datetime, getattr(from_datetime, "tzinfo", None),
            to_datetime, getattr(to_datetime, "tzinfo", None), day_or, second_at_beginning,
            precision_in_seconds,
        )
        hit = memo.get(key)
        if hit is None:
            fields = parsed.get(cron_expression)
            if (
                fields is not None
                and from_datetime == to_datetime
                and precision_in_seconds is None
                and (
                    tuple(fields[2]), from_datetime, key[2], day_or, second_at_beginning
                ) in fires
            ):
                # A fire time croniter computed matches by definition: the previous fire
                # from it (+1 us) is itself, within any precision match_range allows.
                hit = True
            else:
                hit = original(
                    cls, cron_expression, from_datetime, to_datetime, day_or,
                    second_at_beginning, precision_in_seconds,
                )
            if len(memo) >= CALC_MEMO_SIZE:
                memo.clear()
            memo[key] = hit
        return hit

    patches.set_attr(croniter, "match_range", classmethod(match_range))


def _install_calc_memo(
    patches: PatchSet, croniter: Any, fires: dict[tuple[Any, ...], bool]
) -> None:
    original = croniter.__dict__.get("_calc_next")
    if original is None or _parameters(original) != _CALC_SIGNATURE:
        return  # another croniter than the one this was written against: leave it alone
    memo: dict[tuple[Any, ...], Any] = {}

    def _calc_next(self: Any, is_prev: bool) -> Any:
        # What croniter 7's _calc_next reads of the object: only these, for a plain expression
        # (no nth weekday, no nearest weekday, no expansion from the start time).
        if (
            type(self) is not croniter
            or self.nth_weekday_of_month
            or self.nearest_weekday
            or self._expand_from_start_time
            or not PLAIN_CRON_CHARS.issuperset("".join(self.expressions))
        ):
            return original(self, is_prev)
        key = (
            tuple(self.expressions), self.cur, is_prev, self.tzinfo, self._day_or,
            self._implement_cron_bug, self._max_years_between_matches,
            self.second_at_beginning,
        )
        hit = memo.get(key)
        if hit is None:
            hit = original(self, is_prev)
            if len(memo) >= CALC_MEMO_SIZE:
                memo.clear()
            memo[key] = hit
            if not is_prev and not self._implement_cron_bug:
                if len(fires) >= CALC_MEMO_SIZE:
                    fires.clear()
                fires[
                    key[0], hit, getattr(hit, "tzinfo", None), self._day_or,
                    self.second_at_beginning,
                ] = True
        return hit

    patches.set_attr(croniter, "_calc_next", _calc_next)
