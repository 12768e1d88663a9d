# mypy: disallow-subclassing-any=False
"""SimMemClientDataStore: plain JSON values (``None``, bool, int, float, str and
lists / str-keyed dicts of them) are serialized and deserialized with the standard ``json``
module, byte for byte what ``JsonPickleSerializer`` (jsonpickle on the stdlib json backend)
produces (the text of a small int is one shared str); anything else, or any other
configured serializer, goes through the serializer.
The serializer itself is never switched: call ids and replay keys depend on its output.

Part of the fast memory backend (see ``fast_memory/__init__.py``); docs/benchmarks.md has
what it buys.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from pynenc.client_data_store.mem_client_data_store import MemClientDataStore
from pynenc.serializer.constants import ReservedKeys

if TYPE_CHECKING:
    pass

__all__ = ["SimMemClientDataStore", "dumps_plain", "loads_plain"]


_REFERENCE_PREFIX: str = ReservedKeys.CLIENT_DATA.value
_encode_str = json.encoder.encode_basestring_ascii  # what json.dumps(str) returns
_MAX_DEPTH = 32


def _plain_container(obj: Any, seen: set[int], depth: int) -> bool:
    """True if ``obj`` (a list or dict) holds only plain JSON values, every container once
    (jsonpickle writes ``py/id`` references for repeated ones), dict keys str and not
    jsonpickle tags (``py/...`` keys are reserved: jsonpickle drops them)."""
    if depth > _MAX_DEPTH or id(obj) in seen:
        return False
    seen.add(id(obj))
    if type(obj) is dict:
        for key, value in obj.items():
            if type(key) is not str or key.startswith("py/"):
                return False
            if not _plain_value(value, seen, depth):
                return False
        return True
    return all(_plain_value(value, seen, depth) for value in obj)


def _plain_value(value: Any, seen: set[int], depth: int) -> bool:
    t = type(value)
    if t is str or t is int or t is float or t is bool or value is None:
        return True
    if t is list or t is dict:
        return _plain_container(value, seen, depth + 1)
    return False


# The text of CPython's cached small ints, made once: the serialized arguments and results of
# every call share one str per small int instead of holding a copy each (equal strs: a str's
# identity is not observable state).
_SMALL_INT_TEXT: tuple[str, ...] = tuple(int.__repr__(i) for i in range(-5, 257))


def dumps_plain(obj: Any) -> str | None:
    """``jsonpickle.dumps(obj)`` for a plain JSON value (stdlib json backend, default
    options), or ``None`` when ``obj`` is not plain. jsonpickle passes str/int/float/bool/None
    through unchanged and rebuilds lists and str-keyed dicts in order, then calls
    ``json.dumps(value, sort_keys=False)``: the same text as ``json.dumps(obj)``."""
    t = type(obj)
    if t is str:
        return _encode_str(obj)
    if t is int:
        if -5 <= obj <= 256:
            small: str = _SMALL_INT_TEXT[obj + 5]
            return small
        return int.__repr__(obj)
    if obj is None:
        return "null"
    if t is bool:
        return "true" if obj else "false"
    if t is float or ((t is list or t is dict) and _plain_container(obj, set(), 0)):
        return json.dumps(obj)
    return None


def _plain_keys(value: Any, depth: int) -> bool:
    if depth > _MAX_DEPTH:
        return False
    if type(value) is dict:
        for key, item in value.items():
            if key.startswith("py/"):
                return False
            if type(item) in (dict, list) and not _plain_keys(item, depth + 1):
                return False
        return True
    if type(value) is list:
        return all(type(item) not in (dict, list) or _plain_keys(item, depth + 1) for item in value)
    return True


_NO_VALUE = object()


def loads_plain(text: str) -> Any:
    """``jsonpickle.loads(text)`` when ``text`` is plain JSON without jsonpickle tags (what
    :func:`dumps_plain` writes), else ``_NO_VALUE``. jsonpickle restores such a document into
    equal lists, dicts and scalars."""
    first = text[:1]
    if first == "{" or first == "[":
        try:
            value = json.loads(text)
        except ValueError:
            return _NO_VALUE
        return value if _plain_keys(value, 0) else _NO_VALUE
    # The commonest documents without the JSON decoder: what json.loads returns for them.
    if first == '"':
        inner = text[1:-1]
        if (
            len(text) >= 2
            and text[-1] == '"'
            and "\\" not in inner
            and '"' not in inner
            and inner.isascii()
            and inner.isprintable()
        ):
            return inner
    elif _JSON_INT.fullmatch(text) is not None:
        return int(text)
    try:
        return json.loads(text)
    except ValueError:
        return _NO_VALUE


_JSON_INT = re.compile(r"-?(?:0|[1-9][0-9]*)")


def _jsonpickle_is_stock_json() -> bool:
    """jsonpickle encodes with the stdlib json backend and its default options."""
    import jsonpickle  # type: ignore[import-untyped]

    backend: Any = jsonpickle.json
    try:
        names = list(backend._backend_names)
        enc = backend._encoder_options.get("json")
        dec = backend._decoder_options.get("json", ((), {}))
    except AttributeError:  # pragma: no cover - another jsonpickle layout
        return False
    return (
        bool(names)
        and names[0] == "json"
        and enc is not None
        and tuple(enc[0]) == ()
        and enc[1] == {"sort_keys": False}
        and tuple(dec[0]) == ()
        and dec[1] == {}
    )


class SimMemClientDataStore(MemClientDataStore):
    """``MemClientDataStore`` with a plain-JSON fast path and its config read once.

    The fast path is used only while the app's serializer is exactly pynenc's
    ``JsonPickleSerializer`` on jsonpickle's stdlib json backend with default options; it
    writes the same text the serializer would (see :func:`dumps_plain`). Size routing
    (inline below ``min_size_to_cache``, external storage above) is pynenc's own.
    """

    def __init__(self, app: Any) -> None:
        super().__init__(app)
        self._fast: bool | None = None
        self._inline_below = 0
        self._disabled = False

    def _fast_enabled(self) -> bool:
        if self._fast is None:
            from pynenc.serializer.json_pickle_serializer import JsonPickleSerializer

            self._fast = (
                type(self.app.serializer) is JsonPickleSerializer and _jsonpickle_is_stock_json()
            )
            self._disabled = bool(self.conf.disable_client_data_store)
            self._inline_below = int(self.conf.min_size_to_cache)
        return self._fast

    def serialize(self, obj: Any, disable_cache: bool = False) -> str:
        if not (self._fast if self._fast is not None else self._fast_enabled()):
            serialized: str = super().serialize(obj, disable_cache)
            return serialized
        text = dumps_plain(obj)
        if text is None:
            serialized = super().serialize(obj, disable_cache)
            return serialized
        if self._disabled or disable_cache:
            return text
        if type(obj) is str and obj.startswith(_REFERENCE_PREFIX):
            return obj
        if len(text) < self._inline_below:
            return text
        key: str = self._maybe_store(text)
        if self.is_reference(key):
            self._cache_deserialized(key, obj)
        return key

    def resolve(self, data: str) -> Any:
        if data.startswith(_REFERENCE_PREFIX):
            return self._resolve_reference(data)
        if self._fast if self._fast is not None else self._fast_enabled():
            value = loads_plain(data)
            if value is not _NO_VALUE:
                return value
        return self.app.serializer.deserialize(data)

    def is_reference(self, value: str) -> bool:
        return value.startswith(_REFERENCE_PREFIX)
