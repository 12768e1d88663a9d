"""What the two-process race tests run in each racing process (``python -c``).

Each racer builds its own app (or store) on the shared database / Redis server, waits for
the go file (both racers are then ready, and start at one instant), does its part and
prints what it got as JSON on stdout.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any


def _wait_for(go_file: str) -> None:
    Path(f"{go_file}.ready.{os.getpid()}").touch()
    deadline = time.monotonic() + 60
    while not Path(go_file).exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"no go file {go_file} after 60 s")
        time.sleep(0.001)


def signal_many(
    db_path: str, app_id: str, run_id: str, name: str, count: int, go: str,
    redis_url: str | None = None,
) -> None:
    from pynenc_wf_testing.engine import signal_workflow
    from tests.production import prod_app

    app = prod_app.build(db_path, app_id, redis_state_url=redis_url)
    _wait_for(go)
    slots = [signal_workflow(app, run_id, name, f"{os.getpid()}-{i}") for i in range(count)]
    print(json.dumps(slots))


def start_same(
    db_path: str, app_id: str, workflow_id: str, go: str, redis_url: str | None = None
) -> None:
    from pynenc_wf_testing.engine import start_workflow
    from tests.production import prod_app

    prod_app.build(db_path, app_id, redis_state_url=redis_url)
    _wait_for(go)
    run = start_workflow(prod_app.await_signal, "go", workflow_id=workflow_id)
    print(json.dumps(str(run.invocation_id)))


def _store(kind: str, target: str) -> Any:
    from pynenc_wf_testing.engine.atomic import RedisAtomicStore, SQLiteAtomicStore

    if kind == "sqlite":
        return SQLiteAtomicStore(target, "race")
    import redis

    return RedisAtomicStore(redis.Redis.from_url(target), "race-test:")


def atomic_race(kind: str, target: str, count: int, go: str) -> None:
    """``count`` increments of one counter and ``count`` claims of shared keys."""
    store = _store(kind, target)
    _wait_for(go)
    me = str(os.getpid())
    counted = [store.incr("counter") for _ in range(count)]
    won = [i for i in range(count) if store.put_if_absent(f"claim:{i}", me) is None]
    for i in range(count):
        store.add_member("members", f"{me}:{i}")
    print(json.dumps({"pid": me, "counted": counted, "won": won}))
