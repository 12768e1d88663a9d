"""The report hooks of a ``wf_env`` test: the seed note on its failure, the failure section,
the ``--wf-summary`` row it carries (a report attribute, so it crosses pytest-xdist) and the
``SummaryRecorder`` that prints the table."""

from __future__ import annotations

import contextlib
from collections.abc import Generator
from typing import Any

import pytest

from ._fixture import DATA_KEY
from ._report import SECTION_TITLE, failure_section, seed_line, summary_table, take_snapshot

#: Name a report row travels under (a report attribute: survives pytest-xdist serialization).
REPORT_ATTR = "pynenc_wf"


def _add_note(exc: BaseException, note: str) -> None:
    if isinstance(exc, (pytest.skip.Exception, pytest.xfail.Exception, pytest.exit.Exception)):
        return
    # add_note raises TypeError if an exotic exception set __notes__ to a non-list.
    with contextlib.suppress(TypeError):
        if note not in getattr(exc, "__notes__", ()):
            exc.add_note(note)


def _outcome(report: pytest.TestReport) -> str:
    if hasattr(report, "wasxfail"):
        return "xfailed" if report.skipped else "xpassed"
    return report.outcome


def _summary_outcome(outcomes: dict[str, str]) -> str:
    if outcomes.get("setup") == "failed":
        return "error"
    call = outcomes.get("call", outcomes.get("setup", "?"))
    if outcomes.get("teardown") == "failed":
        return "error" if call == "passed" else f"{call}+error"
    return call


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    data = item.stash.get(DATA_KEY, None)
    if data is None:
        return (yield)
    if call.excinfo is not None and call.when in ("call", "teardown"):
        # Before the report is built, so the note shows under the user's own exception.
        # (A setup error is a configuration problem: the seed would not help.)
        _add_note(call.excinfo.value, seed_line(data.seed, item.nodeid))
    report = yield
    data.outcomes[call.when] = _outcome(report)
    if report.failed and call.when in ("call", "teardown"):
        snapshot = data.snapshot
        if snapshot is None and data.env is not None:
            snapshot = take_snapshot(data.env)
        report.sections.append((SECTION_TITLE, failure_section(data.seed, item.nodeid, snapshot)))
    if call.when == "teardown":
        snap = data.snapshot
        elapsed = 0.0
        if snap is not None and snap.now is not None and data.start is not None:
            elapsed = (snap.now - data.start).total_seconds()
        setattr(
            report,
            REPORT_ATTR,
            {
                "nodeid": item.nodeid,
                "seed": data.seed,
                "steps": snap.steps if snap else 0,
                "crashes": snap.crashes if snap else 0,
                "executions": snap.executions if snap else 0,
                "elapsed": elapsed,
                "outcome": _summary_outcome(data.outcomes),
            },
        )
        # Items live until the session ends: do not keep each test's simulation alive.
        data.env = None
        data.snapshot = None
    return report


class SummaryRecorder:
    """Collects the rows of the ``--wf-summary`` table; registered only when it is asked for.

    Rows arrive on teardown reports (as the ``pynenc_wf`` attribute), so under pytest-xdist
    they reach the controller, where the table is printed.
    """

    name = "pynenc-wf-summary"

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        row = getattr(report, REPORT_ATTR, None)
        if row is not None and report.when == "teardown":
            self.rows.append(dict(row))

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        terminalreporter.write_sep("=", "pynenc-wf summary")
        if not self.rows:
            terminalreporter.write_line("no test used wf_env")
            return
        for text in summary_table(self.rows):
            terminalreporter.write_line(text)
