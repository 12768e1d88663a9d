"""10,000 environments in one process, each with a crash: are memory and time per env flat?

Run: ``.venv/bin/python benchmarks/many_envs.py [--envs N] [--window W] [--json]``.

Each environment runs ``bench_app.chain(0, 3)`` (a workflow of three child steps) with
``crash_after("step#2")``: the worker dies after the second child commits, pynenc's recovery
reroutes the workflow, and the run finishes. The environments are opened one after the other
in this process, as a long test session would. Reported per window of ``W`` environments:
the time per environment, the resident set (RSS) and the number of objects the garbage
collector tracks at the window's end, and the environments of earlier worlds still alive
(``Simulation`` objects of closed environments: 0 when nothing keeps a closed world). The
summary compares the first and the last window, and gives the RSS growth per environment
between them. No assertion on time here: ``tests/test_flat_resources.py`` counts objects.
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

from benchmarks import bench_app
from pynenc_wf_testing import WorkflowEnv
from pynenc_wf_testing.runtime.simulation import Simulation


def _rss_kb() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def one_env(seed: int) -> None:
    """One environment with a crash after the second child step."""
    with WorkflowEnv(seed=seed, log_level="error") as env:
        env.use(bench_app.app)
        env.crash_after("step#2")
        result = env.start(bench_app.chain, 0, 3).result
        if result != 3 or env.crashes != 1:  # (the benchmark must measure the work it claims)
            raise RuntimeError(f"env {seed}: result {result}, crashes {env.crashes}")


def many_envs(envs: int = 10_000, window: int = 1_000) -> dict[str, Any]:
    clock = time.perf_counter  # bound now: freezegun does not reach a local name
    windows: list[dict[str, Any]] = []
    one_env(envs)  # imports and first-use caches before the first window
    gc.collect()
    rss_start = _rss_kb()
    t0 = clock()
    for start in range(0, envs, window):
        t = clock()
        for seed in range(start, min(envs, start + window)):
            one_env(seed)
        count = min(envs, start + window) - start
        elapsed = clock() - t
        gc.collect()
        windows.append({
            "envs": f"{start + 1}-{start + count}",
            "ms_per_env": round(elapsed / count * 1000, 3),
            "rss_kb": _rss_kb(),
            "gc_objects": len(gc.get_objects()),
            "closed_worlds_alive": sum(type(o) is Simulation for o in gc.get_objects()),
        })
    first, last = windows[0], windows[-1]
    grown = last["rss_kb"] - first["rss_kb"]
    return {
        "envs": envs,
        "window": window,
        "wall_seconds": round(clock() - t0, 2),
        "rss_before_kb": rss_start,
        "first_window": first,
        "last_window": last,
        "last_over_first_ms": round(last["ms_per_env"] / first["ms_per_env"], 2),
        "rss_growth_kb_per_env_after_first_window": round(grown / max(1, envs - window), 3),
        "gc_objects_growth_after_first_window": last["gc_objects"] - first["gc_objects"],
        "windows": windows,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--envs", type=int, default=10_000)
    parser.add_argument("--window", type=int, default=1_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.envs < 1 or args.window < 1:
        parser.error("--envs and --window must be >= 1")
    report = many_envs(args.envs, args.window)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    for key, value in report.items():
        if key != "windows":
            print(f"{key:>42}: {value}")
    print(f"\n{'envs':>13} {'ms/env':>8} {'RSS KB':>8} {'gc objects':>10} {'closed alive':>12}")
    for w in report["windows"]:
        print(f"{w['envs']:>13} {w['ms_per_env']:>8} {w['rss_kb']:>8} {w['gc_objects']:>10} "
              f"{w['closed_worlds_alive']:>12}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
