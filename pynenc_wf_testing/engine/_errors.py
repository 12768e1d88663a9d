"""The engine's base error, and the errors of modules that sit below ``exceptions`` in the
import graph (``atomic``); ``exceptions`` re-exports them."""

from __future__ import annotations

__all__ = ["UnsupportedStateBackend", "WorkflowEngineError"]


class WorkflowEngineError(Exception):
    """Base class of the engine's own errors."""


class UnsupportedStateBackend(WorkflowEngineError):
    """The app's state backend has no atomic operations the engine knows how to use
    (``engine.atomic``: pynenc's SQLite and Memory backends, pynenc-redis' Redis backend)."""
