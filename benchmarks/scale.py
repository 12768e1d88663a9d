"""Fleet scale: N concurrent 3-step workflows in one WorkflowEnv.

    .venv/bin/python benchmarks/scale.py                 # 1k, 10k, 50k (each in a fresh process)
    .venv/bin/python benchmarks/scale.py --sizes 1000 10000 --json
    .venv/bin/python benchmarks/scale.py --tracemalloc   # + exact Python heap per workflow (slower)

Every workflow (``bench_app.chain(w, 3)``) calls 3 child tasks in sequence. All N are started
first (routed, nothing runs), then ``env.run_until_idle()`` runs them interleaved by the seeded
scheduler until every one is done: N workflows in flight at once, 4N invocations, 3N child
steps. Each size runs in its own child process so that memory figures do not mix:

  start s     routing the N workflows (``env.start``)
  run s       running them all to completion
  total s     open + start + run + close of the environment
  steps/s     3N / (start + run)
  peak RSS    the process's maximum resident set minus its resident set before the environment
              opened, per workflow (everything: store, simulator, greenlets, allocator slack)
  heap/wf     with --tracemalloc: Python heap held per workflow once all are done (the durable
              store plus the simulator's history and ledger), and its peak during the run

The harness runs without a recursion limit problem at any size: each invocation has its own
greenlet stack, nothing nests on the Python stack of the test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

STEPS = 3
TARGET_10K_SECONDS = 5.0
TARGET_KB_PER_WORKFLOW = 15.0
ISSUE_INLINE_STEPS_PER_SECOND = 3_000.0  # (b) on the issue's machine (benchmarks/run.py)


def _rss_kb() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def measure(n: int, *, trace: bool = False, seed: int = 0) -> dict[str, Any]:
    """Run N concurrent workflows in this process and return the figures."""
    import gc
    import resource
    import time
    import tracemalloc

    from benchmarks import bench_app
    from pynenc_wf_testing import WorkflowEnv

    clock = time.perf_counter  # bound now: freezegun does not reach a local name
    gc.collect()
    rss_before = _rss_kb()
    if trace:
        tracemalloc.start()
    t0 = clock()
    with WorkflowEnv(seed=seed, log_level="error", max_steps=10 * n + 1000) as env:
        env.use(bench_app.app)
        t1 = clock()
        runs = [env.start(bench_app.chain, w, STEPS) for w in range(n)]
        t2 = clock()
        env.run_until_idle()
        t3 = clock()
        done = all(run.done for run in runs)
        results_ok = done and all(
            run.result == bench_app.expected_chain(w, STEPS) for w, run in enumerate(runs)
        )
        invocations = len(env._require_sim().invocations)
        if trace:
            del runs
            gc.collect()
            held, peak = tracemalloc.get_traced_memory()
    t4 = clock()
    if trace:
        tracemalloc.stop()
    maxrss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    figures: dict[str, Any] = {
        "workflows": n,
        "invocations": invocations,
        "child_steps": STEPS * n,
        "all_done": done,
        "results_ok": results_ok,
        "start_seconds": t2 - t1,
        "run_seconds": t3 - t2,
        "total_seconds": t4 - t0,
        "steps_per_second": STEPS * n / (t3 - t1),
        "peak_rss_mb": (maxrss_kb - rss_before) / 1024,
        "peak_rss_kb_per_workflow": (maxrss_kb - rss_before) / n,
        "recursion_limit": sys.getrecursionlimit(),
    }
    if trace:
        figures["heap_kb_per_workflow"] = held / 1024 / n
        figures["peak_heap_kb_per_workflow"] = peak / 1024 / n
    return figures


def measure_in_subprocess(n: int, *, trace: bool) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--one", str(n)]
    if trace:
        cmd.append("--tracemalloc")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def calibrate(rounds: int = 7) -> float:
    """(b) of ``benchmarks/run.py`` (the simplest nested runner on pynenc's stock memory
    components, 20 x 10) on this machine, in steps/s (median): the yardstick that scales this
    machine's figures to the issue's, where (b) made ~3,000 steps/s."""
    import statistics

    from benchmarks.run import run_inline

    run_inline(20, 10)  # warm-up
    times = [run_inline(20, 10)[0] for _ in range(rounds)]
    return 200 / statistics.median(times)


def format_table(rows: list[dict[str, Any]], inline_sps: float | None = None) -> str:
    lines = []
    header = (
        f"{'workflows':>10} {'invocations':>12} {'start s':>8} {'run s':>8} {'total s':>8} "
        f"{'steps/s':>9} {'peak RSS MB':>12} {'RSS KB/wf':>10}"
    )
    trace = any("heap_kb_per_workflow" in r for r in rows)
    if trace:
        header += f" {'heap KB/wf':>11} {'peak heap':>10}"
    lines.append(header)
    lines.append("-" * len(header))
    for r in rows:
        line = (
            f"{r['workflows']:>10,} {r['invocations']:>12,} {r['start_seconds']:>8.2f} "
            f"{r['run_seconds']:>8.2f} {r['total_seconds']:>8.2f} {r['steps_per_second']:>9,.0f} "
            f"{r['peak_rss_mb']:>12.1f} {r['peak_rss_kb_per_workflow']:>10.1f}"
        )
        if trace and "heap_kb_per_workflow" in r:
            line += (
                f" {r['heap_kb_per_workflow']:>11.1f} {r['peak_heap_kb_per_workflow']:>10.1f}"
            )
        if not r["results_ok"]:
            line += "  WRONG RESULTS"
        lines.append(line)
    lines.append(
        f"  {STEPS}-step workflows, all started then run concurrently; each size in a fresh "
        f"process; recursion limit {rows[0]['recursion_limit'] if rows else '?'} (untouched)."
    )
    ten_k = next((r for r in rows if r["workflows"] == 10_000), None)
    if ten_k is not None and "heap_kb_per_workflow" in ten_k:
        lines.append("  (timed with tracemalloc on, several times slower: run without it for times)")
    elif ten_k is not None:
        verdict = "OK" if ten_k["total_seconds"] <= TARGET_10K_SECONDS else "MISSED"
        lines.append(
            f"  10,000 workflows: {ten_k['total_seconds']:.2f} s total here (target <= "
            f"{TARGET_10K_SECONDS:g} s) {verdict}"
        )
        if inline_sps:
            scaled = ten_k["total_seconds"] * inline_sps / ISSUE_INLINE_STEPS_PER_SECOND
            verdict = "OK" if scaled <= TARGET_10K_SECONDS else "MISSED"
            lines.append(
                f"  scaled by (b) (the nested runner of benchmarks/run.py makes "
                f"{inline_sps:,.0f} steps/s here, {ISSUE_INLINE_STEPS_PER_SECOND:,.0f} on the "
                f"issue's machine): {scaled:.2f} s {verdict}"
            )
    traced = sorted(
        (r for r in rows if "heap_kb_per_workflow" in r), key=lambda r: r["workflows"]
    )
    if len(traced) >= 2:
        # What one more workflow costs: the growth of the held heap between the two largest
        # sizes (a small size also carries the environment's fixed cost, amortised later).
        small, big = traced[-2], traced[-1]
        marginal = (
            big["heap_kb_per_workflow"] * big["workflows"]
            - small["heap_kb_per_workflow"] * small["workflows"]
        ) / (big["workflows"] - small["workflows"])
        verdict = "OK" if marginal <= TARGET_KB_PER_WORKFLOW else "MISSED"
        lines.append(
            f"  Python heap held per additional workflow ({small['workflows']:,} -> "
            f"{big['workflows']:,}): {marginal:.1f} KB (target <= "
            f"{TARGET_KB_PER_WORKFLOW:g} KB) {verdict}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 50_000])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--tracemalloc", action="store_true", help="also trace the Python heap (slower)"
    )
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # child process mode
    parser.add_argument(
        "--no-calibrate", action="store_true",
        help="skip timing (b), the yardstick that scales the 10k figure to the issue's machine",
    )
    parser.add_argument(
        "--in-process", action="store_true", help="measure in this process (no subprocesses)"
    )
    args = parser.parse_args(argv)
    if args.one is not None:
        print(json.dumps(measure(args.one, trace=args.tracemalloc)))
        return 0
    rows = [
        measure(n, trace=args.tracemalloc)
        if args.in_process
        else measure_in_subprocess(n, trace=args.tracemalloc)
        for n in args.sizes
    ]
    inline_sps = None if args.no_calibrate else calibrate()
    if args.json:
        report = {
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpu_count": os.cpu_count(),
            "sizes": rows,
            "inline_steps_per_second": inline_sps,
            "issue_inline_steps_per_second": ISSUE_INLINE_STEPS_PER_SECOND,
        }
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        print(format_table(rows, inline_sps))
    return 0 if all(r["results_ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
