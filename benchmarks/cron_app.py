"""A per-minute cron task for ``benchmarks/cron_month.py`` (pynenc needs module-level tasks)."""

from __future__ import annotations

from pynenc import Pynenc
from pynenc.trigger.trigger_builder import TriggerBuilder

app = Pynenc(config_values={"app_id": "cron-bench", "logging_level": "error"})

#: Firings seen (the task body appends its virtual start minute).
FIRED: list[int] = []


@app.task(triggers=TriggerBuilder().on_cron("* * * * *"))
def tick() -> int:
    """Runs every minute."""
    FIRED.append(1)
    return len(FIRED)
