"""The arithmetic cron stepper gives croniter's and pynenc's own answers."""

from __future__ import annotations

import datetime as dt
import random
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from pynenc.trigger.conditions.cron import CronCondition, CronContext

from pynenc_wf_testing.runtime.cron_steps import (
    DailyCron,
    cron_condition_satisfied,
    daily_cron,
    utc_whole_micros,
)

DAILY = ["* * * * *", "*/5 * * * *", "0 * * * *", "0 0 * * *", "15,45 9-17 * * *",
         "59 23 * * *", "7-9/2 */6 * * *", "1,2,3 0,12 * * *", "*/1 * * * *"]
NOT_DAILY = ["0 0 1 * *", "0 12 * * mon", "0 0 L * *", "0 0 * * 1", "@hourly", "H * * * *",
             "* * * * * *", "0 0 * 1 *", "nonsense", "61 * * * *"]
START = dt.datetime(2030, 2, 27, 22, 0, tzinfo=dt.UTC)  # (crosses a month end: 2030 is not leap)


def _instants(count: int, seed: int) -> list[dt.datetime]:
    rng = random.Random(seed)
    out = [START + dt.timedelta(minutes=m) for m in range(0, 3 * 24 * 60, 31)]
    out += [START + dt.timedelta(hours=h, seconds=s) for h in range(72) for s in (-1, 0, 1)]
    out += [START + dt.timedelta(seconds=rng.randrange(3 * 86_400)) for _ in range(count)]
    return out


def _micros(when: dt.datetime) -> int:
    return (when - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)


@pytest.mark.parametrize("expression", DAILY)
def test_next_and_previous_fire_are_croniters(expression: str) -> None:
    cron = daily_cron(expression)
    assert isinstance(cron, DailyCron)
    for at in _instants(120, seed=len(expression)):
        t = utc_whole_micros(at)
        assert t == _micros(at)
        assert cron.next_after(t) == _micros(croniter(expression, at).get_next(dt.datetime))
        prev = croniter(expression, at).get_prev(dt.datetime)
        # croniter's previous fire is strictly before: at a fire time, the one before it
        strictly_before = cron.at_or_before(t - 1)
        assert strictly_before == _micros(prev)
        assert (cron.at_or_before(t) == t) is (at == croniter(expression, at - dt.timedelta(
            seconds=1)).get_next(dt.datetime))


@pytest.mark.parametrize("expression", NOT_DAILY)
def test_other_expressions_are_left_to_croniter(expression: str) -> None:
    assert daily_cron(expression) is None


def test_only_whole_second_utc_instants_are_stepped() -> None:
    at = dt.datetime(2030, 1, 1, 12, 0, 30, tzinfo=dt.UTC)
    assert utc_whole_micros(at) == _micros(at)
    assert utc_whole_micros(at.replace(microsecond=5)) is None
    assert utc_whole_micros(at.replace(tzinfo=None)) is None
    assert utc_whole_micros(at.astimezone(ZoneInfo("Europe/Madrid"))) is None
    assert utc_whole_micros(at.replace(tzinfo=ZoneInfo("UTC"))) is None


def test_a_stepper_needs_sorted_fire_times() -> None:
    with pytest.raises(ValueError, match="sorted, distinct and not empty"):
        DailyCron("x", (3, 1))
    with pytest.raises(ValueError, match="not empty"):
        DailyCron("x", ())


def test_cron_condition_answers_are_pynencs() -> None:
    """Every setting of ``CronCondition`` on on-time, late, early, too-soon and first
    evaluations: the arithmetic answer is pynenc's (croniter's path, no memo installed)."""
    conditions = [
        CronCondition("* * * * *"),
        CronCondition("*/5 * * * *", check_window_seconds=30),
        CronCondition("0 * * * *", min_interval_seconds=3000, strict_timing=True,
                      precision_tolerance_seconds=5),
        CronCondition("15,45 9-17 * * *", check_window_seconds=120, min_interval_seconds=0),
        CronCondition("0 0 * * *", strict_timing=True, precision_tolerance_seconds=0),
    ]
    rng = random.Random(7)
    base = dt.datetime(2030, 3, 30, 23, 55, tzinfo=dt.UTC)
    checked = satisfied = 0
    for condition in conditions:
        for _ in range(120):
            at = base + dt.timedelta(seconds=rng.choice([0, 1, 29, 30, 31, 59, 60, 61, 119,
                                                          120, 121, rng.randrange(90_000)]))
            for last in (None, at - dt.timedelta(seconds=rng.choice([1, 20, 49, 50, 60, 61,
                                                                      300, 2999, 3600])),
                         at):
                expected = condition.is_satisfied_by(CronContext(timestamp=at,
                                                                 last_execution=last))
                assert cron_condition_satisfied(condition, at, last) is expected, (
                    condition.cron_expression, at, last)
                checked += 1
                satisfied += expected
    assert 0 < satisfied < checked


def test_conditions_croniter_must_answer_get_none() -> None:
    at = dt.datetime(2030, 1, 1, 12, tzinfo=dt.UTC)
    assert cron_condition_satisfied(CronCondition("0 0 L * *"), at, None) is None
    assert cron_condition_satisfied(CronCondition("* * * * *"), at.replace(tzinfo=None),
                                    None) is None
    assert cron_condition_satisfied(CronCondition("* * * * *"), at,
                                    at.replace(microsecond=1)) is None
