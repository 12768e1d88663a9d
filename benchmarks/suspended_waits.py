"""What waiting workflows cost in production: pynenc's ThreadRunner + SQLite backend.

For each N (default 10 and 100): half the workflows wait for a signal, half sleep until one
common instant. Once all are suspended the script measures, in this process (the runner
runs in a thread of it):

- threads: live ThreadRunner threads (the timer service is one) and all threads of the process;
- idle store operations per second: calls to the state backend, the orchestrator and the
  engine's atomic store over ``--idle`` seconds (pynenc's runner loop and the timer service
  included; the broker's own polling is not counted);
- resident memory (VmRSS);
- wake-up latency after the deadline: when the timer service routed each sleeper again
  (``deadline_rerouted_*``) and when its body went past its sleep (``deadline_latency_*``,
  which adds the runner picking it up and re-executing it), minus the deadline; and after a
  signal (when the waiter went past its wait, minus when the signal was
  sent; all N/2 signals are sent back to back).

Usage: ``python benchmarks/suspended_waits.py [--workflows 10,100] [--idle 5] [--json]
[--redis-url redis://...]`` (with a Redis URL the state backend, and so the workflow data and
the engine's atomic store, is pynenc-redis' in that server; the broker and orchestrator stay
SQLite: pynenc-redis 0.3's do not build with pynenc 0.4).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pynenc import Pynenc, PynencBuilder
from pynenc.invocation.status import InvocationStatus

from pynenc_wf_testing.engine import signal_workflow
from pynenc_wf_testing.engine.atomic import atomic_store


def signal_waiter(name: str) -> float:
    root = signal_waiter.wf.root  # type: ignore[attr-defined]
    root.wait_for_signal(name)
    return float(root.now().timestamp())


def deadline_sleeper(instant: str) -> float:
    root = deadline_sleeper.wf.root  # type: ignore[attr-defined]
    root.sleep_until(dt.datetime.fromisoformat(instant))
    return float(root.now().timestamp())


_FUNCTIONS = (signal_waiter, deadline_sleeper)  # before build() rebinds the names to tasks


def build(db_path: str, app_id: str, redis_url: str | None = None) -> Pynenc:
    builder = (
        PynencBuilder()
        .app_id(app_id)
        .sqlite(db_path)
        .thread_runner(min_threads=1, max_threads=8)
        .custom_config(logging_level="error", log_use_colors=False)
    )
    if redis_url is not None:  # workflow data and the engine's atomic store in Redis
        builder = builder.custom_config(state_backend_cls="RedisStateBackend", redis_url=redis_url)
    app = builder.enable_workflows().build()
    namespace = globals()
    for func in _FUNCTIONS:
        namespace[func.__name__] = app.workflow(func)
    return app


class Counter:
    """Counts calls to the public methods of the store objects (instance-level wrappers,
    in this benchmark only)."""

    def __init__(self, *targets: Any) -> None:
        self.calls = 0
        self.lock = threading.Lock()
        for target in targets:
            for name in dir(type(target)):
                if name.startswith("_") or name in ("app", "conf", "client"):
                    continue
                method = getattr(target, name, None)
                if callable(method) and not isinstance(method, type):
                    setattr(target, name, self._wrap(method))

    def _wrap(self, method: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            with self.lock:
                self.calls += 1
            return method(*args, **kwargs)

        return counted


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def p95(values: list[float]) -> float:
    """The 95th percentile (inclusive method: a value between two samples)."""
    if len(values) < 2:
        return round(values[0], 3)
    return round(statistics.quantiles(values, n=20, method="inclusive")[18], 3)


def rerouted_at(app: Pynenc, run: Any, after: float) -> float:
    """When the timer service routed ``run`` again (its first REROUTED status after ``after``)."""
    return min(
        h.status_record.timestamp.timestamp()
        for h in app.state_backend.get_history(run.invocation_id)
        if h.status_record.status == InvocationStatus.REROUTED
        and h.status_record.timestamp.timestamp() >= after
    )


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def measure(
    n: int, idle: float, workdir: Path, margin: float = 30.0, redis_url: str | None = None,
    per_workflow: float = 0.2,
) -> dict[str, Any]:
    from pynenc.runner.thread_runner import ThreadRunner

    Pynenc._clear_instances()
    app = build(str(workdir / f"bench-{n}.db"), f"suspend-bench-{n}-{time.time_ns()}", redis_url)
    runner = ThreadRunner(app)
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    baseline_threads = threading.active_count()
    half = n // 2
    # far enough for every sleeper to be suspended and the idle window to pass first
    deadline = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=margin + n * per_workflow + idle)
    waiters = [signal_waiter("go") for _ in range(half)]  # type: ignore[call-arg]
    sleepers = [deadline_sleeper(deadline.isoformat()) for _ in range(n - half)]  # type: ignore[call-arg]
    runs = waiters + sleepers

    def status(run: Any) -> Any:
        return app.orchestrator.get_invocation_status(run.invocation_id)

    began = time.monotonic()
    bound = max(600.0, n * 0.5)  # generous: 10,000 take minutes on a loaded 2-core machine
    wait_until(lambda: all(status(r) == InvocationStatus.PAUSED for r in runs), bound, "suspension")
    suspended_after = time.monotonic() - began
    wait_until(
        lambda: sum(1 for t in list(runner.threads.values()) if t.thread.is_alive()) <= 1,
        60, "threads to end",
    )
    runner_threads = sum(1 for t in list(runner.threads.values()) if t.thread.is_alive())
    process_threads = threading.active_count()
    counter = Counter(app.state_backend, app.orchestrator, atomic_store(app))
    time.sleep(idle)
    idle_ops = counter.calls / idle
    memory = rss_mb()
    # the figures of the idle phase, at once on stderr: a large N takes long to wake up
    print(
        json.dumps({
            "state_backend": type(app.state_backend).__name__, "workflows": n,
            "suspended_after_seconds": round(suspended_after, 2),
            "runner_threads_held": runner_threads, "process_threads": process_threads,
            "idle_store_ops_per_second": round(idle_ops, 1), "rss_mb": round(memory, 1),
        }),
        file=sys.stderr, flush=True,
    )
    if dt.datetime.now(dt.UTC) >= deadline:
        raise SystemExit("the deadline passed before the idle window ended: raise the margin")
    wait_until(lambda: all(status(r).is_final() for r in sleepers), bound, "the sleepers")
    deadline_lat = [r.result - deadline.timestamp() for r in sleepers]
    rerouted_lat = [rerouted_at(app, r, deadline.timestamp()) - deadline.timestamp() for r in sleepers]
    sent: list[float] = []
    for run in waiters:
        sent.append(time.time())
        signal_workflow(app, run, "go")
    wait_until(lambda: all(status(r).is_final() for r in waiters), bound, "the waiters")
    signal_lat = [run.result - at for run, at in zip(waiters, sent, strict=True)]
    runner.stop_runner_loop()
    thread.join(10)
    return {
        "state_backend": type(app.state_backend).__name__,
        "workflows": n,
        "suspended_after_seconds": round(suspended_after, 2),
        "runner_threads_held": runner_threads,
        "process_threads": process_threads,
        "process_threads_before": baseline_threads,
        "idle_store_ops_per_second": round(idle_ops, 1),
        "rss_mb": round(memory, 1),
        "deadline_rerouted_median": round(statistics.median(rerouted_lat), 3),
        "deadline_rerouted_p95": p95(rerouted_lat),
        "deadline_rerouted_max": round(max(rerouted_lat), 3),
        "deadline_latency_median": round(statistics.median(deadline_lat), 3),
        "deadline_latency_p95": p95(deadline_lat),
        "deadline_latency_max": round(max(deadline_lat), 3),
        "signal_latency_median": round(statistics.median(signal_lat), 3),
        "signal_latency_p95": p95(signal_lat),
        "signal_latency_max": round(max(signal_lat), 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workflows", default="10,100", help="comma-separated values of N")
    parser.add_argument("--idle", type=float, default=5.0, help="idle window, seconds")
    parser.add_argument(
        "--margin", type=float, default=30.0,
        help="seconds (plus --per-workflow per workflow) before the sleepers' deadline",
    )
    parser.add_argument(
        "--per-workflow", type=float, default=0.2,
        help="seconds added to the margin per workflow (their suspension must fit before it)",
    )
    parser.add_argument(
        "--redis-url", default=None,
        help="keep the state backend (and the engine's atomic store) in this Redis server",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    sizes = [int(x) for x in args.workflows.split(",")]
    with tempfile.TemporaryDirectory() as workdir:
        rows = [
            measure(
                n, args.idle, Path(workdir), args.margin, args.redis_url, args.per_workflow
            )
            for n in sizes
        ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(str(row[k]) for k in keys) + " |")
    return 0


if __name__ == "__main__":
    # pynenc resolves tasks by module: run the functions from the importable module
    from benchmarks import suspended_waits

    raise SystemExit(suspended_waits.main())
