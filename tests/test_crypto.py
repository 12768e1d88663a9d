"""Encrypted payloads under the harness: every backend, crash checks, history export and
replay, key rotation, and the keyring's own errors.

The production counterpart (ThreadRunner + SQLite, in real time) is
tests/production/test_crypto_production.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pynenc_wf_testing import Replayer, WorkflowEnv
from pynenc_wf_testing.engine import (
    EncryptionError,
    InvalidWorkflowArgument,
    Keyring,
    MissingEncryptionKey,
    enable_workflows,
    payload_key_id,
)
from tests import crypto_apps as c
from tests.production.crypto_app import redis_dump

ROOT = Path(__file__).resolve().parents[1]
REDIS_URL = os.environ.get("PYNENC_WF_REDIS_URL")
ENCRYPTED = "pynenc-wf-enc:1:k1:"


def _run_checkout(env: WorkflowEnv) -> Any:
    run = env.start(c.checkout, c.MARKER)
    env.advance(hours=2)
    env.signal(run, "approve", f"approved {c.MARKER}")
    assert run.result == {"receipt": f"charged {c.MARKER}", "approval": f"approved {c.MARKER}"}
    failed = env.start(c.failing_checkout, c.MARKER)
    with pytest.raises(c.Declined, match=f"declined {c.MARKER}"):
        failed.result
    return run


@pytest.fixture
def rotated() -> Iterator[None]:
    """Give the module's app another keyring for one test, then its own back."""
    yield
    enable_workflows(c.app, encryption=c.KEYRING)


def test_the_sqlite_store_holds_no_plaintext(tmp_path: Path) -> None:
    with WorkflowEnv(seed=1, backend="sqlite", backend_options={"path": str(tmp_path)}) as env:
        _run_checkout(env)
        assert env.backend.paths  # type: ignore[attr-defined]
    # every file: the databases and their WAL files (a write may still sit in a WAL until a
    # checkpoint, which depends on when the last connection to it is closed)
    raw = b"".join(p.read_bytes() for p in sorted(tmp_path.iterdir()) if p.is_file())
    assert raw and c.MARKER.encode() not in raw
    assert raw.count(ENCRYPTED.encode()) >= 10


@pytest.mark.parametrize("url", [None, pytest.param(REDIS_URL, marks=pytest.mark.skipif(
    not REDIS_URL, reason="no real Redis server: set PYNENC_WF_REDIS_URL (.ci/run does)"))],
    ids=["fakeredis", "server"])
def test_the_redis_store_holds_no_plaintext(url: str | None) -> None:
    with WorkflowEnv(seed=1, backend="redis", backend_options={"url": url} if url else {}) as env:
        _run_checkout(env)
        store = env.backend._stores[-1]  # type: ignore[attr-defined]
        # on a shared server, only this environment's namespace
        raw = redis_dump(store.client, f"__pynenc__:{store.namespace}:*" if url else "*")
    assert raw and c.MARKER.encode() not in raw
    assert raw.count(ENCRYPTED.encode()) >= 10


@pytest.mark.parametrize("backend", ["memory", "sqlite", "redis"])
def test_the_history_holds_ciphertext_and_replays_with_the_keys(backend: str) -> None:
    with WorkflowEnv(seed=5, backend=backend) as env:
        run = _run_checkout(env)
        history = env.history_json()
    assert c.MARKER not in history
    record = next(w for w in json.loads(history)["workflows"] if w["workflow_id"] == run.workflow_id)
    assert payload_key_id(record["arguments"]["card"]) == "k1"
    assert payload_key_id(record["result"]) == "k1"
    assert all(payload_key_id(v) == "k1" for v in record["data"].values())
    replayed = Replayer(c.app).replay(history, workflow_id=run.workflow_id)
    assert replayed.ok and replayed.completed
    assert replayed.result["receipt"] == f"charged {c.MARKER}"


def test_the_same_seed_gives_the_same_encrypted_history() -> None:
    def history() -> str:
        with WorkflowEnv(seed=8, backend="sqlite") as env:
            _run_checkout(env)
            return env.history_json()

    first = history()
    assert ENCRYPTED in first and history() == first


def test_crash_checks_pass_on_an_encrypted_app() -> None:
    with WorkflowEnv(seed=2, backend="sqlite") as env:
        report = env.check_crash_safety(c.checkout, c.MARKER)
    assert report.ok, report
    assert len(report.explored) > 5  # a crash at each step, each recovered


def test_a_history_recorded_before_a_rotation_replays_after_it(rotated: None) -> None:
    with WorkflowEnv(seed=6) as env:
        run = _run_checkout(env)
        history = env.history_json()
    enable_workflows(c.app, encryption=Keyring({"k2": c.KEY_2, "k1": c.KEY_1}, current="k2"))
    # replayed under k2 as current: the run keeps k1, so its child calls have the same ids
    assert Replayer(c.app).replay(history, workflow_id=run.workflow_id).ok
    with WorkflowEnv(seed=6) as env:
        new = env.start(c.checkout, "another card")
        env.advance(days=2)
        new.result
        record = json.loads(env.history_json())["workflows"][0]
    assert payload_key_id(record["arguments"]["card"]) == "k2"
    assert payload_key_id(record["result"]) == "k2"


def test_replay_without_the_key_names_it(rotated: None) -> None:
    with WorkflowEnv(seed=6) as env:
        run = _run_checkout(env)
        history = env.history_json()
    enable_workflows(c.app, encryption=Keyring({"k2": c.KEY_2}, current="k2"))
    with pytest.raises(MissingEncryptionKey, match="encrypted with key id 'k1', which this app's "
                       r"keyring does not have \(it has \['k2'\]\)"):
        Replayer(c.app).replay(history, workflow_id=run.workflow_id)


def _cli(*args: str, keys: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), c.KEYS_ENV: keys}
    return subprocess.run(
        [sys.executable, "-m", "pynenc_wf_testing.tools.cli", *args],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )


def test_the_cli_exports_and_replays_with_the_keys_the_app_reads(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    with WorkflowEnv(seed=4, backend="sqlite", backend_options={"path": str(db)}) as env:
        run = _run_checkout(env)
    out = tmp_path / "exported.json"
    k1 = f"k1={Keyring.encode_key(c.KEY_1)}"
    done = _cli("export", "--app", "tests.crypto_apps:app", "--sqlite", str(db),
                "--workflow-id", run.workflow_id, "-o", str(out), keys=k1)
    assert done.returncode == 0, done.stderr
    assert c.MARKER not in out.read_text() and ENCRYPTED in out.read_text()
    done = _cli("replay", str(out), keys=k1)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith(f"ok   {out} checkout")
    k2 = f"k2={Keyring.encode_key(c.KEY_2)}"
    done = _cli("replay", str(out), keys=k2)
    assert done.returncode == 1
    assert done.stdout.startswith(f"FAIL {out} checkout [{run.workflow_id[:8]}]: a stored payload "
                                  "was encrypted with key id 'k1', which this app's keyring does "
                                  "not have (it has ['k2'])")


# ------------------------------------------------------------------- the keyring itself


def test_keyring_rejects_what_it_cannot_use() -> None:
    key = bytes(64)
    cases: list[tuple[Any, Any, str]] = [
        ({}, "k1", "needs a non-empty mapping"),
        ({"k:1": key}, "k:1", "key id 'k:1' is not valid"),
        ({"k1": b"short"}, "k1", "must be bytes of length 32, 48 or 64 \\(AES-SIV\\), got 5"),
        ({"k1": "text"}, "k1", "got str"),
        ({"k1": key}, "k2", r"current key id 'k2' is not in the keyring \(key ids \['k1'\]\)"),
    ]
    for keys, current, message in cases:
        with pytest.raises(InvalidWorkflowArgument, match=message):
            Keyring(keys, current)
    with pytest.raises(InvalidWorkflowArgument, match="encryption= expects a Keyring, got dict"):
        enable_workflows(c.app, encryption={"k1": key})  # type: ignore[arg-type]


def test_keyring_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WF_KEYS", f"new={Keyring.encode_key(c.KEY_2)}, old={Keyring.encode_key(c.KEY_1)}")
    ring = Keyring.from_env("WF_KEYS")
    assert ring.current == "new" and ring.key_ids == ["new", "old"] and ring.key("old") == c.KEY_1
    assert repr(ring) == "Keyring(current='new', key_ids=['new', 'old'])"  # no key material
    monkeypatch.setenv("WF_KEYS", "")
    with pytest.raises(InvalidWorkflowArgument, match="WF_KEYS is not set or empty"):
        Keyring.from_env("WF_KEYS")
    monkeypatch.setenv("WF_KEYS", "k1")
    with pytest.raises(InvalidWorkflowArgument, match="lacks '='"):
        Keyring.from_env("WF_KEYS")
    monkeypatch.setenv("WF_KEYS", "k1=not base64!")
    with pytest.raises(InvalidWorkflowArgument, match="the key of 'k1' is not valid base64"):
        Keyring.from_env("WF_KEYS")


def test_the_config_holds_a_reference_not_the_keys() -> None:
    values = c.app.config_values
    assert values["serializer_cls"].startswith("EncryptedSerializer_")
    ref = values["workflow_engine_defaults"]["encryption"]
    assert ref == c.KEYRING.reference() and ref.startswith("keyring-")
    text = json.dumps(values)
    assert Keyring.encode_key(c.KEY_1) not in text and c.KEY_1.hex() not in text


def test_payloads_are_deterministic_per_key_and_bound_to_their_key_id() -> None:
    serializer = c.app.serializer
    first = serializer.serialize({"card": c.MARKER})
    assert serializer.serialize({"card": c.MARKER}) == first  # call ids stay stable
    assert payload_key_id(first) == "k1" and payload_key_id("plain") is None
    relabelled = first.replace(":k1:", ":k2:")
    ring = Keyring({"k1": c.KEY_1, "k2": c.KEY_1}, current="k1")  # same key, other id
    enable_workflows(c.app, encryption=ring)
    try:
        with pytest.raises(EncryptionError, match="key id 'k2' does not decrypt"):
            c.app.serializer.deserialize(relabelled)
    finally:
        enable_workflows(c.app, encryption=c.KEYRING)


def test_the_serializer_class_cannot_be_configured_by_name_alone() -> None:
    from pynenc.serializer.base_serializer import BaseSerializer
    from pynenc.util.subclasses import get_subclass

    with pytest.raises(InvalidWorkflowArgument, match="has no keyring in this process: configure "
                       r"encryption with enable_workflows\(app, encryption=Keyring\(...\)\)"):
        get_subclass(BaseSerializer, "EncryptedSerializer")()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@given(json_values)
@settings(max_examples=60, deadline=None)
def test_every_value_round_trips_and_encrypts_the_same_way_twice(value: Any) -> None:
    serializer = c.app.serializer
    text = serializer.serialize(value)
    assert text.startswith(ENCRYPTED) and serializer.serialize(value) == text
    assert serializer.deserialize(text) == serializer.inner.deserialize(
        serializer.inner.serialize(value)
    )


@pytest.mark.wf(backend="sqlite")
def test_wf_env_runs_an_encrypted_app_and_replays_it_after_the_test(wf_env: WorkflowEnv) -> None:
    # the plugin replays every workflow of this test from its (encrypted) history afterwards
    run = _run_checkout(wf_env)
    assert wf_env.query(run).state == {"phase": f"charged {c.MARKER}"}
    assert c.MARKER not in wf_env.history_json()
    report = wf_env.check_crash_safety(c.checkout, "card-2")
    assert report.ok, report


def test_a_serializer_set_outside_the_app_config_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from pynenc import Pynenc, PynencBuilder

    # pynenc prefers PYNENC__* variables (and config files) to the app's own config values:
    # the app would store plaintext
    monkeypatch.setenv("PYNENC__SERIALIZER_CLS", "JsonSerializer")
    expected = ("but pynenc resolves it to 'JsonSerializer': an environment variable "
                "PYNENC__SERIALIZER_CLS, a config file or pyproject.toml's \\[tool.pynenc\\] sets it")
    app = Pynenc(config_values={"app_id": "crypto-tests-env-override"})
    with pytest.raises(InvalidWorkflowArgument, match=expected):
        enable_workflows(app, encryption=c.KEYRING)
    assert app.config_values == {"app_id": "crypto-tests-env-override"}  # left as it was
    with pytest.raises(ValueError, match=expected):
        PynencBuilder().app_id("crypto-tests-env-override-2").enable_workflows(
            encryption=c.KEYRING
        ).build()


def test_a_workflow_without_arguments_does_not_keep_its_key(rotated: None) -> None:
    """The documented limit of the rule above: with no stored argument of its own, a run
    started under k1 computes its children's call ids under the current key when it replays
    after the rotation, so it does not find them (a replay reports it; a production replay
    would route the child again)."""
    from pynenc_wf_testing.errors import NondeterminismError

    with WorkflowEnv(seed=6) as env:
        run = env.start(c.nightly)
        assert run.result == f"charged {c.MARKER}"
        history = env.history_json()
    enable_workflows(c.app, encryption=Keyring({"k2": c.KEY_2, "k1": c.KEY_1}, current="k2"))
    with pytest.raises(NondeterminismError, match=r"at child call #1: the history recorded "
                       r"charge\(card=pynenc-wf-enc:1:k1:.*but the replayed code now calls "
                       r"charge\(card=pynenc-wf-enc:1:k2:"):
        Replayer(c.app).replay(history, workflow_id=run.workflow_id)
