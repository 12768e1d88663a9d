"""A real process death on the sqlite backend: a second process runs a workflow on a database
file and dies mid-step (``os._exit`` inside a task: no cleanup, no ``finally``, no commit);
this process then opens the same file and recovery completes the workflow from what the dead
process had committed there.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from pynenc_wf_testing import WorkflowEnv
from pynenc_wf_testing.env.environment import WorkflowRun
from pynenc_wf_testing.errors import AppConfigurationError, InvalidArgument
from tests import backend_apps as apps

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import sys
from pynenc_wf_testing import WorkflowEnv
from tests import backend_apps as apps

with WorkflowEnv(seed=5, backend="sqlite", backend_options={"path": sys.argv[1]}) as env:
    run = env.start(apps.killable, 4)
    print(run.workflow_id, flush=True)
    run.result  # kill_point(2) ends this process with os._exit(17)
print("unreachable: the process should have died", flush=True)
"""


def run_child(db: Path, kill_at: str) -> subprocess.CompletedProcess[str]:
    # A killed process runs no cleanup: its temporary files go under the test's directory.
    env = {**os.environ, "WF_KILL_AT": kill_at, "PYTHONPATH": str(ROOT), "TMPDIR": str(db.parent)}
    env.pop("PYNENC_WF_REDIS_URL", None)
    return subprocess.run(
        [sys.executable, "-c", CHILD, str(db)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )


def statuses(db: Path) -> dict[str, str]:
    """Invocation statuses straight from the file, read by plain sqlite3 (no pynenc)."""
    with sqlite3.connect(db) as conn:
        (table,) = conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name LIKE ?",
            ("%orchestrator_invocations",),
        ).fetchone()
        rows = conn.execute(f"SELECT task_id_key, status FROM {table}").fetchall()
    return {f"{task.rsplit('.', 1)[-1]}:{n}": s for n, (task, s) in enumerate(sorted(rows))}


def test_a_killed_process_leaves_a_store_another_process_recovers(tmp_path: Path) -> None:
    db = tmp_path / "run.db"
    child = run_child(db, kill_at="2")
    assert child.returncode == 17, child.stderr[-3000:]
    assert "unreachable" not in child.stdout
    workflow_id = child.stdout.split()[0]

    # What the dead process committed: two children done, the third was RUNNING when it died.
    left = sorted(statuses(db).values())
    assert left == ["running", "running", "success", "success"], statuses(db)

    apps.reset()
    # A new process: another seed (the old one would replay the dead process's ids).
    with WorkflowEnv(
        seed=6, backend="sqlite", backend_options={"path": str(db), "resume": True}
    ) as env:
        app = env.use(apps.app)
        run = WorkflowRun(env, app.state_backend.get_invocation(workflow_id))
        assert run.result == [0, 10, 20, 30]
        # Children 0 and 1 were committed by the dead process: replayed, not re-executed.
        # Child 2 died mid-step (at-least-once: it runs again), child 3 is new.
        assert env.executions(apps.kill_point) == 2
        assert env.executions(apps.killable) == 1
        # This process routed one new child (kill_point(3)) and committed three results: the
        # re-run kill_point(2), kill_point(3) and the workflow's own.
        assert [s for s in env.steps if s.startswith("route:")] == ["route:kill_point#4"]
        assert env.steps[-1] == "killable#1"
        assert sum(1 for s in env.history if s.kind == "result") == 3
    assert sorted(statuses(db).values()) == ["success"] * 5


def test_resuming_with_the_same_seed_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "run.db"
    assert run_child(db, kill_at="1").returncode == 17
    with (
        WorkflowEnv(
            seed=5, backend="sqlite", backend_options={"path": str(db), "resume": True}
        ) as env,
        pytest.raises(AppConfigurationError, match="Resume with a different seed"),
    ):
        env.start(apps.killable, 4)


def test_resume_needs_an_existing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="needs the database file"):
        WorkflowEnv(backend="sqlite", backend_options={"resume": True})
    with pytest.raises(InvalidArgument, match="no database file"):
        WorkflowEnv(
            backend="sqlite", backend_options={"path": str(tmp_path / "x.db"), "resume": True}
        )


def test_a_resumed_store_keeps_the_virtual_time(tmp_path: Path) -> None:
    """The clock's position is durable: the new process does not rewind time."""
    db = tmp_path / "run.db"
    env_vars = {**os.environ, "WF_KILL_AT": "2", "PYTHONPATH": str(ROOT),
                "TMPDIR": str(db.parent)}
    env_vars.pop("PYNENC_WF_REDIS_URL", None)
    child = subprocess.run(
        [sys.executable, "-c", CHILD.replace("apps.killable", "apps.slow_killable"), str(db)],
        cwd=ROOT, env=env_vars, capture_output=True, text=True, timeout=120, check=False,
    )
    assert child.returncode == 17, child.stderr[-3000:]
    workflow_id = child.stdout.split()[0]
    with WorkflowEnv(
        seed=6, backend="sqlite", backend_options={"path": str(db), "resume": True}
    ) as env:
        app = env.use(apps.app)
        # Two hours of work were committed (children 0 and 1); the third hour died with it.
        assert env.now.isoformat() == "2030-01-01T02:00:00+00:00"
        assert env.run_of(workflow_id).result == [0, 1, 2, 3]
        assert env.now.isoformat() == "2030-01-01T04:00:00+00:00"
        assert app is apps.app
