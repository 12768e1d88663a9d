"""Fixtures of the production tests: a fresh SQLite app per test and real ThreadRunners.

Nothing here simulates anything: the runners are pynenc's ``ThreadRunner`` running in
threads of the test process (or in a worker process, see ``Production.spawn_worker``), the
store is pynenc's SQLite backend in the test's ``tmp_path``, and time is real.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pynenc import Pynenc

from tests.production import prod_app

REPO = Path(__file__).resolve().parents[2]
_ids = itertools.count()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "production: runs the durable engine on pynenc's stock runners and a real backend "
        "(real time; deselect with -m 'not production')",
    )


class Production:
    """One test's production world: its app, its runners, helpers that never hang."""

    def __init__(self, tmp_path: Path) -> None:
        self.db_path = str(tmp_path / "pynenc.db")
        self.app_id = f"wf-prod-{os.getpid()}-{next(_ids)}"
        self.runners: list[tuple[Any, threading.Thread]] = []
        self.workers: list[subprocess.Popen[bytes]] = []
        self.app = prod_app.build(self.db_path, self.app_id)
        self.redis_url: str | None = None

    def use_redis(self, url: str) -> Pynenc:
        """Move this test onto the Redis server at ``url`` (state, orchestrator and broker),
        under a fresh app id whose keys are deleted at ``close()``."""
        self.redis_url = url
        return self.rebuild(redis_url=url)

    def rebuild(self, **options: Any) -> Pynenc:
        """Build the app again with other options (e.g. ``retry_policy``), same store."""
        Pynenc._clear_instances()
        self.app_id = f"wf-prod-{os.getpid()}-{next(_ids)}"
        self.app = prod_app.build(self.db_path, self.app_id, **options)
        return self.app

    def report(self, **options: Any) -> Any:
        """The report model of this test's store, read as an operator would
        (``read_redis_store`` or ``read_sqlite_store``)."""
        from pynenc_wf_testing.env.report_sources import read_redis_store, read_sqlite_store

        if self.redis_url is not None:
            return read_redis_store(self.redis_url, app_id=self.app_id, **options)
        return read_sqlite_store(self.db_path, app_id=self.app_id, **options)

    # -- runners in threads of this process

    def start_runner(self) -> Any:
        from pynenc.runner.thread_runner import ThreadRunner

        runner = ThreadRunner(self.app)
        thread = threading.Thread(target=runner.run, daemon=True, name=f"runner-{len(self.runners)}")
        thread.start()
        self.runners.append((runner, thread))
        return runner

    def stop_runner(self, runner: Any, timeout: float = 5.0) -> float:
        """Stop ``runner`` the way a SIGTERM does (pynenc's graceful stop: its running
        invocations are marked KILLED and rerouted, its threads joined); returns how long
        the stop took."""
        began = time.monotonic()
        runner.stop_runner_loop()
        for candidate, thread in self.runners:
            if candidate is runner:
                thread.join(timeout)
                assert not thread.is_alive(), "the runner did not stop"
        return time.monotonic() - began

    # -- a runner in a worker process

    def spawn_worker(self) -> subprocess.Popen[bytes]:
        code = (
            "from tests.production import prod_app; "
            f"prod_app.serve({self.db_path!r}, {self.app_id!r})"
        )
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        worker = subprocess.Popen(
            [sys.executable, "-c", code], cwd=REPO, env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        self.workers.append(worker)
        return worker

    def terminate_worker(self, worker: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
        worker.send_signal(signal.SIGTERM)  # the runner's handler stops it gracefully
        worker.wait(timeout)

    # -- waiting, with deadlines

    # Generous bounds: they only decide how long a broken test takes to fail; a loaded
    # machine (load 13 on 2 cores) must not fail a correct one.
    def wait_until(self, condition: Callable[[], Any], timeout: float = 60.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {condition}")
            time.sleep(0.01)

    def result(self, invocation: Any, timeout: float = 60.0) -> Any:
        """``invocation.result`` once final (raises its error), failing after ``timeout``."""
        self.wait_until(lambda: self.status(invocation).is_final(), timeout)
        return invocation.result

    def status(self, invocation: Any) -> Any:
        return self.app.orchestrator.get_invocation_status(invocation.invocation_id)

    def close(self) -> None:
        for runner, thread in self.runners:
            if thread.is_alive():
                runner.stop_runner_loop()
                thread.join(5)
        for worker in self.workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait(5)
        if self.redis_url is not None:
            import redis

            client = redis.Redis.from_url(self.redis_url)
            for key in client.scan_iter(f"__pynenc__:{self.app_id}:*"):
                client.delete(key)
            client.close()
        Pynenc._clear_instances()
        prod_app.reset()


@pytest.fixture
def prod(tmp_path: Path) -> Iterator[Production]:
    prod_app.reset()
    world = Production(tmp_path)
    try:
        yield world
    finally:
        world.close()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """The CI's server (PYNENC_WF_REDIS_URL), else a redis-server of our own, else skip."""
    # the engine-only CI venv (.ci/engine_only.sh) has neither client installed
    pytest.importorskip("redis")
    pytest.importorskip("pynenc_redis")
    url = os.environ.get("PYNENC_WF_REDIS_URL")
    if url:
        yield url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("no Redis: set PYNENC_WF_REDIS_URL or install redis-server")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    import redis

    client = redis.Redis(port=port)
    deadline = time.monotonic() + 20
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                server.kill()
                pytest.skip("redis-server did not start")
            time.sleep(0.02)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.kill()
        server.wait(10)
