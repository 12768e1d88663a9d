"""The one undo mechanism every monkeypatch of the harness goes through.

A :class:`PatchSet` records, for each name it replaces, what was there before (the raw
``__dict__`` entry, so that a ``classmethod``/``property``/inherited attribute comes back as
it was), plus undo actions for changes that are not an attribute (a started freezer, the
``random`` module's state, gc thresholds). :meth:`PatchSet.undo` runs them newest first; a
failing undo does not stop the older ones (an environment's close must never leave the process
half patched), and the first error is raised once all of them ran.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["PatchSet"]

_MISSING = object()


class PatchSet:
    """Patches applied in order and undone in reverse order."""

    def __init__(self) -> None:
        self._undo: list[Callable[[], None]] = []
        self._patched: set[tuple[int, str]] = set()

    def __len__(self) -> int:
        return len(self._undo)

    def set_attr(self, target: Any, name: str, value: Any) -> None:
        """``setattr(target, name, value)``, undone by putting back what ``target`` itself
        held (or removing the name when it was inherited or absent). Setting the same name
        again (a reseed) keeps the first original."""
        key = (id(target), name)
        if key not in self._patched:
            namespace = getattr(target, "__dict__", None)
            original = namespace.get(name, _MISSING) if namespace is not None else _MISSING
            if original is _MISSING and namespace is None:
                original = getattr(target, name, _MISSING)
            self._patched.add(key)
            self._undo.append(lambda: self._put_back(target, name, original, key))
        setattr(target, name, value)

    def _put_back(self, target: Any, name: str, original: Any, key: tuple[int, str]) -> None:
        self._patched.discard(key)
        if original is _MISSING:
            if name in getattr(target, "__dict__", {}):
                delattr(target, name)
        else:
            setattr(target, name, original)

    def on_undo(self, action: Callable[[], None]) -> None:
        """Run ``action`` when the set is undone (in reverse order with the attributes)."""
        self._undo.append(action)

    def undo(self) -> None:
        """Undo everything, newest first; every action runs even if an earlier one fails."""
        error: BaseException | None = None
        while self._undo:
            action = self._undo.pop()
            try:
                action()
            except BaseException as exc:
                if error is None:
                    error = exc
        self._patched.clear()
        if error is not None:
            raise error
