"""Module-level tasks that leave an environment every way they can (tests/test_no_leaks.py)."""

from __future__ import annotations

from typing import Any

import greenlet
from pynenc import Pynenc

app = Pynenc(config_values={"app_id": "leak-apps"})

#: The environment a task closes from inside (set by the test).
ENV: list[Any] = []


@app.task
def noop() -> int:
    return 1


@app.task
def exits() -> None:
    raise SystemExit(3)


@app.task
def interrupted() -> None:
    raise KeyboardInterrupt


@app.task
def greenlet_exit() -> None:
    raise greenlet.GreenletExit


@app.task
def closes_its_env() -> int:
    ENV[0].close()
    return 2


@app.workflow
def calls_noop() -> int:
    return int(noop().result)
