"""Workflows of the continue-as-new production tests, bound to each test's app by ``bind``.

pynenc resolves tasks by ``module.function``: ``bind(app)`` replaces each function of this
module by its task of ``app`` (the runners of these tests are threads of the test process).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pynenc import Pynenc

#: Every charge made: (account, month). In-process, like prod_app.LOG.
CHARGES: list[tuple[str, int]] = []


def charge(account: str, month: int) -> str:
    CHARGES.append((account, month))
    return f"{account}:{month}"


def renewal(account: str, month: int = 1, months: int = 3, pause: float = 0.05) -> dict[str, Any]:
    """Charge, sleep ``pause`` seconds (a month), continue as new with the next month."""
    root = renewal.wf.root  # type: ignore[attr-defined]
    # wait_for_task, not .result: a durable wait leaves at once when its runner stops
    root.wait_for_task(root.execute_task(charge, account, month))
    root.sleep(dt.timedelta(seconds=pause))
    if month < months:
        root.continue_as_new(account, month=month + 1, months=months, pause=pause)
    return {"account": account, "months": months}


def inbox(seen: list[str]) -> list[str]:
    """One signal per run, until "stop"."""
    message = inbox.wf.root.wait_for_signal("msg")  # type: ignore[attr-defined]
    seen = [*seen, message]
    if message == "stop":
        return seen
    inbox.wf.root.continue_as_new(seen)  # type: ignore[attr-defined]


def bad_argument(callback: object = None) -> None:
    """Continues as new with an argument pynenc's serializer would store as null."""
    bad_argument.wf.root.continue_as_new(lambda: 1)  # type: ignore[attr-defined]


_FUNCTIONS = {
    "charge": charge, "renewal": renewal, "inbox": inbox, "bad_argument": bad_argument,
}


def bind(app: Pynenc) -> None:
    namespace = globals()
    for name, func in _FUNCTIONS.items():
        namespace[name] = (app.task if name == "charge" else app.workflow)(func)


def reset() -> None:
    CHARGES.clear()
