"""The releases of the libraries whose internals the harness touches, checked before patching.

Every patch in this package replaces a name of pynenc, freezegun or the stdlib, and the redis
backend subclasses pynenc-redis and fakeredis internals: each was written against the releases
named in :data:`SUPPORTED` (the same bounds as ``pyproject.toml``). Outside them a patch could
silently stop applying or change behaviour, so :func:`check_versions` refuses to start instead,
naming the library, the installed and the supported versions. It runs when an environment
installs its patches (pynenc, freezegun) and when a redis backend is built (pynenc-redis, and
fakeredis unless a real server is used).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from pynenc_wf_testing.errors import IncompatibleVersionError

__all__ = ["SUPPORTED", "Supported", "check_versions", "installed_version"]


@dataclass(frozen=True)
class Supported:
    """The releases of one distribution the harness supports, and what of it we rely on."""

    spec: str
    relies_on: str


SUPPORTED: dict[str, Supported] = {
    "pynenc": Supported(
        ">=0.4.0,<0.5",
        "pynenc 0.4's component classes, module-level names (generate_invocation_id, "
        "compute_args_id, extract_module_info, create_logger, sqlite_conn) and a copy of "
        "DeterministicExecutor.execute_task",
    ),
    "freezegun": Supported(
        ">=1.5,<1.6",
        "freezegun's private module state (freeze_factories, tz_offsets, ignore_lists, "
        "_get_module_attributes_hash) and the freezer's undo_changes/reals",
    ),
    "pynenc-redis": Supported(
        "==0.3.0",
        "the pynenc 0.4 compatibility subclasses of RedisBroker/RedisOrchestrator "
        "(runtime/redis_compat.py)",
    ),
    "fakeredis": Supported(
        ">=2.41,<3",
        "fakeredis's FakeRedisConnection and FakeSocket._process_command (the direct client)",
    ),
}

# Distributions that passed, so that opening an environment checks each only once.
_PASSED: set[str] = set()


def installed_version(distribution: str) -> str | None:
    """The installed version of ``distribution``, or None when it is not installed."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def redis_distributions(url: object) -> tuple[str, ...]:
    """What the redis backend needs installed: fakeredis only without a real server's URL."""
    return ("pynenc-redis",) if url is not None else ("pynenc-redis", "fakeredis")


def check_versions(*distributions: str) -> None:
    """Raise :class:`IncompatibleVersionError` unless every named distribution is installed
    in a supported release."""
    for name in distributions:
        if name in _PASSED:
            continue
        supported = SUPPORTED[name]
        found = installed_version(name)
        if found is None:
            raise IncompatibleVersionError(
                f"{name} is not installed; pynenc-wf-testing needs {name}{supported.spec} "
                f"here. Install it, e.g. pip install '{name}{supported.spec}' (the redis "
                "backend's libraries come with pip install 'pynenc-wf-testing[redis]')."
            )
        try:
            ok = SpecifierSet(supported.spec).contains(Version(found), prereleases=True)
        except InvalidVersion:
            ok = False
        if not ok:
            raise IncompatibleVersionError(
                f"{name} {found} is installed, but pynenc-wf-testing supports {name}"
                f"{supported.spec} only: it relies on {supported.relies_on}, which may differ "
                f"in other releases. Install a supported release (pip install "
                f"'{name}{supported.spec}') or a pynenc-wf-testing release made for "
                f"{name} {found}."
            )
        _PASSED.add(name)
