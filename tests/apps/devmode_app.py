"""An app in pynenc's dev mode (tasks run synchronously in the caller) for restore tests."""

from __future__ import annotations

from pynenc.builder import PynencBuilder

app = PynencBuilder().app_id("wf-tests-devmode").memory().dev_mode(force_sync_tasks=True).build()


@app.task
def double(x: int) -> int:
    return 2 * x
