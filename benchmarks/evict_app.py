"""The app of ``benchmarks/evicted_waits.py``: a workflow of hourly durable (engine) sleeps."""

from __future__ import annotations

import datetime as dt

from pynenc import Pynenc

from pynenc_wf_testing.engine import enable_workflows

app = enable_workflows(Pynenc(config_values={"app_id": "bench-evict"}))


@app.workflow
def hourly_durable(hours: int) -> int:
    """``hours`` durable sleeps of one hour (``wf.root.sleep``: each one a wait that can
    evict)."""
    root = hourly_durable.wf.root
    for _ in range(hours):
        root.sleep(dt.timedelta(hours=1))
    return hours
