"""A month of per-minute cron on virtual time: ``advance(days=30)``, 43,200 firings.

Run: ``.venv/bin/python benchmarks/cron_month.py [--days N] [--json]``. Reports the wall and CPU
time of the whole advance (and the machine's load average at the end) and the time per firing in the first and the last simulated day (their
ratio shows whether a firing gets dearer as records pile up; no assertion on time here:
``tests/test_cron_scaling.py`` counts work instead).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import cron_app
from pynenc_wf_testing import WorkflowEnv


def cron_month(days: int = 30) -> dict[str, Any]:
    """``advance(days=1)`` ``days`` times on an app with one per-minute cron task."""
    cron_app.FIRED.clear()
    gc.collect()
    per_day: list[float] = []
    t0 = time.perf_counter()
    c0 = time.process_time()
    with WorkflowEnv(seed=0, log_level="error") as env:
        env.use(cron_app.app)
        for _ in range(days):
            fired = len(cron_app.FIRED)
            t = time.perf_counter()
            env.advance(days=1)
            per_day.append((time.perf_counter() - t) / max(1, len(cron_app.FIRED) - fired))
    total = time.perf_counter() - t0
    cpu = time.process_time() - c0
    firings = len(cron_app.FIRED)
    return {
        "days": days,
        "firings": firings,
        "wall_seconds": round(total, 3),
        "ms_per_firing": round(total / max(1, firings) * 1000, 4),
        "cpu_seconds": round(cpu, 3),
        "cpu_ms_per_firing": round(cpu / max(1, firings) * 1000, 4),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "first_day_ms_per_firing": round(per_day[0] * 1000, 4),
        "last_day_ms_per_firing": round(per_day[-1] * 1000, 4),
        "last_over_first": round(per_day[-1] / per_day[0], 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    report = cron_month(args.days)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for key, value in report.items():
            print(f"{key:>26}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
