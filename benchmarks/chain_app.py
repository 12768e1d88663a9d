"""The renewal loop of ``benchmarks/continue_as_new.py`` (pynenc needs module-level tasks)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pynenc import Pynenc

from pynenc_wf_testing.engine import enable_workflows

app = enable_workflows(
    Pynenc(config_values={"app_id": "chain-bench", "logging_level": "error"})
)

#: One list per execution of the workflow body: the months it went through (recorded ones
#: replayed, then new ones), in order.
EXECUTIONS: list[list[int]] = []


@app.task
def charge(account: str, month: int) -> str:
    return f"{account}:{month}"


@app.workflow
def renewal(account: str, month: int, months: int, chain: bool) -> dict[str, Any]:
    """Charge, then sleep 30 days, for each month; with ``chain`` it continues as new after
    every month instead of looping."""
    passes: list[int] = []
    EXECUTIONS.append(passes)
    root = renewal.wf.root
    while month <= months:
        passes.append(month)
        root.execute_task(charge, account, month).result
        root.sleep(dt.timedelta(days=30))
        month += 1
        if chain and month <= months:
            root.continue_as_new(account, month, months, chain)
    return {"account": account, "months": months}
