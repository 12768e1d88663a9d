"""`pynenc-wf report`: the report read from a store (SQLite, Redis) or a history file.

The stores here are written by the harness's own sqlite and redis backends (pynenc's SQLite
components, pynenc-redis's on fakeredis), so the view of the store can be compared line by
line with the simulator's own report of the same run. tests/production has the same on a
real ThreadRunner.
"""

from __future__ import annotations

import hashlib
import shutil
import socket
import sqlite3
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fakeredis
import pytest

from pynenc_wf_testing import StoreReadError, WorkflowEnv
from pynenc_wf_testing.env.report import render_html, render_text
from pynenc_wf_testing.env.report_sources import (
    read_history,
    read_redis_store,
    read_sqlite_store,
)
from pynenc_wf_testing.tools.cli import main
from tests import render_apps as ra


def tree(text: str) -> list[str]:
    """The lines of the workflow tree: the header (up to the time line) and legend dropped."""
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines) if " time: " in line) + 1
    return [line for line in lines[first:] if not line.startswith("legend:")]


def digest_of(db: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(db.parent.iterdir()) if p.name.startswith(db.name)
    }


@pytest.fixture
def sqlite_run(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """order (reserve, charge, the ship sub-workflow whose print_label retries once) and a
    courier still waiting for its 4-hour dispatch, on the harness's sqlite backend, written
    to ``tmp_path/store.db``; yields the path and the simulator's own text report."""
    db = tmp_path / "store.db"
    with WorkflowEnv(seed=11, backend="sqlite", backend_options={"path": str(db)}) as env:
        assert env.start(ra.order, "book", 25).result == "sent-label-book/ddea"
        env.start(ra.courier, "lbl")
        env.advance(hours=1)
        simulated = render_text(env)
    yield db, simulated


def test_the_view_of_a_sqlite_store_is_the_simulators_tree(sqlite_run: tuple[Path, str]) -> None:
    db, simulated = sqlite_run
    text = render_text(read_sqlite_store(db))
    assert tree(text) == tree(simulated)
    assert tree(text) == [
        "order#1 [c2c04fa9]                SUCCESS  +0:00:00..+4:00:07  1 run",
        "|-- reserve#1 [53baa1b5]          SUCCESS  +0:00:00..+0:00:02  1 run",
        "|-- charge#1 [816dde90]           SUCCESS  +0:00:02..+0:00:05  1 run",
        "`-- ship#1 [3c3c9dfc]             SUCCESS  +0:00:05..+4:00:07  1 run",
        "    |-- print_label#1 [a8c88144]  SUCCESS  +0:00:05..+0:00:07  2 runs: retry, success",
        "    `-- dispatch#1 [e85c4000]     SUCCESS  +0:00:07..+4:00:07  1 run",
        "courier#1 [f7a00fc3]              RUNNING  +4:00:07..open      1 run: running",
        "|   ! waits for the result of dispatch#1 [fe76de15] (status: running)",
        "`-- dispatch#1 [fe76de15]         RUNNING  +4:00:07..open      1 run: running",
    ]
    assert text.splitlines()[:2] == [
        f"sqlite store {db}, app render-apps; 17 steps, 0 crashes, 9 task executions",
        "real time: 2030-01-01T00:00:00+00:00 -> 2030-01-01T04:00:07+00:00 (+4:00:07)",
    ]


def test_reading_a_store_twice_gives_the_same_bytes_and_changes_no_file(
    sqlite_run: tuple[Path, str],
) -> None:
    db, _ = sqlite_run
    before = digest_of(db)
    first = render_html(read_sqlite_store(db), title="t")
    assert render_html(read_sqlite_store(db), title="t") == first
    assert digest_of(db) == before


def test_a_live_database_with_a_wal_file_is_read_from_a_copy(tmp_path: Path) -> None:
    """While a process has the database open its last writes are in the -wal file: the
    view sees them, and neither the file nor its -wal/-shm change."""
    db = tmp_path / "live.db"
    with WorkflowEnv(seed=11, backend="sqlite", backend_options={"path": str(db)}) as env:
        env.start(ra.courier, "lbl")
        env.advance(hours=1)
        holder = sqlite3.connect(db)  # keeps the WAL from being checkpointed away
        try:
            assert holder.execute("PRAGMA journal_mode").fetchone() == ("wal",)
            assert (tmp_path / "live.db-wal").exists()
            before = digest_of(db)
            text = render_text(read_sqlite_store(db))
            assert digest_of(db) == before
        finally:
            holder.close()
    assert "courier#1 [f7a00fc3]" in text and "RUNNING" in text


def test_one_workflow_by_its_id_or_a_unique_prefix(sqlite_run: tuple[Path, str]) -> None:
    db, _ = sqlite_run
    data = read_sqlite_store(db, workflow_id="3c3c9dfc")  # the ship sub-workflow
    assert [view.name for view in data.invocations] == ["ship#1", "print_label#1", "dispatch#1"]
    assert render_text(data).splitlines()[1] == f"workflow {data.invocations[0].invocation_id} only"
    assert data.invocations[0].invocation_id.startswith("3c3c9dfc")


def test_the_html_page_of_a_store(sqlite_run: tuple[Path, str]) -> None:
    db, _ = sqlite_run
    page = render_html(read_sqlite_store(db), title="prod")
    ET.fromstring(page.split("\n", 1)[1])
    assert "<h2>Timeline (real time)</h2>" in page
    assert "<th>real time</th>" in page
    assert page.count("<details open=\"open\">") == 3  # order, ship, courier
    assert "print_label#1 run 1: retry, +0:00:05..+0:00:06" in page


# ------------------------------------------------------------------------------ Redis


class RecordingRedis(fakeredis.FakeRedis):  # type: ignore[misc]
    """A fakeredis client that records the name of every command it sends."""

    commands: list[str]

    def execute_command(self, *args: Any, **options: Any) -> Any:
        self.commands.append(str(args[0]).upper())
        return super().execute_command(*args, **options)


def test_the_view_of_a_redis_store_with_a_crash_sends_read_commands_only() -> None:
    with WorkflowEnv(seed=11, backend="redis") as env:
        env.crash_after("print_label")
        env.start(ra.order, "book", 25).result
        server = env.backend._stores[-1].server  # type: ignore[attr-defined]
        client = RecordingRedis(server=server)
        client.commands = []
        keys = sorted(client.keys("*"))
        values = [client.dump(k) for k in keys]
        client.commands = []
        text = render_text(read_redis_store(client, app_id="render-apps"))
        assert set(client.commands) <= {"SCAN", "GET", "LRANGE"}, set(client.commands)
        assert sorted(client.keys("*")) == keys and [client.dump(k) for k in keys] == values
    assert tree(text) == [
        "order#1 [c2c04fa9]                SUCCESS  +0:00:00..+4:00:07  2 runs: crashed, success",
        "|-- reserve#1 [53baa1b5]          SUCCESS  +0:00:00..+0:00:02  1 run",
        "|-- charge#1 [816dde90]           SUCCESS  +0:00:02..+0:00:05  1 run",
        "`-- ship#1 [3c3c9dfc]             SUCCESS  +0:00:05..+4:00:07  2 runs: crashed, success",
        "    |-- print_label#1 [a8c88144]  SUCCESS  +0:00:05..+0:00:07  2 runs: retry, success",
        "    |-- dispatch#1 [e85c4000]     SUCCESS  +0:00:07..+4:00:07  1 run",
        "    `-- x crash: runner sim-work lost: pynenc recovered its invocations  +0:00:07",
    ]
    assert text.splitlines()[0] == (
        "redis store redis client, app render-apps; 15 steps, 1 crash, 9 task executions"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A private redis-server on a free port (skipped where none is installed)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    server = subprocess.Popen(
        [binary, "--port", str(port), "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        import redis

        client = redis.Redis(port=port)
        for _ in range(500):  # until it accepts connections (bounded: at most ~5 s)
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.01)
        client.close()
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(10)


def copy_keys(source: Any, target: Any) -> None:
    """Every key of ``source`` onto ``target``, as it is (fakeredis's DUMP format is not the
    server's, so by type)."""
    for key in source.keys("*"):
        kind = source.type(key).decode()
        if kind == "string":
            target.set(key, source.get(key))
        elif kind == "list":
            target.rpush(key, *source.lrange(key, 0, -1))
        elif kind == "set":
            target.sadd(key, *source.smembers(key))
        elif kind == "zset":
            target.zadd(key, dict(source.zrange(key, 0, -1, withscores=True)))
        elif kind == "hash":
            target.hset(key, mapping=source.hgetall(key))
        else:
            raise AssertionError(f"cannot copy {kind} {key!r}")


def test_the_cli_reads_a_real_redis_server(
    redis_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import redis

    with WorkflowEnv(seed=11, backend="redis") as env:
        env.start(ra.order, "book", 25).result
        simulated = render_text(env)
        fake = fakeredis.FakeRedis(server=env.backend._stores[-1].server)  # type: ignore[attr-defined]
        real = redis.Redis.from_url(redis_url)
        copy_keys(fake, real)
    out = tmp_path / "report.txt"
    assert main(["report", "--redis", redis_url, "--text", "-o", str(out)]) == 0
    assert tree(out.read_text()) == tree(simulated)
    assert main(["report", "--redis", redis_url, "--app-id", "nope"]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"pynenc-wf report: error: --redis '{redis_url}': no store of app 'nope'; the server "
        "holds: render-apps. Give one of these with --app-id.\n"
    )
    real.close()


# ------------------------------------------------------------------------------ history files


def test_the_view_of_a_history_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with WorkflowEnv(seed=11) as env:
        env.fail(ra.charge, times=2, exc=ra.Transient)
        env.start(ra.order, "book", 25).result
        simulated = render_text(env)
        (tmp_path / "h.json").write_text(env.history_json())
    text = render_text(read_history(tmp_path / "h.json"))
    # The same tree; a history does not record which failures were injected.
    assert tree(text) == [line.replace("retry*", "retry") for line in tree(simulated)]
    assert text.splitlines()[0].startswith(f"history {tmp_path / 'h.json'} (seed 11, 2 workflow")
    assert main(["report", "--history", str(tmp_path / "h.json"), "--workflow-id", "3c3c9dfc",
                 "--text"]) == 0
    shown = capsys.readouterr().out
    assert tree(shown) == [
        # times from the start of what is shown
        "ship#1 [3c3c9dfc]             SUCCESS  +0:00:00..+4:00:02  1 run",
        "|-- print_label#1 [a8c88144]  SUCCESS  +0:00:00..+0:00:02  2 runs: retry, success",
        "`-- dispatch#1 [e85c4000]     SUCCESS  +0:00:02..+4:00:02  1 run",
    ]


# ------------------------------------------------------------------------------ errors


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["report", *args])
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return code, err.removeprefix("pynenc-wf report: error: ").rstrip("\n")


def test_clear_errors_with_exit_status_2(
    tmp_path: Path, sqlite_run: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    db, _ = sqlite_run
    missing = tmp_path / "missing.db"
    assert run_cli(["--sqlite", str(missing)], capsys) == (
        2, f"--sqlite '{missing}': no such file; give the path of the app's SQLite database."
    )
    text_file = tmp_path / "notes.txt"
    text_file.write_text("not a database at all, but long enough to have a header page" * 20)
    code, message = run_cli(["--sqlite", str(text_file)], capsys)
    assert code == 2 and message.startswith(f"--sqlite '{text_file}': not a SQLite database")
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE users (id INTEGER)")
    conn.close()
    assert run_cli(["--sqlite", str(other)], capsys) == (
        2, f"--sqlite '{other}': the file holds no pynenc store (no state backend tables/keys); "
        "give the database a pynenc app writes to."
    )
    assert run_cli(["--sqlite", str(db), "--app-id", "shop"], capsys) == (
        2, f"--sqlite '{db}': no store of app 'shop'; the file holds: render-apps. Give one of "
        "these with --app-id."
    )
    # the app id, or the prefix of its tables
    assert read_sqlite_store(db, app_id="render-apps").source.endswith("app render-apps")
    assert read_sqlite_store(db, app_id="render_apps_4488c63f").source.endswith("render-apps")
    code, message = run_cli(["--sqlite", str(db), "--workflow-id", "nope"], capsys)
    assert code == 2 and "no workflow 'nope'; its top-level workflows are: c2c04fa9-" in message
    assert run_cli(["--redis", "redis://127.0.0.1:1/0"], capsys)[1].startswith(
        "--redis 'redis://127.0.0.1:1/0': cannot reach the Redis server ("
    )
    assert run_cli(["--history", str(missing)], capsys) == (
        2, f"history file '{missing}': no such file."
    )
    code, message = run_cli(["--history", str(text_file)], capsys)
    assert code == 2 and message.startswith(str(text_file)) and "JSON" in message
    assert run_cli(["--history", str(db), "--app-id", "x"], capsys) == (
        2, "--app and --app-id apply to a store (--sqlite, --redis), not to --history."
    )


def test_a_database_of_several_apps_needs_an_app_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "two.db"
    with sqlite3.connect(db) as conn:
        for app in ("billing", "shop"):
            conn.execute(f"CREATE TABLE {app}__state_backend_invocations (invocation_id TEXT)")
    conn.close()
    assert run_cli(["--sqlite", str(db)], capsys) == (
        2, f"--sqlite '{db}': the file holds the stores of several apps (billing, shop); "
        "choose one with --app-id."
    )
    with pytest.raises(StoreReadError, match="several apps"):
        read_sqlite_store(db)


def test_app_names_its_configured_store_as_for_export(
    tmp_path: Path, sqlite_run: tuple[Path, str], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    db, _ = sqlite_run
    (tmp_path / "views_cli_apps.py").write_text(
        "from pynenc import Pynenc, PynencBuilder\n"
        f"on_sqlite = PynencBuilder().app_id('views-cli').sqlite({str(db)!r}).build()\n"
        "in_memory = Pynenc(config_values={'app_id': 'views-cli-memory'})\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    # The app's own SQLite file is read, for the app's id (which this file does not hold).
    assert run_cli(["--app", "views_cli_apps:on_sqlite"], capsys) == (
        2, f"--sqlite '{db}': no store of app 'views-cli'; the file holds: render-apps. Give "
        "one of these with --app-id."
    )
    assert run_cli(["--app", "views_cli_apps:in_memory"], capsys) == (
        2, "--app 'views-cli-memory' uses MemStateBackend, which keeps its data inside the "
        "process that runs it: there is no store to read. Point at a SQLite or Redis store "
        "(--sqlite, --redis)."
    )
    assert run_cli([], capsys) == (
        2, "name what to read: --sqlite PATH, --redis URL, --history FILE or --app "
        "package.module:app (the store it is configured with)."
    )
    assert db.exists() and not (tmp_path / "pynenc.db").exists()


def test_the_simulators_report_is_drawn_from_the_same_model() -> None:
    """The seam: ``render_text(env)`` draws ``report_data(env)``, the model a store gives."""
    from pynenc_wf_testing.env.report_model import ReportData, report_data

    with WorkflowEnv(seed=11) as env:
        env.fail(ra.charge, times=2, exc=ra.Transient)
        env.crash_after("print_label")
        env.start(ra.order, "book", 25).result
        data = report_data(env)
        assert isinstance(data, ReportData) and data.clock == "virtual" and data.source == "seed 11"
        assert render_text(data) == render_text(env)
        assert render_html(data, title="t") == render_html(env, title="t")
    assert [view.name for view in data.invocations][:3] == ["order#1", "reserve#1", "charge#1"]
    assert [run.outcome for run in data.runs if run.name == "charge#1"] == ["retry", "retry", "success"]
    assert all(run.injected for run in data.runs if run.name == "charge#1" and run.outcome == "retry")


def step_rows(page: str) -> list[list[str]]:
    """The cells of the steps table: number, time, kind, name, workflow, invocation, detail."""
    import re

    table = page.split("<table class=\"steps\">")[1].split("</table>")[0]
    rows = [re.findall(r"<td[^>]*>([^<]*)</td>", row) for row in re.findall(r"<tr.*?</tr>", table)]
    return [cells for cells in rows if cells]


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_waits_and_their_wake_ups_in_a_store(backend: str, tmp_path: Path) -> None:
    """Timers fire at their deadlines and a signal wait ends when its signal came; an
    unfinished workflow says what it waits for (a timer, a signal with a timeout)."""
    from tests import engine_apps as ea

    options = {"path": str(tmp_path / "w.db")} if backend == "sqlite" else {}
    with WorkflowEnv(seed=5, backend=backend, backend_options=options) as env:
        env.use(ea.app)
        naps = env.start(ea.two_naps)
        approvals = env.start(ea.approvals)
        waiting = env.start(ea.payment_or_raise)
        sleeper = env.start(ea.month_sleeper)
        env.advance(minutes=30)
        env.signal(approvals, "approve", "yes")
        env.advance(hours=3)
        env.signal(approvals, "approve", "again")
        env.advance(minutes=1)
        assert naps.done and approvals.done and not waiting.done and not sleeper.done
        if backend == "sqlite":
            data = read_sqlite_store(tmp_path / "w.db")
        else:
            client = fakeredis.FakeRedis(server=env.backend._stores[-1].server)  # type: ignore[attr-defined]
            data = read_redis_store(client)
    text = render_text(data)
    assert "! waits for signal 'payment' (until 2030-01-04T00:00:00+00:00)" in text
    assert "! waits for timer sleep#1 (until 2030-01-31T00:00:00+00:00)" in text
    rows = step_rows(render_html(data, title="waits"))
    naps_rows = [(c[1], c[2], c[3]) for c in rows if c[4] == "two_naps#1"]
    assert ("+1:00:00", "timer", "timer#1") in naps_rows  # woke at the first deadline
    assert ("+3:00:00", "timer", "timer#2") in naps_rows  # and at the second
    signal_rows = {c[3]: c[1] for c in rows if c[4] == "approvals#1"}
    assert signal_rows["signal:approve#1"] == "+0:30:00"  # arrivals
    assert signal_rows["signal:approve#2"] == "+3:30:00"
    assert signal_rows["wait_signal:approve#1"] == "+0:30:00"  # the waits they ended
    assert signal_rows["wait_signal:approve#2"] == "+3:30:00"
