"""What waiting workflows cost in production: pynenc's ThreadRunner + SQLite backend.

For each N (default 10 and 100): half the workflows wait for a signal, half sleep until one
common instant (with ``--wake K``: K sleepers share that instant and K waiters are
signalled, the other sleepers are due in a year and the other waiters stay waiting, so a
large N measures a wake-up among N waiting rather than a burst of N/2). Once all are
suspended the script measures, in this process (the runner runs in a thread of it):

- threads: live ThreadRunner threads (the timer service is one) and all threads of the process;
- idle store operations per second: calls to the state backend, the orchestrator and the
  engine's atomic store over ``--idle`` seconds (pynenc's runner loop and the timer service
  included; the broker's own polling is not counted);
- resident memory (VmRSS);
- wake-up latency after the deadline, in three steps from the deadline: the timer service
  routed each of the K sleepers again (``deadline_rerouted_*``), the runner picked it up (its RUNNING
  status, ``deadline_picked_up_*``), its body went past its sleep (``deadline_latency_*``);
  and after a signal (when the waiter went past its wait, minus when the signal was sent;
  all K signals are sent back to back);
- store operations per wake-up (``*_store_ops_per_wake``): the calls counted as above while
  the K sleepers (or waiters, the signalling included) wake, less the idle rate over that
  time, divided by K: a figure that does not depend on the machine's load. The
  benchmark's own polling is not counted;
- the runner's floor (``plain_burst_*``): K trivial pynenc tasks (no engine) routed back to
  back on the same runner, from the first routing to each one's SUCCESS: how fast this
  runner takes up a burst of that size at all, under the same load.

Usage: ``python benchmarks/suspended_waits.py [--workflows 10,100] [--idle 5] [--json]
[--redis-url redis://...] [--wake K] [--threads 8] [--loop-sleep 0.1] [--start-batch 200]`` (with a Redis URL the state backend, and so the workflow data and
the engine's atomic store, is pynenc-redis' in that server; the broker and orchestrator stay
SQLite: pynenc-redis 0.3's do not build with pynenc 0.4).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pynenc import Pynenc, PynencBuilder
from pynenc.invocation.status import InvocationStatus

from pynenc_wf_testing.engine import signal_workflow
from pynenc_wf_testing.engine.atomic import atomic_store

T = TypeVar("T")


def signal_waiter(name: str) -> float:
    root = signal_waiter.wf.root  # type: ignore[attr-defined]
    root.wait_for_signal(name)
    return float(root.now().timestamp())


def deadline_sleeper(instant: str) -> float:
    root = deadline_sleeper.wf.root  # type: ignore[attr-defined]
    root.sleep_until(dt.datetime.fromisoformat(instant))
    return float(root.now().timestamp())


def plain(i: int) -> int:
    return i


_FUNCTIONS = (signal_waiter, deadline_sleeper)
_TASKS = (plain,)  # before build() rebinds the names to tasks


def build(
    db_path: str, app_id: str, redis_url: str | None = None, threads: int = 8,
    loop_sleep: float | None = None,
) -> Pynenc:
    """``threads``: the ThreadRunner's ``max_threads`` (0: pynenc's default, the CPU count);
    ``loop_sleep``: its ``runner_loop_sleep_time_sec`` (None: pynenc's default, 0.1 s)."""
    builder = (
        PynencBuilder()
        .app_id(app_id)
        .sqlite(db_path)
        .thread_runner(min_threads=1, max_threads=threads)
        .custom_config(logging_level="error", log_use_colors=False)
    )
    if redis_url is not None:  # workflow data and the engine's atomic store in Redis
        builder = builder.custom_config(state_backend_cls="RedisStateBackend", redis_url=redis_url)
    if loop_sleep is not None:
        builder = builder.custom_config(runner_loop_sleep_time_sec=loop_sleep)
    app = builder.enable_workflows().build()
    namespace = globals()
    for func in _FUNCTIONS:
        namespace[func.__name__] = app.workflow(func)
    for plain_func in _TASKS:
        namespace[plain_func.__name__] = app.task(plain_func)
    return app


class Counter:
    """Counts calls to the public methods of the store objects (instance-level wrappers,
    in this benchmark only); calls made inside :meth:`uncounted` (the benchmark's own
    polling) are not counted."""

    def __init__(self, *targets: Any) -> None:
        self.calls = 0
        self.lock = threading.Lock()
        self._local = threading.local()
        for target in targets:
            for name in dir(type(target)):
                if name.startswith("_") or name in ("app", "conf", "client"):
                    continue
                method = getattr(target, name, None)
                if callable(method) and not isinstance(method, type):
                    setattr(target, name, self._wrap(method))

    def _wrap(self, method: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            if not getattr(self._local, "off", False):
                with self.lock:
                    self.calls += 1
            return method(*args, **kwargs)

        return counted

    def uncounted(self, fn: Callable[[], T]) -> T:
        self._local.off = True
        try:
            return fn()
        finally:
            self._local.off = False


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


def status_at(app: Pynenc, run: Any, status: InvocationStatus, after: float) -> float:
    """When ``run`` first reached ``status`` at or after ``after`` (from its history)."""
    return float(min(
        h.status_record.timestamp.timestamp()
        for h in app.state_backend.get_history(run.invocation_id)
        if h.status_record.status == status and h.status_record.timestamp.timestamp() >= after
    ))


def wait_for_status(
    app: Pynenc, runs: list[Any], done: Callable[[InvocationStatus], bool], timeout: float,
    what: str, give_up: Callable[[], bool] = lambda: False,
) -> bool:
    """Wait until ``done(status)`` holds for every run (False: ``give_up()`` came first).
    Reads only the runs not done yet, and stops a pass at the first one still going, so the
    benchmark's own polling does not load the store it measures."""
    left = list(runs)
    deadline = time.monotonic() + timeout
    while left:
        while left and done(app.orchestrator.get_invocation_status(left[0].invocation_id)):
            left.pop(0)
        if not left:
            break
        if give_up():
            return False
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout} s waiting for {what} ({len(left)} left)")
        time.sleep(0.05)
    return True


def start_many(task: Any, args: tuple[Any, ...], count: int, batch: int) -> list[Any]:
    """Route ``count`` runs of ``task(*args)``: by pynenc's batch routing
    (``task.parallelize``, one registration per ``batch`` runs) when ``batch`` > 1, else one
    call at a time (each a full routing: the benchmark's slowest phase at 10,000)."""
    if batch <= 1:
        return [task(*args) for _ in range(count)]
    runs: list[Any] = []
    for start in range(0, count, batch):
        size = min(batch, count - start)
        runs.extend(task.parallelize([args] * size).invocations)
    return runs


def figures(prefix: str, values: list[float]) -> dict[str, float]:
    return {
        f"{prefix}_median": round(statistics.median(values), 3),
        f"{prefix}_p95": p95(values),
        f"{prefix}_max": round(max(values), 3),
    }


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def measure(
    n: int, idle: float, workdir: Path, margin: float = 30.0, redis_url: str | None = None,
    per_workflow: float = 0.2, threads: int = 8, loop_sleep: float | None = None,
    wake: int | None = None, start_batch: int = 200,
) -> dict[str, Any]:
    from pynenc.runner.thread_runner import ThreadRunner

    Pynenc._clear_instances()
    app = build(
        str(workdir / f"bench-{n}.db"), f"suspend-bench-{n}-{time.time_ns()}", redis_url, threads,
        loop_sleep,
    )
    runner = ThreadRunner(app)
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    baseline_threads = threading.active_count()
    half = n // 2
    woken = n - half if wake is None else min(wake, half)
    paused = InvocationStatus.PAUSED
    bound = max(600.0, n * 0.5)  # generous: 10,000 take minutes on a loaded 2-core machine
    began = time.monotonic()
    # first those that stay waiting (signal waiters, sleepers due in a year), then the
    # sleepers due together, with a deadline that leaves time for them and the idle window
    far = (dt.datetime.now(dt.UTC) + dt.timedelta(days=365)).isoformat()
    waiters = start_many(signal_waiter, ("go",), half, start_batch)
    staying = start_many(deadline_sleeper, (far,), n - half - woken, start_batch)
    wait_for_status(app, waiters + staying, lambda s: s == paused, bound, "suspension")
    deadline = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=margin + woken * per_workflow + idle)
    sleepers = start_many(deadline_sleeper, (deadline.isoformat(),), woken, start_batch)

    def passed() -> bool:
        return dt.datetime.now(dt.UTC) >= deadline

    # (a sleeper whose deadline passed before it suspended would never be PAUSED: give up)
    if not wait_for_status(app, sleepers, lambda s: s == paused, bound, "suspension", passed):
        raise SystemExit("the deadline passed before every workflow suspended: raise --per-workflow")
    suspended_after = time.monotonic() - began
    signalled = waiters[:woken]
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
    load = os.getloadavg()[0]
    # the figures of the idle phase, at once on stderr: a large N takes long to wake up
    print(
        json.dumps({
            "state_backend": type(app.state_backend).__name__, "workflows": n,
            "suspended_after_seconds": round(suspended_after, 2),
            "runner_threads_held": runner_threads, "process_threads": process_threads,
            "idle_store_ops_per_second": round(idle_ops, 1), "rss_mb": round(memory, 1),
            "load_average": round(load, 1),
        }),
        file=sys.stderr, flush=True,
    )
    if passed():
        raise SystemExit("the deadline passed before the idle window ended: raise the margin")
    time.sleep(max(0.0, deadline.timestamp() - time.time()))
    calls_before, phase = counter.calls, time.monotonic()
    counter.uncounted(
        lambda: wait_for_status(app, sleepers, lambda s: s.is_final(), bound, "the sleepers")
    )
    # net of what the idle runner and service do meanwhile
    deadline_ops = (
        counter.calls - calls_before - idle_ops * (time.monotonic() - phase)
    ) / len(sleepers)
    at = deadline.timestamp()
    deadline_lat = [r.result - at for r in sleepers]
    rerouted = [status_at(app, r, InvocationStatus.REROUTED, at) for r in sleepers]
    picked = [
        status_at(app, r, InvocationStatus.RUNNING, when) - at
        for r, when in zip(sleepers, rerouted, strict=True)
    ]
    sent: list[float] = []
    calls_before, phase = counter.calls, time.monotonic()
    for run in signalled:
        sent.append(time.time())
        signal_workflow(app, run, "go")
    counter.uncounted(
        lambda: wait_for_status(app, signalled, lambda s: s.is_final(), bound, "the waiters")
    )
    signal_ops = (
        counter.calls - calls_before - idle_ops * (time.monotonic() - phase)
    ) / len(signalled)
    signal_lat = [run.result - when for run, when in zip(signalled, sent, strict=True)]
    # the runner's floor: as many trivial tasks, routed back to back, no engine involved
    began_plain = time.time()
    plain_runs = [plain(i) for i in range(len(sleepers))]  # type: ignore[call-arg]
    wait_for_status(app, plain_runs, lambda s: s.is_final(), bound, "the plain tasks")
    # pynenc writes the SUCCESS history entry just after the status: wait for the entry too
    wait_until(
        lambda: all(
            any(
                h.status_record.status == InvocationStatus.SUCCESS
                for h in app.state_backend.get_history(r.invocation_id)
            )
            for r in plain_runs
        ),
        bound,
        "the plain tasks' SUCCESS history entries",
    )
    plain_lat = [
        status_at(app, r, InvocationStatus.SUCCESS, began_plain) - began_plain for r in plain_runs
    ]
    load = max(load, os.getloadavg()[0])
    runner.stop_runner_loop()
    thread.join(10)
    return {
        "state_backend": type(app.state_backend).__name__,
        "workflows": n,
        "woken_at_once": woken,
        "runner_max_threads": runner.max_threads,
        "runner_loop_sleep_sec": runner.conf.runner_loop_sleep_time_sec,
        "suspended_after_seconds": round(suspended_after, 2),
        "runner_threads_held": runner_threads,
        "process_threads": process_threads,
        "process_threads_before": baseline_threads,
        "idle_store_ops_per_second": round(idle_ops, 1),
        "rss_mb": round(memory, 1),
        **figures("deadline_rerouted", [when - at for when in rerouted]),
        **figures("deadline_picked_up", picked),
        **figures("deadline_latency", deadline_lat),
        "deadline_store_ops_per_wake": round(deadline_ops, 1),
        **figures("signal_latency", signal_lat),
        "signal_store_ops_per_wake": round(signal_ops, 1),
        **figures("plain_burst", plain_lat),
        "load_average": round(load, 1),
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
    parser.add_argument(
        "--threads", type=int, default=8,
        help="the ThreadRunner's max_threads (0: pynenc's default, the number of CPUs)",
    )
    parser.add_argument(
        "--wake", type=int, default=None,
        help="how many sleepers share the deadline and how many waiters are signalled "
        "(default: all, N/2 each); the others stay waiting (sleepers due in a year)",
    )
    parser.add_argument(
        "--loop-sleep", type=float, default=None,
        help="the runner's runner_loop_sleep_time_sec (default: pynenc's, 0.1 s)",
    )
    parser.add_argument(
        "--start-batch", type=int, default=200,
        help="workflows routed per pynenc batch (task.parallelize) when starting them; 1: one "
        "call each",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    sizes = [int(x) for x in args.workflows.split(",")]
    with tempfile.TemporaryDirectory() as workdir:
        rows = [
            measure(
                n, args.idle, Path(workdir), args.margin, args.redis_url, args.per_workflow,
                args.threads, args.loop_sleep, args.wake, args.start_batch,
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
