"""Import the objects a command line names as ``package.module:name``: a task or an app."""

from __future__ import annotations

import importlib
from typing import Any

from ._command import CommandError

__all__ = ["load_app", "load_object", "load_task"]


def load_object(spec: str, what: str) -> Any:
    """Import ``package.module:name`` (``what`` names the argument in errors)."""
    module_name, sep, attr = spec.partition(":")
    parts = attr.split(".")
    if (
        not sep
        or not module_name
        or not all(p.isidentifier() for p in parts)
        or not all(p.isidentifier() for p in module_name.split("."))
    ):
        raise CommandError(
            f"{what} {spec!r}: expected 'package.module:name', e.g. "
            "'myshop.tasks:fulfill_order_workflow'.",
            usage=True,
        )
    try:
        obj: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name is not None and module_name.startswith(error.name):
            raise CommandError(
                f"{what} {spec!r}: no module named {error.name!r}; check the name, and put "
                "its project on PYTHONPATH.",
                usage=True,
            ) from None
        raise CommandError(
            f"{what} {spec!r}: importing {module_name!r} failed: {error}."
        ) from None
    except Exception as error:
        raise CommandError(
            f"{what} {spec!r}: importing {module_name!r} raised {type(error).__name__}: "
            f"{error}"
        ) from None
    for part in parts:
        if not hasattr(obj, part):
            raise CommandError(
                f"{what} {spec!r}: module {module_name!r} has no attribute {attr!r}.",
                usage=True,
            )
        obj = getattr(obj, part)
    return obj


def load_task(spec: str, what: str) -> Any:
    """The pynenc task ``spec`` names."""
    from pynenc.task import Task

    task = load_object(spec, what)
    if not isinstance(task, Task):
        raise CommandError(
            f"{what} {spec!r} is a {type(task).__name__}, not a pynenc task: name a function "
            "decorated with @app.workflow (or @app.task).",
            usage=True,
        )
    return task


def load_app(spec: str) -> Any:
    """The pynenc app ``--app spec`` names."""
    from pynenc.app import Pynenc

    app = load_object(spec, "--app")
    if not isinstance(app, Pynenc):
        raise CommandError(
            f"--app {spec!r} is a {type(app).__name__}, not a pynenc app: name the module-level "
            "Pynenc(...) object.",
            usage=True,
        )
    return app

