"""The redis backend: the pynenc-redis compatibility layer, fakeredis, a real server."""

from __future__ import annotations

import inspect
import os
from importlib.metadata import version
from typing import Any

import pytest

from pynenc_wf_testing import WorkflowEnv
from pynenc_wf_testing.errors import InvalidArgument
from tests import backend_apps as apps

REDIS_URL = os.environ.get("PYNENC_WF_REDIS_URL")
needs_server = pytest.mark.skipif(
    not REDIS_URL,
    reason="no real Redis server configured: set PYNENC_WF_REDIS_URL=redis://127.0.0.1:6379/0 "
    "(a server reserved for tests) to run these; .ci/run starts one",
)


def test_redis_compat_layer_is_still_needed() -> None:
    """Fails loudly when an installed pynenc-redis works with pynenc 0.4 on its own."""
    from pynenc_redis.broker.redis_broker import RedisBroker
    from pynenc_redis.orchestrator.redis_orchestrator import RedisOrchestrator

    installed = version("pynenc-redis")
    fixed = []
    if not {"_route_invocation", "_route_invocations"} & RedisBroker.__abstractmethods__:
        fixed.append("RedisBroker implements _route_invocation(s)")
    params = inspect.signature(RedisOrchestrator.register_runner_heartbeats).parameters
    if "consumed_queues" in params:
        fixed.append("RedisOrchestrator.register_runner_heartbeats accepts consumed_queues")
    assert not fixed, (
        f"pynenc-redis {installed} fixed what pynenc_wf_testing/runtime/redis_compat.py works around "
        f"({'; '.join(fixed)}). Delete the parts of that module it fixed (all of it if both "
        "are fixed), base the Sim* classes of runtime/redis_backend.py on the upstream classes, and "
        "update the pynenc-redis pin in pyproject.toml."
    )


def test_the_upstream_broker_cannot_even_be_built() -> None:
    from pynenc_redis.broker.redis_broker import RedisBroker

    with pytest.raises(TypeError, match="abstract"):
        RedisBroker(apps.app)


def test_unknown_option_and_bad_url_are_named() -> None:
    with pytest.raises(InvalidArgument, match="it accepts: url, check_serialization"):
        WorkflowEnv(backend="redis", backend_options={"host": "localhost"})
    with pytest.raises(InvalidArgument, match="must be a Redis URL"):
        WorkflowEnv(backend="redis", backend_options={"url": "localhost:6379"})


def _spy(env: WorkflowEnv) -> list[str]:
    """Record the command name of every call through the store's client."""
    store = env.backend._stores[-1]  # type: ignore[attr-defined]
    client = store.client
    seen: list[str] = []
    original = client.execute_command

    def spy(*args: Any, **options: Any) -> Any:
        seen.append(str(args[0]).upper())
        return original(*args, **options)

    client.execute_command = spy
    return seen


def test_the_simulated_broker_never_blocks() -> None:
    with WorkflowEnv(backend="redis") as env:
        env.use(apps.app)
        seen = _spy(env)
        assert env.start(apps.chain, 3).result == 6
        assert apps.app.broker.retrieve_invocation() is None  # empty: no wait
    assert "LPOP" in seen
    assert not {"BLPOP", "BRPOP", "BLMOVE", "BZPOPMIN", "BZPOPMAX"} & set(seen)


def test_compat_broker_keeps_queue_priority_and_fifo_order() -> None:
    """The layer's broker on its own (as production would use it): priorities first, FIFO
    within a priority, a blocking pop with the configured timeout."""
    import fakeredis
    from pynenc.identifiers.invocation_id import InvocationId

    from pynenc_wf_testing.runtime.redis_compat import CompatRedisBroker

    broker = CompatRedisBroker(apps.app)
    broker._client = fakeredis.FakeRedis(server=fakeredis.FakeServer(), host="compat-test")
    queue = broker.conf.queues[0]
    broker.route_invocations([InvocationId("low-1"), InvocationId("low-2")], queue, 0.0)
    broker.route_invocation(InvocationId("high"), queue, 5.0)
    assert broker.count_invocations() == 3
    got = [broker.retrieve_invocation() for _ in range(4)]
    assert got == ["high", "low-1", "low-2", None]
    assert broker.count_invocations([queue]) == 0


def test_every_store_is_a_fresh_fakeredis_server() -> None:
    with WorkflowEnv(backend="redis") as env:
        assert env.start(apps.chain, 1).result == 0
        env.check_crash_safety(apps.chain, 1).assert_ok()
        stores = env.backend._stores  # type: ignore[attr-defined]
        servers = {id(s.server) for s in stores}
        assert len(servers) == len(stores) > 2


def test_a_crash_reconnects_with_a_new_client() -> None:
    with WorkflowEnv(backend="redis") as env:
        env.use(apps.app)
        store = env.backend._stores[-1]  # type: ignore[attr-defined]
        first = store.client
        env.crash_after("slow_double#1")
        assert env.start(apps.chain, 2).result == 2
        assert store.client is not first
        assert apps.app.orchestrator.client is store.client


@needs_server
def test_a_real_server_keeps_each_store_in_its_own_namespace() -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)  # type: ignore[arg-type]
    before = set(client.keys("*"))
    with WorkflowEnv(backend="redis", backend_options={"url": REDIS_URL}) as env:
        assert env.start(apps.chain, 2).result == 2
        namespace = env.backend._stores[0].namespace  # type: ignore[attr-defined]
        ours = {k for k in client.keys("*") if k not in before}
        assert ours and all(k.decode().startswith(f"__pynenc__:{namespace}:") for k in ours)
    assert set(client.keys("*")) == before  # deleted at close
    client.close()


@needs_server
def test_a_real_server_run_matches_fakeredis() -> None:
    def steps(options: dict[str, Any] | None) -> tuple[Any, list[str]]:
        with WorkflowEnv(seed=9, backend="redis", backend_options=options) as env:
            env.crash_before("slow_double#2")
            return env.start(apps.chain, 3).result, env.steps

    assert steps({"url": REDIS_URL}) == steps(None)
