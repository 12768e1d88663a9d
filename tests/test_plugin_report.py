"""The plugin's report text, without pytest runs (pure functions of ``pytest_pynenc_wf._report``)."""

from __future__ import annotations

import datetime as dt
import shlex

from hypothesis import given
from hypothesis import strategies as st
from pytest_pynenc_wf._report import (
    EnvSnapshot,
    failure_section,
    format_duration,
    seed_line,
    shell_quote,
    summary_table,
)

from pynenc_wf_testing.runtime.history import Step


@given(st.text(alphabet=st.characters(blacklist_characters="\x00")))
def test_shell_quote_round_trips_through_the_shell(text: str) -> None:
    assert shlex.split(f"pytest {shell_quote(text)} --wf-seed=1") == [
        "pytest",
        text,
        "--wf-seed=1",
    ]


def test_seed_line_is_exact() -> None:
    assert seed_line(42, "tests/test_x.py::test_y") == (
        "wf_env seed: 42 \u2014 rerun with: pytest 'tests/test_x.py::test_y' --wf-seed=42"
        "  (or add @pytest.mark.wf(seed=42))"
    )


def test_format_duration() -> None:
    assert format_duration(0) == "0s"
    assert format_duration(59) == "59s"
    assert format_duration(60) == "1m"
    assert format_duration(3_600 + 2) == "1h 2s"
    assert format_duration(30 * 86_400 + 1.5) == "30d 1.5s"
    assert format_duration(0.25) == "0.25s"


def _step(number: int | None, name: str, minute: int) -> Step:
    return Step(number, "result", name, "wf", None, f"2030-01-01T00:{minute:02d}:00+00:00")


def test_failure_section_shows_the_last_steps_and_what_is_blocked() -> None:
    history = [_step(n, f"add#{n}", n) for n in range(1, 21)]
    history.insert(10, _step(None, "crash", 10))
    snapshot = EnvSnapshot(
        history=history,
        steps=20,
        crashes=1,
        executions=25,
        now=dt.datetime(2030, 1, 1, 0, 20, tzinfo=dt.UTC),
        blocked={"flow#1 [abcd]": "waits for the result of add#21 [ef01] (status: running)"},
    )
    text = failure_section(3, "t.py::t", snapshot)
    assert text.splitlines() == [
        seed_line(3, "t.py::t"),
        "virtual time: 2030-01-01T00:20:00+00:00; 20 steps, 1 crashes, 25 task executions",
        "last steps of the history (6 earlier entries not shown):",
        "   #7 add#7   2030-01-01T00:07:00+00:00",
        "   #8 add#8   2030-01-01T00:08:00+00:00",
        "   #9 add#9   2030-01-01T00:09:00+00:00",
        "  #10 add#10  2030-01-01T00:10:00+00:00",
        "   -- crash   2030-01-01T00:10:00+00:00",
        "  #11 add#11  2030-01-01T00:11:00+00:00",
        "  #12 add#12  2030-01-01T00:12:00+00:00",
        "  #13 add#13  2030-01-01T00:13:00+00:00",
        "  #14 add#14  2030-01-01T00:14:00+00:00",
        "  #15 add#15  2030-01-01T00:15:00+00:00",
        "  #16 add#16  2030-01-01T00:16:00+00:00",
        "  #17 add#17  2030-01-01T00:17:00+00:00",
        "  #18 add#18  2030-01-01T00:18:00+00:00",
        "  #19 add#19  2030-01-01T00:19:00+00:00",
        "  #20 add#20  2030-01-01T00:20:00+00:00",
        "blocked:",
        "  flow#1 [abcd]: waits for the result of add#21 [ef01] (status: running)",
    ]


def test_failure_section_without_a_readable_env_still_has_the_seed() -> None:
    assert failure_section(3, "t.py::t", None) == seed_line(3, "t.py::t")


def test_summary_table_aligns_columns() -> None:
    rows = [
        {
            "nodeid": "a.py::t",
            "seed": 1,
            "steps": 12,
            "crashes": 0,
            "executions": 4,
            "elapsed": 3600.0,
            "outcome": "passed",
        },
        {
            "nodeid": "a.py::long_name",
            "seed": 123456,
            "steps": 3,
            "crashes": 2,
            "executions": 10,
            "elapsed": 0.0,
            "outcome": "failed",
        },
    ]
    assert summary_table(rows) == [
        "test               seed  steps  crashes  executions  virtual time  outcome",
        "a.py::t               1     12        0           4  1h            passed",
        "a.py::long_name  123456      3        2          10  0s            failed",
    ]
