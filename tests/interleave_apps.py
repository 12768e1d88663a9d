"""Module-level apps for the interleaving tests (tests/test_interleavings.py).

pynenc resolves a task by ``module.function``, so every task lives here. ``EFFECTS`` stands
for the outside world; ``reset()`` clears it before every run of a check.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pynenc import Pynenc

from pynenc_wf_testing import non_idempotent
from pynenc_wf_testing.engine import enable_workflows

app = enable_workflows(Pynenc(config_values={"app_id": "interleave-tests"}))

#: A workflow app that did not enable the engine (no signals, no cancellation).
plain_app = Pynenc(config_values={"app_id": "interleave-tests-plain"})

HOUR = dt.timedelta(hours=1)

EFFECTS: list[str] = []


def reset() -> None:
    EFFECTS.clear()


@app.task
def effect(what: str) -> str:
    EFFECTS.append(what)
    return what


@non_idempotent
@app.task
def charge(order: str) -> str:
    EFFECTS.append(f"charge:{order}")
    return f"ch-{order}"


@app.workflow
def go_or_expire(key: str) -> str:
    """Waits an hour for "go"."""
    got = go_or_expire.wf.root.wait_for_signal("go", timeout=HOUR, default=None)
    return "expired" if got is None else f"go:{got}"


@app.workflow
def both_signals_break_it(key: str) -> str:
    """A bug only two events together reach: "a" and "b" both within their hours."""
    root = both_signals_break_it.wf.root
    a = root.wait_for_signal("a", timeout=HOUR, default=None)
    b = root.wait_for_signal("b", timeout=HOUR, default=None)
    if a is not None and b is not None:
        raise ValueError("a and b both arrived")
    return "ok"


@app.workflow
def waits_forever_after_go(key: str) -> str:
    """Once "go" arrives it waits for "never", without a timeout: a deadlock."""
    root = waits_forever_after_go.wf.root
    if root.wait_for_signal("go", timeout=HOUR, default=None) is not None:
        root.wait_for_signal("never")
    return "done"


@app.workflow
def needs_a_signal(key: str) -> str:
    """Cannot finish without "go" (no timeout)."""
    return str(needs_a_signal.wf.root.wait_for_signal("go"))


@app.workflow
def halts_for_approval(key: str) -> str:
    root = halts_for_approval.wf.root
    root.halt("needs approval")
    root.execute_task(effect, f"after-halt:{key}").result
    return "resumed"


@app.workflow
def raises_on_go(key: str) -> str:
    """Raises KeyError when "go" arrives: not an engine outcome of an event."""
    got = raises_on_go.wf.root.wait_for_signal("go", timeout=HOUR, default=None)
    if got is not None:
        raise KeyError(got)
    return "quiet"


@app.workflow
def fails_anyway(key: str) -> str:
    """Fails the same way with or without events (the golden run raises too)."""
    fails_anyway.wf.root.wait_for_signal("go", timeout=HOUR, default=None)
    raise RuntimeError("always")


@app.workflow
def charges_once(order: str) -> str:
    root = charges_once.wf.root
    root.wait_for_signal("go", timeout=HOUR, default=None)
    return str(root.execute_task(charge, order).result)


@app.workflow
def timed(key: str) -> str:
    """Records when it started waiting and when it woke up."""
    root = timed.wf.root
    started = root.now()
    root.sleep(HOUR)
    return f"{started.isoformat()} -> {root.now().isoformat()}"


@app.task
def plain_task(x: int) -> int:
    return x


@plain_app.workflow
def plain_engine_less(key: str) -> str:
    return key


def payloads() -> list[Any]:
    return [{"by": "ann"}]
