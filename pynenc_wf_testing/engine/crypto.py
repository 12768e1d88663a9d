"""Encrypted payloads: a pynenc serializer that encrypts what the store keeps of an app.

``enable_workflows(app, encryption=Keyring(...))`` makes the app's serializer an
``EncryptedSerializer`` wrapping the one it had (jsonpickle by default). Everything pynenc
hands to its serializer is encrypted: call arguments, results, exceptions that are not
pynenc's own, workflow data (pynenc's records, the engine's, signal payloads, saved state)
and trigger payloads. docs/security.md lists what stays in clear.

Why a serializer: it is pynenc's one extension point that every backend goes through
(``serializer_cls``; the SQLite backend through its client data store, pynenc-redis directly
for workflow data). Why deterministic encryption (AES-SIV): pynenc derives a call's id from
the sha256 of its serialized arguments and replays a workflow's children by that id; a random
nonce would give every replay new call ids (a duplicate child on each). Equal plaintexts under
one key give equal ciphertexts, which is what the call id already reveals.

Rotation: each payload carries the id of its key (``pynenc-wf-enc:1:<key id>:<base64>``).
New payloads use the keyring's current key, except inside a running invocation whose own
arguments were encrypted with an older key still in the keyring: its payloads (child calls,
results, data) keep that key, so a workflow started before a rotation computes the same call
ids when it replays after it.

The keyring is kept out of the store: pynenc writes its config values into the app info as
JSON, so the config holds a reference (``workflow_engine_defaults["encryption"]``) and a
serializer class named after it, registered in this process by ``enable_workflows``, as the
engine does for retry policies.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import threading
from collections.abc import Mapping
from typing import Any, ClassVar

from pynenc.serializer.base_serializer import BaseSerializer

from pynenc_wf_testing.engine.exceptions import InvalidWorkflowArgument, WorkflowEngineError

__all__ = [
    "EncryptedSerializer",
    "EncryptionError",
    "Keyring",
    "MissingEncryptionKey",
    "payload_key_id",
]

#: Start of every encrypted payload; the version is bound to the ciphertext too.
PREFIX = "pynenc-wf-enc:1:"
_KEY_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
#: AES-SIV key sizes (two AES keys each: AES-128, -192, -256).
KEY_SIZES = (32, 48, 64)
DEFAULT_ENV = "PYNENC_WF_KEYS"


class EncryptionError(WorkflowEngineError, ValueError):
    """A stored payload cannot be decrypted: altered, not encrypted (while the keyring does
    not allow plaintext), or encrypted by another key under the same id."""


class MissingEncryptionKey(EncryptionError, LookupError):
    """A payload was encrypted with a key id the app's keyring lacks."""

    def __init__(self, key_id: str, known: list[str]) -> None:
        super().__init__(
            f"a stored payload was encrypted with key id {key_id!r}, which this app's keyring "
            f"does not have (it has {known}). Add that key to the Keyring given to "
            "enable_workflows(encryption=...) (e.g. in PYNENC_WF_KEYS): old payloads stay "
            "readable only with the key that encrypted them."
        )
        self.key_id = key_id


def require_readable(app: Any, value: Any, what: str) -> None:
    """Raise ``MissingEncryptionKey`` if ``value``, read by an app without a keyring, is an
    encrypted payload: pynenc's own serializer hands such a string back as it is (a client
    would read the ciphertext as the value, or fail far away on it)."""
    key_id = payload_key_id(value)
    if key_id is None:
        return
    error = MissingEncryptionKey(key_id, [])
    error.args = (
        f"{what} of app {app.app_id!r} is encrypted (key id {key_id!r}), and this app was "
        "built without a keyring. Build it as the workers do, with "
        "enable_workflows(encryption=Keyring(...)) holding that key (e.g. "
        "Keyring.from_env() with PYNENC_WF_KEYS).",
    )
    raise error


def _check_value(key: bytes) -> str:
    # A key check value (HMAC of a constant), not the key: tells keyrings apart in the
    # config reference without putting anything derived from the key alone in the store.
    return hmac.new(key, b"pynenc-wf key check", hashlib.sha256).hexdigest()[:16]


class Keyring:
    """The keys an app encrypts its payloads with: ``{key id: key}`` and the current id.

    New payloads use ``current``; every key in the ring can read the payloads it wrote. Keys
    are AES-SIV keys of 32, 48 or 64 bytes (``Keyring.generate_key()``: 64). Rotate by adding
    a new key and making it current; remove an old key only when no stored payload uses it
    (``payload_key_id`` tells). ``allow_plaintext=True`` reads payloads written before the
    app enabled encryption (otherwise they are an ``EncryptionError``).
    """

    __slots__ = ("_keys", "allow_plaintext", "current")

    def __init__(
        self, keys: Mapping[str, bytes], current: str, *, allow_plaintext: bool = False
    ) -> None:
        if not isinstance(keys, Mapping) or not keys:
            raise InvalidWorkflowArgument(
                f"Keyring needs a non-empty mapping {{key id: key bytes}}, got {keys!r}."
            )
        checked: dict[str, bytes] = {}
        for key_id, key in keys.items():
            if not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id):
                raise InvalidWorkflowArgument(
                    f"key id {key_id!r} is not valid: use 1-64 characters among letters, "
                    "digits, '_', '.', '-' (it is stored next to each payload)."
                )
            if not isinstance(key, bytes) or len(key) not in KEY_SIZES:
                size = len(key) if isinstance(key, bytes) else type(key).__name__
                raise InvalidWorkflowArgument(
                    f"key {key_id!r} must be bytes of length 32, 48 or 64 (AES-SIV), got "
                    f"{size}; make one with Keyring.generate_key()."
                )
            checked[key_id] = key
        if current not in checked:
            raise InvalidWorkflowArgument(
                f"current key id {current!r} is not in the keyring (key ids {sorted(checked)})."
            )
        self._keys = checked
        self.current = current
        self.allow_plaintext = bool(allow_plaintext)

    @staticmethod
    def generate_key() -> bytes:
        """A new random 64-byte AES-SIV key (AES-256)."""
        return os.urandom(64)

    @classmethod
    def from_env(cls, variable: str = DEFAULT_ENV, *, allow_plaintext: bool = False) -> Keyring:
        """The keyring in environment variable ``variable``: ``id=<base64 key>`` entries
        separated by commas, the current key first (``k2=...,k1=...``)."""
        text = os.environ.get(variable, "").strip()
        if not text:
            raise InvalidWorkflowArgument(
                f"environment variable {variable} is not set or empty; set it to "
                "'<key id>=<base64 key>[,<older id>=<base64 key>...]', the current key first."
            )
        keys: dict[str, bytes] = {}
        for entry in text.split(","):
            key_id, sep, encoded = entry.strip().partition("=")
            key_id = key_id.strip()  # "k2=..., k1 = ..." reads as written
            if not sep:
                raise InvalidWorkflowArgument(
                    f"{variable}: entry {entry.strip()[:20]!r}... lacks '=': write "
                    "'<key id>=<base64 key>'."
                )
            if key_id in keys:
                # the later entry would silently replace the earlier (the current key, if
                # it was the first): a typo must not change which key encrypts
                raise InvalidWorkflowArgument(
                    f"{variable}: key id {key_id!r} appears twice; give each key its own id "
                    "(the current key first, e.g. 'k2=<new>,k1=<old>')."
                )
            try:
                keys[key_id] = base64.b64decode(encoded.strip(), validate=True)
            except (binascii.Error, ValueError):
                raise InvalidWorkflowArgument(
                    f"{variable}: the key of {key_id!r} is not valid base64."
                ) from None
        return cls(keys, current=next(iter(keys)), allow_plaintext=allow_plaintext)

    @staticmethod
    def encode_key(key: bytes) -> str:
        """``key`` as the base64 text ``from_env`` reads."""
        return base64.b64encode(key).decode()

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._keys

    @property
    def key_ids(self) -> list[str]:
        """The key ids in the ring, sorted."""
        return sorted(self._keys)

    def key(self, key_id: str) -> bytes:
        """The key of ``key_id``; ``MissingEncryptionKey`` if the ring lacks it."""
        try:
            return self._keys[key_id]
        except KeyError:
            raise MissingEncryptionKey(key_id, self.key_ids) from None

    def reference(self) -> str:
        """A JSON-safe name of this keyring, derived from its ids, key check values, current
        id and plaintext setting: a process that builds the same app finds the same one."""
        parts = [self.current, str(self.allow_plaintext)] + [
            f"{key_id}={_check_value(self._keys[key_id])}" for key_id in self.key_ids
        ]
        return "keyring-" + hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]

    def __repr__(self) -> str:  # never the key material
        return f"Keyring(current={self.current!r}, key_ids={self.key_ids})"


def payload_key_id(text: str) -> str | None:
    """The key id an encrypted payload (a string the store keeps) was encrypted with, or
    ``None`` if it is not an encrypted payload."""
    if not isinstance(text, str) or not text.startswith(PREFIX):
        return None
    key_id, sep, _ = text[len(PREFIX) :].partition(":")
    return key_id if sep else None


#: Keyrings by reference, and the serializer class of each (keyring, inner serializer).
_KEYRINGS: dict[str, Keyring] = {}
_CLASSES: dict[str, type[EncryptedSerializer]] = {}
_REGISTRY_LOCK = threading.Lock()


class EncryptedSerializer(BaseSerializer):  # type: ignore[misc]
    """pynenc serializer that encrypts the output of another one (AES-SIV, key id inside).

    Not configured by hand: ``enable_workflows(encryption=...)`` sets the app's
    ``serializer_cls`` to a subclass bound to its keyring and to the serializer it wraps
    (pynenc builds serializers by class name, without arguments)."""

    keyring_ref: ClassVar[str] = ""
    inner_cls: ClassVar[str] = ""

    def __init__(self) -> None:
        from pynenc.util.subclasses import get_subclass

        keyring = _KEYRINGS.get(type(self).keyring_ref)
        if keyring is None:
            raise InvalidWorkflowArgument(
                f"serializer {type(self).__name__} has no keyring in this process: configure "
                "encryption with enable_workflows(app, encryption=Keyring(...)) (or the "
                "builder's .enable_workflows(encryption=...)) where the app is defined, not "
                "by setting serializer_cls."
            )
        self.keyring = keyring
        self.inner: BaseSerializer = get_subclass(BaseSerializer, type(self).inner_cls)()
        self._ciphers: dict[str, Any] = {}

    def _cipher(self, key_id: str) -> Any:
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            from cryptography.hazmat.primitives.ciphers.aead import AESSIV

            cipher = self._ciphers[key_id] = AESSIV(self.keyring.key(key_id))
        return cipher

    def serialize(self, obj: Any) -> str:
        """Encrypt the wrapped serializer's text of ``obj`` with the key of this write."""
        key_id = self._write_key_id()
        plain = self.inner.serialize(obj).encode()
        sealed = self._cipher(key_id).encrypt(plain, [PREFIX.encode(), key_id.encode()])
        return f"{PREFIX}{key_id}:{base64.urlsafe_b64encode(sealed).decode()}"

    def deserialize(self, serialized_obj: str) -> Any:
        """Decrypt with the key named in the payload, then the wrapped serializer's load."""
        key_id = payload_key_id(serialized_obj)
        if key_id is None:
            if self.keyring.allow_plaintext:
                return self.inner.deserialize(serialized_obj)
            # (its length only: the message must not carry what should have been secret)
            raise EncryptionError(
                f"a stored payload of {len(serialized_obj)} characters is not encrypted: this "
                "app encrypts its payloads. Payloads written before it enabled encryption need "
                "Keyring(..., allow_plaintext=True)."
            )
        from cryptography.exceptions import InvalidTag

        body = serialized_obj[len(PREFIX) + len(key_id) + 1 :]
        cipher = self._cipher(key_id)  # MissingEncryptionKey names the id
        try:
            sealed = base64.urlsafe_b64decode(body.encode())
            plain = cipher.decrypt(sealed, [PREFIX.encode(), key_id.encode()])
        except (InvalidTag, binascii.Error, ValueError):
            raise EncryptionError(
                f"a stored payload encrypted with key id {key_id!r} does not decrypt: it was "
                "altered, or the key under that id is not the one that encrypted it."
            ) from None
        return self.inner.deserialize(plain.decode())

    def _write_key_id(self) -> str:
        """The current key, or the key of the running invocation's own arguments if they
        were encrypted with another key of the ring (keeps call ids stable across a
        rotation; see the module docstring)."""
        pinned = _running_invocation_key_id()
        return pinned if pinned is not None and pinned in self.keyring else self.keyring.current


def _running_invocation_key_id() -> str | None:
    from pynenc import context

    app = context.get_current_app()
    if app is None:
        return None
    invocation = context.get_dist_invocation_context(app.app_id)
    if invocation is None:
        return None
    # The arguments as stored (a LazyCall read from the store holds them), read from the
    # private attribute: the public property would serialize them if they were not yet, and
    # serializing here would recurse.
    stored = getattr(invocation.call, "_serialized_arguments", None) or {}
    for name in sorted(stored):
        key_id = payload_key_id(stored[name])
        if key_id is not None:
            return key_id
    return None


def register_keyring(keyring: Keyring, inner_cls: str) -> tuple[str, str]:
    """Register ``keyring`` in this process; return its reference and the name of the
    serializer class that encrypts ``inner_cls``'s output with it."""
    if not isinstance(keyring, Keyring):
        raise InvalidWorkflowArgument(
            f"encryption= expects a Keyring, got {type(keyring).__name__}: {keyring!r}."
        )
    try:  # a clear error at enable time, not at the first write
        import cryptography  # noqa: F401
    except ImportError:
        raise InvalidWorkflowArgument(
            "encryption needs the 'cryptography' package: pip install 'pynenc-wf-testing[crypto]'."
        ) from None

    ref = keyring.reference()
    name = "EncryptedSerializer_" + hashlib.sha256(f"{ref}|{inner_cls}".encode()).hexdigest()[:16]
    with _REGISTRY_LOCK:
        _KEYRINGS[ref] = keyring
        if name not in _CLASSES:
            # Kept referenced here: pynenc finds serializer classes among the live subclasses.
            _CLASSES[name] = type(
                name, (EncryptedSerializer,), {"keyring_ref": ref, "inner_cls": inner_cls}
            )
    return ref, name


def check_serializer_applies(
    config: Mapping[str, Any], expected: str, config_filepath: str | None = None
) -> None:
    """Raise if pynenc would not use the encrypting serializer ``expected`` for an app with
    these config values: in pynenc, ``PYNENC__SERIALIZER_CLS``, a config file and
    pyproject.toml's ``[tool.pynenc]`` outrank an app's own config values, and would silently
    store plaintext."""
    from pynenc.conf.config_pynenc import ConfigPynenc

    resolved = ConfigPynenc(config_values=dict(config), config_filepath=config_filepath)
    if resolved.serializer_cls != expected:
        raise InvalidWorkflowArgument(
            f"encryption needs the app's serializer_cls to be {expected}, but pynenc resolves "
            f"it to {resolved.serializer_cls!r}: an environment variable "
            "PYNENC__SERIALIZER_CLS, a config file or pyproject.toml's [tool.pynenc] sets it, "
            "and pynenc lets those outrank the app's own config. Remove that setting; to "
            "choose the serializer that encryption wraps, set it in the app's own config "
            "(e.g. PynencBuilder().serializer_json())."
        )


def inner_serializer(serializer_cls: str | None) -> str:
    """The serializer an encrypted one wraps, given the config's ``serializer_cls``."""
    if not serializer_cls:
        return "JsonPickleSerializer"
    existing = _CLASSES.get(serializer_cls)
    return existing.inner_cls if existing is not None else serializer_cls


def is_encrypted_serializer(serializer_cls: str | None) -> bool:
    return serializer_cls in _CLASSES
