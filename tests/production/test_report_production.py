"""`pynenc-wf report` on a live production store: pynenc's ThreadRunner and SQLite, real time.

Workflows run on a real runner; the report is read from the database file the app writes
(while the runner still runs, and after it stopped), and must show what happened: the
workflow ids, the task names, statuses, the retries, the waits and what an unfinished
workflow waits for, the compensations of a saga and a sub-workflow under its parent. Reading
never writes to the store.
"""

from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pynenc_wf_testing.engine import signal_workflow
from pynenc_wf_testing.env.report import render_html, render_text
from pynenc_wf_testing.env.report_sources import read_sqlite_store
from pynenc_wf_testing.tools.cli import main
from tests.production import prod_app as pa
from tests.production.conftest import Production

pytestmark = [
    pytest.mark.production,
    pytest.mark.filterwarnings("ignore:Running in a secondary thread"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning"),
]


def files_of(db_path: str) -> dict[str, str]:
    """The database file and its side files (``-wal``, ``-shm``, ...): sha256 of each."""
    db = Path(db_path)
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(db.parent.iterdir())
        if path.name.startswith(db.name)
    }


def status(line: str) -> str:
    found = re.search(r"\] +(\S+)", line)
    assert found, line
    return found.group(1)


def line_of(text: str, name: str) -> str:
    found = [line for line in text.splitlines() if re.search(rf"(^|[ `|-]){re.escape(name)} \[", line)]
    assert len(found) == 1, (name, text)
    return found[0]


@pytest.fixture
def ran(prod: Production) -> dict[str, str]:
    """A few workflows on a ThreadRunner: retries, a saga that compensates, a sleep and a
    signal, a sub-workflow, one waiting for a signal and one halted."""
    prod.start_runner()
    pa.FLAKY["k"] = 2
    retried = pa.retrying("k", 0.05, 5)
    assert prod.result(retried) == "k: ok"
    trip = pa.trip("rome")
    assert prod.result(trip) == "done rome"
    fragile = pa.fragile_booking("b3")
    with pytest.raises(Exception, match="declined"):
        prod.result(fragile)
    booking = pa.booking("b2", 0.05)
    prod.wait_until(lambda: signal_workflow(prod.app, booking, "confirm", True))
    assert prod.result(booking) == "booked b2"
    waiting = pa.signals(60.0)
    halted = pa.approval(7)

    def both_waiting() -> bool:
        text = render_text(read_sqlite_store(prod.db_path, app_id=prod.app_id))
        return "waits for signal 'go'" in text and "halted:" in text

    prod.wait_until(both_waiting)
    return {
        "retried": retried.invocation_id, "trip": trip.invocation_id,
        "fragile": fragile.invocation_id, "booking": booking.invocation_id,
        "waiting": waiting.invocation_id, "halted": halted.invocation_id,
    }


def test_the_report_of_a_live_sqlite_store(prod: Production, ran: dict[str, str]) -> None:
    text = render_text(read_sqlite_store(prod.db_path, app_id=prod.app_id))
    lines = text.splitlines()
    assert lines[0].startswith(f"sqlite store {prod.db_path}, app ")
    assert lines[1].startswith("real time: ")
    for key in ran.values():
        assert f"[{key[:8]}]" in text

    # Retries: the engine's retry policy routes each attempt as a new child.
    assert "SUCCESS" in line_of(text, "retrying#1")
    attempts = [line for line in lines if re.search(r"flaky#\d \[", line)]
    assert [status(line) for line in attempts] == ["FAILED", "FAILED", "SUCCESS"]

    # A sub-workflow sits under its parent, its own children under it.
    trip = line_of(text, "trip#1")
    sub = line_of(text, "timed_sleep#1")
    assert lines.index(sub) == lines.index(trip) + 2
    assert sub.startswith("|-- timed_sleep#1") and "SUCCESS" in sub

    # The saga: the charge is declined, undoing the hotel fails, the flight is undone.
    assert "FAILED" in line_of(text, "fragile_booking#1")
    assert "FAILED" in line_of(text, "declined#1")
    assert "FAILED" in line_of(text, "refuse_unbook#1")
    assert "SUCCESS" in line_of(text, "unbook#1")

    # What the unfinished workflows wait for.
    waiting = lines.index(line_of(text, "signals#1"))
    # A production wait suspends: the workflow is PAUSED and holds no worker (docs/engine.md).
    assert "PAUSED" in lines[waiting] and lines[waiting].endswith("1 run: suspended")
    assert re.fullmatch(r" +! suspended: waits for signal 'go' \(until .+\)", lines[waiting + 1])
    halted = lines.index(line_of(text, "approval#1"))
    assert lines[halted + 1].endswith("! halted: needs approval (resume it with resume_workflow)")


def test_the_html_report_shows_waits_and_their_wake_ups(
    prod: Production, ran: dict[str, str]
) -> None:
    page = render_html(read_sqlite_store(prod.db_path, app_id=prod.app_id), title="live")
    ET.fromstring(page.split("\n", 1)[1])  # well-formed
    assert "<h2>Timeline (real time)</h2>" in page
    # The booking's sleep, its wake-up, the signal's arrival and the wait that took it, as
    # steps of the booking workflow in the order they happened.
    rows = [
        re.findall(r"<td[^>]*>([^<]*)</td>", row)
        for row in re.findall(r"<tr>(?:(?!</tr>).)*</tr>", page.split("<table class=\"steps\">")[1])
    ]
    rows = [cells for cells in rows if cells]
    booking = [(cells[2], cells[3]) for cells in rows if cells[4] == "booking#1"]
    names = [name for _, name in booking]
    assert names.index("sleep#1") < names.index("timer#1") < names.index("wait_signal:confirm#1")
    assert names.index("signal:confirm#1") < names.index("wait_signal:confirm#1")
    assert ("timer", "timer#1") in booking and ("signal", "signal:confirm#1") in booking
    order = [(cells[2], cells[3]) for cells in rows]
    assert order.index(("result", "booking#1")) > order.index(("signal", "wait_signal:confirm#1"))
    # The runs of every invocation are in the ledger table, the failed attempts included.
    ledger = page.split("<table class=\"executions\">")[1]
    assert ledger.count(">flaky#") == 3


def test_the_cli_renders_one_workflow_and_never_writes_to_the_store(
    prod: Production, ran: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for runner, _ in list(prod.runners):
        prod.stop_runner(runner)
    before = files_of(prod.db_path)
    out = tmp_path / "out"
    out.mkdir()
    trip = ran["trip"]
    code = main([
        "report", "--sqlite", prod.db_path, "--app-id", prod.app_id, "--workflow-id", trip[:8],
        "--text", "-o", str(out / "trip.txt"),
    ])
    assert code == 0
    assert capsys.readouterr().out == f"wrote the report of 4 invocations to {out / 'trip.txt'}\n"
    text = (out / "trip.txt").read_text()
    assert f"workflow {trip} only" in text
    names = re.findall(r"(\w+#\d+) \[", text)
    assert names == ["trip#1", "note#1", "timed_sleep#1", "note#2"]
    assert main(["report", "--sqlite", prod.db_path, "--app-id", prod.app_id,
                 "-o", str(out / "all.html")]) == 0
    assert "fragile_booking#1" in (out / "all.html").read_text()
    assert files_of(prod.db_path) == before


def test_the_cli_finds_the_store_of_an_app(
    prod: Production, ran: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """``--app`` as for ``pynenc-wf export``: the app's id and its configured database."""
    assert main(["report", "--app", "tests.production.prod_app:app", "--text"]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"sqlite store {prod.db_path}, app {prod.app_id};")
    assert f"booking#1 [{ran['booking'][:8]}]" in text


def test_a_runner_stopped_while_a_workflow_is_suspended_costs_the_workflow_nothing(
    prod: Production,
) -> None:
    """A suspended workflow holds no worker (docs/engine.md): pynenc's graceful stop of the
    runner kills and reroutes only what was running (the engine's timer service), and a new
    runner wakes the workflow on its signals. The view shows the workflow's suspended runs
    and its final one, none of them crashed."""
    first = prod.start_runner()
    run = pa.signals(30.0)
    prod.wait_until(lambda: prod.status(run).value == "paused")
    prod.stop_runner(first)
    prod.start_runner()
    prod.wait_until(lambda: signal_workflow(prod.app, run, "go", 1))
    prod.wait_until(lambda: signal_workflow(prod.app, run, "go", 2) == 2)
    assert prod.result(run) == [1, 2]

    def view() -> list[str]:
        return render_text(read_sqlite_store(prod.db_path, app_id=prod.app_id)).splitlines()

    def finished() -> list[str] | None:
        lines = view()
        return lines if "SUCCESS" in line_of("\n".join(lines), "signals#1") else None

    # pynenc writes the status, then its history record: the view follows the history.
    lines = prod.wait_until(finished)
    workflow = line_of("\n".join(lines), "signals#1")
    assert "SUCCESS" in workflow and "suspended" in workflow, lines
    assert workflow.endswith("success") and "crashed" not in workflow, lines
