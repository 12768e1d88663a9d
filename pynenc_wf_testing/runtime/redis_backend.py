"""The ``redis`` backend: pynenc-redis components on fakeredis (default) or a real server.

``WorkflowEnv(backend="redis")`` runs the simulation on pynenc-redis 0.3.0's components (made
compatible with pynenc 0.4 by :mod:`pynenc_wf_testing.runtime.redis_compat`), the orchestrator and
state backend observed by the same mixins as the memory ones.

Options (``backend_options``):

- ``url``: a real Redis server (``"redis://127.0.0.1:6379/0"``). Without it every store is a
  fresh in-process fakeredis server: no server needed. On a real server every store gets its
  own key namespace (``__pynenc__:<namespace>:...``), deleted when the environment closes: use
  a server (or database number) reserved for tests.
- ``check_serialization`` (default True): as for the sqlite backend.

Every component gets its client from the store (pynenc-redis would build one from its config
through ``get_redis_client``, a process-wide pool): the component subclasses set it at
construction, so nothing of pynenc-redis is patched. A crash is a process death: the server
(fake or real) keeps the data, every component and client connection of the app is dropped,
and new ones connect to the same server. Broker retrieval never blocks in the simulation:
pynenc-redis pops with ``BLPOP`` and a timeout, the simulated broker with ``LPOP``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pynenc_redis.client_data_store.redis_client_data_store import (  # type: ignore[import-untyped]
    RedisClientDataStore,
)
from pynenc_redis.state_backend.redis_state_backend import (  # type: ignore[import-untyped]
    RedisStateBackend,
)
from pynenc_redis.trigger.redis_trigger import RedisTrigger  # type: ignore[import-untyped]
from pynenc_redis.util.redis_keys import (  # type: ignore[import-untyped]
    PYNENC_KEY_PREFIX,
    Key,
)

from pynenc_wf_testing.errors import AppConfigurationError, InvalidArgument
from pynenc_wf_testing.runtime.components import SimOrchestratorMixin, SimStateBackendMixin
from pynenc_wf_testing.runtime.monkeypatches.compat import check_versions, redis_distributions
from pynenc_wf_testing.runtime.redis_compat import CompatRedisBroker, CompatRedisOrchestrator
from pynenc_wf_testing.runtime.serialization import check_workflow_data
from pynenc_wf_testing.runtime.sqlite_backend import (
    check_options,
    drop_process_state,
    open_components,
)

if TYPE_CHECKING:
    import redis
    from pynenc.app import Pynenc
    from pynenc.workflow.workflow_identity import WorkflowIdentity

__all__ = [
    "RedisBackend",
    "SimRedisBroker",
    "SimRedisClientDataStore",
    "SimRedisOrchestrator",
    "SimRedisStateBackend",
    "SimRedisTrigger",
]

class _NamespacedKey(Key):  # type: ignore[misc]
    """pynenc-redis's key scheme inside one store's namespace (real servers only)."""

    def __init__(self, app_id: str, prefix: str, namespace: str) -> None:
        super().__init__(app_id, prefix)
        self._namespace = namespace
        self._prefix = f"{PYNENC_KEY_PREFIX}:{namespace}:{self._app_id}:{self._class_prefix}"

    def all_apps_info_key(self, app_id: str) -> str:  # upstream: a staticmethod
        return f"{PYNENC_KEY_PREFIX}:{self._namespace}:apps_info:{app_id}"


@dataclass(eq=False)
class _RedisStore:
    """One durable store: a fakeredis server (or a namespace on a real one) and the client
    the current worker process uses."""

    number: int
    url: str | None
    namespace: str | None
    server: Any = None
    client: Any = None

    def connect(self) -> None:
        """A new process connects: a new client (the old one is closed)."""
        if self.client is not None:
            _close_client(self.client)
        if self.url is None:
            import fakeredis

            if self.server is None:
                self.server = fakeredis.FakeServer()
            # An explicit host: fakeredis would draw one from uuid.uuid4(), which the
            # simulation seeds (it would shift the uuids user code sees).
            self.client = _fake_client_class()(server=self.server, host=f"wf-store-{self.number}")
        else:
            import redis as redis_lib

            self.client = redis_lib.Redis.from_url(
                self.url, socket_timeout=10, socket_connect_timeout=5
            )

    def key(self, app_id: str, prefix: str) -> Key:
        if self.namespace is None:
            return Key(app_id, prefix)
        return _NamespacedKey(app_id, prefix, self.namespace)

    def delete_namespace(self) -> None:
        if self.namespace is None or self.client is None:
            return
        pattern = f"{PYNENC_KEY_PREFIX}:{self.namespace}:*"
        batch: list[Any] = []
        for key in self.client.scan_iter(pattern, count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                self.client.delete(*batch)
                batch.clear()
        if batch:
            self.client.delete(*batch)

    def close(self) -> None:
        if self.client is not None:
            _close_client(self.client)
        self.client = None
        self.server = None


def _direct_fake_redis_class() -> type:
    """A fakeredis client that skips the wire protocol (about 4x faster, same commands).

    fakeredis emulates a socket: redis-py packs every command into RESP bytes, fakeredis parses
    them back into fields, runs the command and queues the reply, which redis-py reads. Here
    the connection hands the encoded fields (what fakeredis's parser would have produced) to
    the same ``FakeSocket._process_command``, for plain commands and for pipelines and
    transactions alike (``MULTI``/``EXEC``/``WATCH`` are ordinary commands to it), and replies
    go to a plain list instead of a thread-safe queue (one thread runs a simulation). Plain
    commands also skip redis-py's per-command pool checkout, retry and metrics wrappers: one
    connection per client, as ``single_connection_client`` would. Replies are parsed by
    redis-py's own ``parse_response`` and response callbacks.
    """
    import queue

    import fakeredis

    try:
        from fakeredis._clients._sync import FakeRedisConnection
        from fakeredis._socket import FakeSocket
    except ImportError:  # pragma: no cover - another fakeredis layout: the regular client
        return fakeredis.FakeRedis
    if not callable(getattr(FakeSocket, "_process_command", None)):  # pragma: no cover
        return fakeredis.FakeRedis

    class Inbox(list[Any]):
        """The replies of one fake socket (``queue.Queue``'s methods, single-threaded)."""

        def __bool__(self) -> bool:  # fakeredis tests ``if responses:`` for "not closed"
            return True

        def put(self, msg: Any) -> None:
            self.append(msg)

        def get(self, block: bool = True, timeout: float | None = None) -> Any:
            if not self:
                raise queue.Empty
            return self.pop(0)

        def get_nowait(self) -> Any:
            return self.get(False)

        def qsize(self) -> int:
            return len(self)

    class Fields:
        __slots__ = ("fields",)

        def __init__(self, fields: list[bytes]) -> None:
            self.fields = fields

    connection_base: Any = FakeRedisConnection
    client_base: Any = fakeredis.FakeRedis

    class DirectConnection(connection_base):  # type: ignore[misc]
        def _connect(self) -> Any:
            sock = super()._connect()
            sock.responses = Inbox()
            return sock

        def _fields(self, args: tuple[Any, ...]) -> Fields:
            first = args[0]
            if (isinstance(first, str) and " " in first) or (
                isinstance(first, bytes) and b" " in first
            ):  # "CONFIG GET": split, as redis-py does
                args = (*first.split(), *args[1:])
            encode = self.encoder.encode
            return Fields([bytes(a) if isinstance(a, memoryview) else encode(a) for a in args])

        def pack_command(self, *args: Any) -> list[Fields]:
            return [self._fields(args)]

        def pack_commands(self, commands: Any) -> list[Fields]:
            return [self._fields(tuple(c)) for c in commands]

        def send_packed_command(self, command: Any, check_health: bool = True) -> None:
            if isinstance(command, list) and command and isinstance(command[0], Fields):
                if not self._sock:
                    self.connect()
                for item in command:
                    self._sock._process_command(item.fields)
                return
            super().send_packed_command(command, check_health)

        def send_command(self, *args: Any, **kwargs: Any) -> None:
            self.send_packed_command([self._fields(args)])

    class DirectFakeRedis(client_base):  # type: ignore[misc]
        _wf_conn: Any = None

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, connection_class=DirectConnection, **kwargs)

        def execute_command(self, *args: Any, **options: Any) -> Any:
            conn = self._wf_conn
            if conn is None:
                conn = self._wf_conn = self.connection_pool.make_connection()
                conn.connect()
            conn.send_command(*args)
            return self.parse_response(conn, args[0], **options)

        def close(self) -> None:
            conn, self._wf_conn = self._wf_conn, None
            if conn is not None:
                conn.disconnect()
            super().close()

    return DirectFakeRedis


_DIRECT_CLASS: list[type] = []


def _fake_client_class() -> type:
    if not _DIRECT_CLASS:
        _DIRECT_CLASS.append(_direct_fake_redis_class())
    return _DIRECT_CLASS[0]


def _close_client(client: redis.Redis) -> None:
    # Closing a dead connection may fail in many ways; the client is abandoned either way.
    with contextlib.suppress(Exception):
        client.close()
        client.connection_pool.disconnect()


#: id(app) -> the store new components of that app connect to.
_CURRENT: dict[int, _RedisStore] = {}
#: id(app) -> check serialization of workflow data.
_CHECK: dict[int, bool] = {}


class _StoreComponent:
    """Takes the client and key namespace from the app's current store."""

    app: Any
    key: Any

    def __init__(self, app: Pynenc) -> None:
        super().__init__(app)  # type: ignore[call-arg]
        store = _CURRENT.get(id(app))
        if store is None:
            raise AppConfigurationError(
                f"{type(self).__name__} only runs inside WorkflowEnv(backend='redis'): "
                f"app {app.app_id!r} has no simulated redis store."
            )
        self._wf_store = store
        self._client = store.client
        self.key = store.key(app.app_id, self.key._class_prefix)


class SimRedisOrchestrator(
    _StoreComponent, SimOrchestratorMixin, CompatRedisOrchestrator
):
    """pynenc-redis's orchestrator (pynenc 0.4 compatible) observed by the simulation."""

    _blocking_control: Any

    @property
    def blocking_control(self) -> Any:
        if not self._blocking_control:
            from pynenc_redis.orchestrator.redis_orchestrator import (  # type: ignore[import-untyped]
                RedisBlockingControl,
            )

            control = RedisBlockingControl(self.app, self.client)
            control.key = self._wf_store.key(self.app.app_id, "blocking_control")
            self._blocking_control = control
        return self._blocking_control


class SimRedisStateBackend(
    _StoreComponent, SimStateBackendMixin, RedisStateBackend  # type: ignore[misc]
):
    """pynenc-redis's state backend observed by the simulation; workflow data that would not
    survive the serializer fails loudly instead of being stored changed."""

    def set_workflow_data(self, workflow_identity: WorkflowIdentity, key: str, value: Any) -> None:
        if _CHECK.get(id(self.app), True):
            check_workflow_data(self.app, workflow_identity, key, value, "redis")
        super().set_workflow_data(workflow_identity, key, value)

    def list_workflow_data(self, workflow_id: str) -> dict[str, Any]:
        """Every workflow-data key of ``workflow_id`` and its value (for history exports;
        pynenc-redis has no listing of its own)."""
        head = self.key.workflow_data_value(workflow_id, "")
        pattern = "".join(f"[{c}]" if c in "*?[]\\" else c for c in head) + "*"
        found: dict[str, Any] = {}
        for raw in self.client.scan_iter(pattern, count=1000):
            name = raw.decode() if isinstance(raw, bytes) else str(raw)
            value = self.client.get(raw)
            if value is not None:
                found[name[len(head):]] = self.app.serializer.deserialize(value.decode())
        return dict(sorted(found.items()))


class SimRedisBroker(_StoreComponent, CompatRedisBroker):
    """The (pynenc 0.4 compatible) Redis broker whose retrieval never blocks: a simulation
    fetches only when something was routed, and a blocking pop would stall it."""

    def _pop(self, keys: list[str]) -> Any:
        for key in keys:
            value = self.client.lpop(key)
            if value is not None:
                return value
        return None


class SimRedisTrigger(_StoreComponent, RedisTrigger):  # type: ignore[misc]
    """pynenc-redis's trigger on the simulated store."""


class SimRedisClientDataStore(_StoreComponent, RedisClientDataStore):  # type: ignore[misc]
    """pynenc-redis's client data store on the simulated store."""


_namespace_tokens = itertools.count(1)


def _check_reachable(url: str) -> None:
    """Fail where the URL is given, not with redis-py's ``ConnectionError`` from the first
    store write (and again from the clean-up at close)."""
    import redis as redis_lib

    client = redis_lib.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    try:
        client.ping()
    except redis_lib.exceptions.RedisError as error:
        raise InvalidArgument(
            f"backend_options['url']={url!r}: cannot reach the Redis server ({error}); check "
            "the URL and that the server runs (without a url the redis backend runs on "
            "fakeredis, in-process)."
        ) from None
    finally:
        _close_client(client)


class RedisBackend:
    """pynenc-redis components; a fresh fakeredis server (or real-server namespace) per
    store."""

    name = "redis"

    def __init__(self, url: str | None = None, *, check_serialization: bool = True) -> None:
        schemes = ("redis://", "rediss://", "unix://")
        if url is not None and not (isinstance(url, str) and url.startswith(schemes)):
            raise InvalidArgument(
                f"backend_options['url'] must be a Redis URL such as "
                f"'redis://127.0.0.1:6379/0', got {url!r}."
            )
        if not isinstance(check_serialization, bool):  # "no" would be taken for True
            raise InvalidArgument(
                "backend_options['check_serialization'] must be True or False, got "
                f"{check_serialization!r}."
            )
        check_versions(*redis_distributions(url))
        if url is not None:
            _check_reachable(url)
        self.url = url
        # Unique per environment, so that parallel test processes sharing one server never
        # see each other's keys (it never appears in a history).
        self._token = f"wf-{os.getpid()}-{next(_namespace_tokens)}-{os.urandom(4).hex()}"
        self._check = bool(check_serialization)
        self._stores: list[_RedisStore] = []
        self._apps: set[int] = set()
        self._closed = False

    @property
    def check_serialization(self) -> bool:
        """Whether arguments and workflow data are checked against the serializer."""
        return self._check

    @classmethod
    def from_options(cls, **options: Any) -> RedisBackend:
        """Build from ``WorkflowEnv(backend_options=...)``, naming any unknown option."""
        check_options("redis", options, ("url", "check_serialization"))
        return cls(**options)

    def config(self, app: Pynenc) -> dict[str, Any]:
        return {
            "orchestrator_cls": "SimRedisOrchestrator",
            "state_backend_cls": "SimRedisStateBackend",
            "broker_cls": "SimRedisBroker",
            "trigger_cls": "SimRedisTrigger",
            "client_data_store_cls": "SimRedisClientDataStore",
        }

    def new_store(self, app: Pynenc) -> None:
        if self._closed:
            raise InvalidArgument("this redis backend is closed; create a new WorkflowEnv.")
        number = len(self._stores) + 1
        namespace = None if self.url is None else f"{self._token}-s{number}"
        store = _RedisStore(number=number, url=self.url, namespace=namespace)
        store.connect()
        self._stores.append(store)
        self._use_store(app, store)

    def _use_store(self, app: Pynenc, store: _RedisStore) -> None:
        _CURRENT[id(app)] = store
        _CHECK[id(app)] = self._check
        self._apps.add(id(app))
        drop_process_state(app)
        open_components(app)

    def after_crash(self, app: Pynenc) -> None:
        component = app._state_backend or app._orchestrator
        store = getattr(component, "_wf_store", None) or _CURRENT.get(id(app))
        if store is None:  # pragma: no cover - new_store always ran first
            drop_process_state(app)
            return
        store.connect()
        self._use_store(app, store)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            for store in self._stores:
                store.delete_namespace()
        finally:
            for store in self._stores:
                store.close()
            for app_key in self._apps:
                _CURRENT.pop(app_key, None)
                _CHECK.pop(app_key, None)
