"""docs/security.md's keyring promises, probed as an operator would set ``PYNENC_WF_KEYS``."""

from __future__ import annotations

import pytest

from pynenc_wf_testing.engine import InvalidWorkflowArgument, Keyring, payload_key_id

NEW, OLD = bytes(range(64)), bytes(range(64, 128))


def _env(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("PYNENC_WF_KEYS", value)


def test_the_current_key_is_the_first(monkeypatch: pytest.MonkeyPatch) -> None:
    _env(monkeypatch, f"k2={Keyring.encode_key(NEW)},k1={Keyring.encode_key(OLD)}")
    ring = Keyring.from_env()
    assert (ring.current, ring.key_ids) == ("k2", ["k1", "k2"])
    assert ring.key("k1") == OLD


def test_spaces_around_entries_and_ids_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    """``k2=..., k1 = ...`` used to fail: "key id 'k1 ' is not valid"."""
    _env(monkeypatch, f" k2 = {Keyring.encode_key(NEW)} , k1 ={Keyring.encode_key(OLD)}")
    ring = Keyring.from_env()
    assert (ring.current, ring.key_ids) == ("k2", ["k1", "k2"])


def test_a_key_id_given_twice_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """The second entry used to replace the first silently: with ``k2=<new>,k2=<old>`` the
    ring encrypted every new payload with the old key."""
    _env(monkeypatch, f"k2={Keyring.encode_key(NEW)},k2={Keyring.encode_key(OLD)}")
    with pytest.raises(InvalidWorkflowArgument, match="key id 'k2' appears twice"):
        Keyring.from_env()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "is not set or empty"),
        ("k1", "lacks '='"),
        ("k1=notbase64!!", "not valid base64"),
        ("k1=" + Keyring.encode_key(b"short"), "must be bytes of length 32, 48 or 64"),
        ("k:1=" + Keyring.encode_key(NEW), "key id 'k:1' is not valid"),
    ],
)
def test_bad_key_variables_name_the_problem(
    monkeypatch: pytest.MonkeyPatch, value: str, message: str
) -> None:
    _env(monkeypatch, value)
    with pytest.raises(InvalidWorkflowArgument, match=message):
        Keyring.from_env()


def test_keyring_arguments_are_checked() -> None:
    with pytest.raises(InvalidWorkflowArgument, match="current key id 'k2' is not in the keyring"):
        Keyring({"k1": NEW}, current="k2")
    with pytest.raises(InvalidWorkflowArgument, match="got str"):
        Keyring({"k1": Keyring.encode_key(NEW)}, current="k1")  # type: ignore[dict-item]
    with pytest.raises(InvalidWorkflowArgument, match="non-empty mapping"):
        Keyring({}, current="k1")


def test_payload_key_id_names_the_key_of_a_stored_payload() -> None:
    assert payload_key_id('"plain"') is None
    assert payload_key_id("pynenc-wf-enc:1:k1:abc") == "k1"
    assert len(Keyring.generate_key()) == 64
