"""Encrypted payloads on pynenc's stock ThreadRunner and SQLite backend, in real time.

The raw database file is read back: the marker carried by every payload (arguments, child
calls, results, exceptions, workflow data, saved state, signals) is nowhere in it. Key
rotation: a workflow started under the old key replays after the rotation without routing
its children again; new payloads use the new key; a missing key is named.
"""

from __future__ import annotations

import glob
import itertools
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pynenc import Pynenc

from pynenc_wf_testing.engine import (
    EncryptionError,
    Keyring,
    MissingEncryptionKey,
    payload_key_id,
    query_workflow,
    signal_workflow,
)
from tests.production import crypto_app as ca

pytestmark = [
    pytest.mark.production,
    # pynenc's ThreadRunner runs its loop off the main thread, and its invocation threads
    # re-raise a workflow's failure after storing it (failing_checkout fails on purpose)
    pytest.mark.filterwarnings("ignore:Running in a secondary thread"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning"),
]

MARKER = "SECRET-CARD-4242"
REDIS_URL = os.environ.get("PYNENC_WF_REDIS_URL")
K1 = Keyring.generate_key()
K2 = Keyring.generate_key()
_ids = itertools.count()


class World:
    """One test's app on its own SQLite file, with ThreadRunners in threads."""

    def __init__(self, tmp_path: Path) -> None:
        self.db_path = str(tmp_path / "store.db")
        self.app_id = f"wf-crypto-{os.getpid()}-{next(_ids)}"
        self.runners: list[tuple[Any, threading.Thread]] = []
        self.app: Pynenc = self.build(Keyring({"k1": K1}, current="k1"))

    def build(self, keyring: Keyring, **options: Any) -> Pynenc:
        """(Re)build the app on the same store, as a new worker process would."""
        Pynenc._clear_instances()
        self.app = ca.build(self.app_id, keyring, db_path=self.db_path, **options)
        return self.app

    def start_runner(self) -> Any:
        from pynenc.runner.thread_runner import ThreadRunner

        runner = ThreadRunner(self.app)
        thread = threading.Thread(target=runner.run, daemon=True)
        thread.start()
        self.runners.append((runner, thread))
        return runner

    def stop_runners(self) -> None:
        for runner, thread in self.runners:
            runner.stop_runner_loop()
            thread.join(10)
            assert not thread.is_alive(), "the runner did not stop"
        self.runners.clear()

    def wait_until(self, condition: Callable[[], Any], timeout: float = 15.0) -> Any:
        deadline = time.monotonic() + timeout
        while not (value := condition()):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {condition}")
            time.sleep(0.01)
        return value

    def result(self, invocation: Any) -> Any:
        """The invocation's result read through the current app (and its keyring), once
        final; raises its exception."""
        from pynenc.invocation.status import InvocationStatus

        inv_id = invocation.invocation_id
        status = self.wait_until(
            lambda: (s := self.app.orchestrator.get_invocation_status(inv_id)).is_final() and s
        )
        if status == InvocationStatus.SUCCESS:
            return self.app.state_backend.get_result(inv_id)
        raise self.app.state_backend.get_exception(inv_id)

    def raw_store(self) -> bytes:
        """Every byte of the database files (the WAL and its index included)."""
        return b"".join(Path(p).read_bytes() for p in sorted(glob.glob(self.db_path + "*")))


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    ca.CHARGED.clear()
    w = World(tmp_path)
    try:
        yield w
    finally:
        w.stop_runners()
        Pynenc._clear_instances()


def test_the_sqlite_file_holds_no_plaintext_payload(world: World) -> None:
    world.start_runner()
    run = ca.checkout(MARKER)
    world.wait_until(lambda: query_workflow(world.app, run).state)
    signal_workflow(world.app, run, "approve", f"approved {MARKER}")
    assert world.result(run) == {"receipt": f"charged {MARKER}", "approval": f"approved {MARKER}"}
    failed = ca.failing_checkout(MARKER)
    with pytest.raises(ca.SecretError, match=f"declined {MARKER}"):
        world.result(failed)
    assert query_workflow(world.app, run).state == {"phase": f"charged {MARKER}"}
    world.stop_runners()

    raw = world.raw_store()
    assert MARKER.encode() not in raw
    assert raw.count(b"pynenc-wf-enc:1:k1:") >= 10  # args, results, data, state, signal, error
    # what stays in clear: task names, invocation ids, statuses (docs/security.md)
    assert b"tests.production.crypto_app.checkout" in raw
    assert run.invocation_id.encode() in raw


@pytest.mark.skipif(
    not REDIS_URL, reason="no real Redis server: set PYNENC_WF_REDIS_URL (.ci/run does)"
)
def test_the_redis_server_holds_no_plaintext_payload(world: World) -> None:
    pytest.importorskip("pynenc_redis", reason="the redis extra is not installed")
    import redis

    client = redis.Redis.from_url(REDIS_URL)  # type: ignore[arg-type]
    pattern = f"__pynenc__:{world.app_id}:*"
    try:
        world.app = ca.build(world.app_id, Keyring({"k1": K1}, current="k1"), redis_url=REDIS_URL)
        world.start_runner()
        run = ca.checkout(MARKER)
        world.wait_until(lambda: query_workflow(world.app, run).state)
        signal_workflow(world.app, run, "approve", f"approved {MARKER}")
        assert world.result(run)["approval"] == f"approved {MARKER}"
        with pytest.raises(ca.SecretError, match=f"declined {MARKER}"):
            world.result(ca.failing_checkout(MARKER))
        world.stop_runners()
        raw = ca.redis_dump(client, pattern)
        assert raw and MARKER.encode() not in raw
        assert raw.count(b"pynenc-wf-enc:1:k1:") >= 10
    finally:
        for key in client.keys(pattern):
            client.delete(key)
        client.close()


def test_a_serializer_chosen_after_enable_workflows_is_wrapped_not_used_in_clear(
    world: World,
) -> None:
    app = world.build(Keyring({"k1": K1}, current="k1"), serializer="json")
    assert type(app.serializer).__name__.startswith("EncryptedSerializer_")
    assert type(app.serializer.inner).__name__ == "JsonSerializer"
    world.start_runner()
    assert world.result(ca.charge(MARKER)) == f"charged {MARKER}"
    world.stop_runners()
    assert MARKER.encode() not in world.raw_store()


def test_rotation_keeps_old_payloads_readable_and_a_running_workflow_on_its_key(
    world: World,
) -> None:
    world.start_runner()
    run = ca.two_charges(MARKER)
    world.wait_until(lambda: ca.CHARGED)

    world.stop_runners()

    # A new deployment: k2 is current, k1 stays to read what k1 wrote.
    app = world.build(Keyring({"k2": K2, "k1": K1}, current="k2"))
    world.start_runner()
    new = ca.charge("other card")
    assert world.result(new) == "charged other card"
    signal_workflow(app, run, "continue")
    assert world.result(run) == [f"charged {MARKER}", f"charged {MARKER}"]

    # The replay after the rotation found its child by the same call id: charged once.
    assert ca.CHARGED == [MARKER, "other card"]
    assert len(list(app.state_backend.get_child_invocations(run.invocation_id))) == 1
    # The old run kept its key; new payloads use the current one.
    assert payload_key_id(app.state_backend._get_result(run.invocation_id)) == "k1"
    assert payload_key_id(app.state_backend._get_result(new.invocation_id)) == "k2"
    stored_args = app.state_backend.get_invocation(new.invocation_id).call.serialized_arguments
    assert payload_key_id(stored_args["card"]) == "k2"


def test_a_missing_key_is_an_error_naming_its_id(world: World) -> None:
    world.start_runner()
    run = ca.charge(MARKER)
    world.result(run)
    world.stop_runners()

    app = world.build(Keyring({"k2": K2}, current="k2"))
    with pytest.raises(MissingEncryptionKey) as caught:
        app.state_backend.get_result(run.invocation_id)
    assert caught.value.key_id == "k1"
    assert str(caught.value) == (
        "a stored payload was encrypted with key id 'k1', which this app's keyring does not "
        "have (it has ['k2']). Add that key to the Keyring given to "
        "enable_workflows(encryption=...) (e.g. in PYNENC_WF_KEYS): old payloads stay "
        "readable only with the key that encrypted them."
    )


def test_a_key_under_the_wrong_id_or_an_altered_payload_does_not_decrypt(world: World) -> None:
    world.start_runner()
    run = ca.charge(MARKER)
    world.result(run)
    world.stop_runners()
    stored = world.app.state_backend._get_result(run.invocation_id)

    app = world.build(Keyring({"k1": K2}, current="k1"))  # another key named k1
    with pytest.raises(EncryptionError, match="with key id 'k1' does not decrypt: it was altered"):
        app.state_backend.get_result(run.invocation_id)
    app = world.build(Keyring({"k1": K1}, current="k1"))
    altered = stored[:-6] + ("A" if stored[-6] != "A" else "B") + stored[-5:]
    with pytest.raises(EncryptionError, match="does not decrypt"):
        app.serializer.deserialize(altered)
    assert app.serializer.deserialize(stored) == f"charged {MARKER}"


def test_plaintext_written_before_encryption_is_read_only_if_allowed(world: World) -> None:
    # The same store first used by the app without encryption.
    Pynenc._clear_instances()
    from pynenc import PynencBuilder

    plain = PynencBuilder().app_id(world.app_id).sqlite(world.db_path).build()
    old = plain.serializer.serialize({"card": MARKER})
    strict = world.build(Keyring({"k1": K1}, current="k1"))
    with pytest.raises(EncryptionError) as caught:
        strict.serializer.deserialize(old)
    assert str(caught.value) == (
        f"a stored payload of {len(old)} characters is not encrypted: this app encrypts its "
        "payloads. Payloads written before it enabled encryption need "
        "Keyring(..., allow_plaintext=True)."
    )
    assert MARKER not in str(caught.value)
    lenient = world.build(Keyring({"k1": K1}, current="k1", allow_plaintext=True))
    assert lenient.serializer.deserialize(old) == {"card": MARKER}
    assert payload_key_id(lenient.serializer.serialize("x")) == "k1"  # writes stay encrypted


def test_a_worker_without_the_key_stops_before_running_and_leaves_it_pending(
    world: World,
) -> None:
    from pynenc.invocation.status import InvocationStatus
    from pynenc.runner.thread_runner import ThreadRunner

    run = ca.charge(MARKER)  # routed under k1, not run yet
    app = world.build(Keyring({"k2": K2}, current="k2"))
    errors: list[BaseException] = []
    runner = ThreadRunner(app)

    def serve() -> None:
        try:
            runner.run()
        except BaseException as error:  # what ends the runner's loop
            errors.append(error)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    world.wait_until(lambda: not thread.is_alive())
    assert len(errors) == 1 and isinstance(errors[0], MissingEncryptionKey)
    assert errors[0].key_id == "k1"
    assert app.orchestrator.get_invocation_status(run.invocation_id) == InvocationStatus.PENDING
    assert ca.CHARGED == []
