"""The public surface: small, documented, one public home per name (trio's test_exports)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import subprocess
import sys
from types import ModuleType

import pytest

import pynenc_wf_testing
from pynenc_wf_testing import errors


def public_modules() -> list[ModuleType]:
    """The package and every submodule or subpackage with no underscore-named part."""
    modules = [pynenc_wf_testing]
    for info in pkgutil.walk_packages(pynenc_wf_testing.__path__, "pynenc_wf_testing."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            modules.append(importlib.import_module(info.name))
    return modules


def is_package(module: ModuleType) -> bool:
    return hasattr(module, "__path__")


def exported(module: ModuleType) -> dict[str, object]:
    return {name: getattr(module, name) for name in getattr(module, "__all__", ())}


def test_all_names_exist_and_are_unique() -> None:
    names = pynenc_wf_testing.__all__
    assert len(names) == len(set(names))
    for name in names:
        assert hasattr(pynenc_wf_testing, name), name


def test_every_public_module_has_a_docstring_and_an_all() -> None:
    for module in public_modules():
        assert module.__doc__ and module.__doc__.strip(), module.__name__
        assert hasattr(module, "__all__"), f"{module.__name__} has no __all__"
        names = list(module.__all__)
        assert len(names) == len(set(names)), module.__name__
        for name in names:
            assert hasattr(module, name), f"{module.__name__}.{name}"


@pytest.mark.parametrize("name", pynenc_wf_testing.__all__)
def test_every_public_name_has_a_docstring(name: str) -> None:
    obj = getattr(pynenc_wf_testing, name)
    doc = inspect.getdoc(obj)
    assert doc and doc.strip(), f"{name} has no docstring"


def test_each_public_object_has_exactly_one_public_home() -> None:
    """Packages re-export; besides them, one module exports an object, under one name."""
    homes: dict[int, list[tuple[ModuleType, str]]] = {}
    objects: dict[int, object] = {}
    for module in public_modules():
        for name, obj in exported(module).items():
            if isinstance(obj, (ModuleType, int, str, float, bool)):
                continue  # constants and submodules are not "homes" of anything
            homes.setdefault(id(obj), []).append((module, name))
            objects[id(obj)] = obj
    problems = []
    for key, places in homes.items():
        where = [f"{m.__name__}.{n}" for m, n in places]
        if len({n for _, n in places}) != 1:
            problems.append(f"exported under several names: {where}")
        modules = [m for m, _ in places if not is_package(m)]
        if len(modules) != 1:
            problems.append(f"{len(modules)} public non-package homes: {where}")
            continue
        obj = objects[key]
        defined_in = getattr(obj, "__module__", None) or ""
        private_home = defined_in.rsplit(".", 1)[-1].startswith("_")
        is_def = inspect.isclass(obj) or inspect.isfunction(obj)
        if is_def and defined_in != modules[0].__name__ and not private_home:
            problems.append(f"defined in {defined_in} but exported from {where}")
    assert problems == []


def test_every_root_export_comes_from_its_public_home() -> None:
    for name in pynenc_wf_testing.__all__:
        obj = getattr(pynenc_wf_testing, name)
        owners = [
            m.__name__
            for m in public_modules()
            if not is_package(m) and any(o is obj for o in exported(m).values())
        ]
        assert len(owners) == 1, (name, owners)


def test_error_hierarchy() -> None:
    error_names = set(errors.__all__)
    assert error_names <= set(pynenc_wf_testing.__all__)
    base = errors.WorkflowTestingError
    assert issubclass(base, Exception)
    for name in error_names - {"WorkflowTestingError", "CrashSafetyError"}:
        assert issubclass(getattr(errors, name), base), name
    # A crash-safety finding is a test failure: pytest shows it as an assertion.
    assert issubclass(errors.CrashSafetyError, AssertionError)
    assert issubclass(errors.InvalidArgument, TypeError)


def test_harness_errors_live_in_errors_py() -> None:
    """Exception classes of the harness layer (not the engine subpackage) are in errors.py."""
    for module in public_modules():
        if is_package(module) and module is not pynenc_wf_testing:
            continue
        if module.__name__.count(".") > 1:
            continue  # subpackages (the workflow engine) keep their own exceptions module
        for name, obj in exported(module).items():
            if inspect.isclass(obj) and issubclass(obj, BaseException):
                assert obj.__module__ == "pynenc_wf_testing.errors", (module.__name__, name)


def test_deadlock_error_carries_blocked() -> None:
    error = errors.DeadlockError("msg", {"a": "b"})
    assert error.blocked == {"a": "b"}
    assert str(error) == "msg"
    assert errors.DeadlockError("msg").blocked == {}


def test_importing_the_package_does_not_start_a_simulation() -> None:
    code = (
        "import time, uuid, sys\n"
        "sleep, uuid4 = time.sleep, uuid.uuid4\n"
        "import pynenc_wf_testing\n"
        "assert time.sleep is sleep and uuid.uuid4 is uuid4\n"
        "assert 'greenlet' not in sys.modules, 'greenlet imported eagerly'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
