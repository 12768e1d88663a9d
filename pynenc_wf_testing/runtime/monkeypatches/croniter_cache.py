"""croniter parses a cron expression once per expression, not once per ``croniter`` object.

pynenc's ``CronCondition`` builds a fresh ``croniter`` (and ``croniter.match`` another) each
time the trigger loop evaluates a cron condition: about seven per firing of a per-minute cron,
each re-parsing the expression (``croniter._expand``), over half of what a firing costs in a
simulation. ``_expand`` of a plain expression (digits, ``*``, ``,``, ``-``, ``/`` only: no
random ``R``, hashed ``H``, ``L``, ``W``, ``#`` or names) with no hash id, no start-time
expansion and no strict checks is a pure function of the expression: its result is kept and
each caller gets its own copy (croniter copies and mutates what it is given). Anything else
takes croniter's own path.

Undone by the :class:`PatchSet` (croniter's ``_expand`` classmethod is put back).
"""

from __future__ import annotations

import inspect
from typing import Any

from pynenc_wf_testing.runtime.monkeypatches.registry import PatchSet

__all__ = ["PLAIN_CRON_CHARS", "install_croniter_cache"]

PLAIN_CRON_CHARS = frozenset("0123456789*,-/ ")
_SIGNATURE = (
    "cls", "expr_format", "hash_id", "second_at_beginning", "from_timestamp",
    "from_timestamp_tz", "strict", "strict_year",
)


def install_croniter_cache(patches: PatchSet) -> None:
    from croniter import croniter

    method = croniter.__dict__.get("_expand")
    original = getattr(method, "__func__", None)
    if original is None or tuple(inspect.signature(original).parameters) != _SIGNATURE:
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
