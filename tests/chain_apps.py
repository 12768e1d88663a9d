"""Module-level workflows for the continue-as-new tests (tests/test_continue_as_new.py).

``CHARGES`` stands for the outside world (a crash does not undo it); ``reset()`` clears it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pynenc import Pynenc

from pynenc_wf_testing.engine import enable_workflows

app = enable_workflows(Pynenc(config_values={"app_id": "chain-tests"}))

#: Every charge made: (account, month).
CHARGES: list[tuple[str, int]] = []


def reset() -> None:
    CHARGES.clear()


@app.task
def charge(account: str, month: int) -> str:
    CHARGES.append((account, month))
    return f"{account}:{month}"


@app.workflow
def renewal(account: str, month: int = 1, months: int = 3, per_run: int = 1) -> dict[str, Any]:
    """A monthly renewal loop: charge, sleep 30 days; every ``per_run`` months (0: never) it
    continues as new with the next month."""
    root = renewal.wf.root
    while month <= months:
        root.execute_task(charge, account, month).result
        root.sleep(dt.timedelta(days=30))
        month += 1
        if per_run and month <= months and (month - 1) % per_run == 0:
            root.continue_as_new(account, month=month, months=months, per_run=per_run)
    return {"account": account, "months": months}


@app.workflow
def inbox(seen: list[str]) -> list[str]:
    """Takes one signal per run and continues as new with what it saw, until "stop"."""
    message = inbox.wf.root.wait_for_signal("msg")
    seen = [*seen, message]
    if message == "stop":
        return seen
    inbox.wf.root.continue_as_new(seen)


@app.workflow
def bad_arguments(kind: str) -> None:
    """continue_as_new with arguments that cannot make the next run."""
    root = bad_arguments.wf.root
    if kind == "int keys":
        root.continue_as_new({1: "a"})
    if kind == "lambda":
        root.continue_as_new(lambda: 1)
    root.continue_as_new("a", "b", "c")  # one positional too many


@app.task
def member() -> None:
    """A plain task of a workflow that tries to end the workflow."""
    renewal.wf.root.continue_as_new("x")


@app.workflow
def calls_member() -> None:
    calls_member.wf.root.execute_task(member).result


@app.workflow
def parent_of_chain() -> Any:
    return parent_of_chain.wf.root.execute_task(renewal, "sub", 1, 2, 1).result
