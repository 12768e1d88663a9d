"""A second app, never handed to a WorkflowEnv by the tests that import it."""

from __future__ import annotations

from pynenc import Pynenc

app = Pynenc(config_values={"app_id": "wf-tests-other"})


@app.task
def echo(x: int) -> int:
    return x
