"""``Settings``: the session-wide configuration of the plugin, resolved once in
``pytest_configure`` from the options and ini values (an option over its ini value). A bad
value is a ``pytest.UsageError`` at start-up, not an error in every test."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import pytest

from ._options import (
    DEFAULT_LOG_LEVEL,
    EVICT_MODES,
    INI_APP,
    INI_BACKEND,
    INI_EVICT,
    INI_LOG_LEVEL,
    INI_MAX_STEPS,
    INI_REPLAY_CHECK,
    INI_SEED,
    INI_SLICE_TIMEOUT,
    INI_SLOTS,
    INI_SUMMARY,
    INI_WORKERS,
    LOG_LEVELS,
    OPT_APP,
    OPT_BACKEND,
    OPT_EVICT,
    OPT_KEEP_DB,
    OPT_LOG_LEVEL,
    OPT_MAX_STEPS,
    OPT_NO_REPLAY_CHECK,
    OPT_RECORD,
    OPT_REPORT,
    OPT_SEED,
    OPT_SLICE_TIMEOUT,
    OPT_SLOTS,
    OPT_SUMMARY,
    OPT_WORKERS,
)

__all__ = ["SETTINGS_KEY", "Setting", "Settings", "resolve_settings"]


@dataclass(frozen=True)
class Setting:
    """A resolved option value and where it came from (for error messages)."""

    value: Any
    origin: str


@dataclass(frozen=True)
class Settings:
    """The session-wide configuration of the plugin, resolved once in ``pytest_configure``."""

    seed: Setting | None
    app: Setting | None
    max_steps: Setting | None
    log_level: str
    summary: bool
    backend: Setting | None = None
    record_dir: str | None = None
    report_dir: str | None = None
    keep_db_dir: str | None = None
    #: After each passing test, replay every workflow of its env from the recorded history.
    replay_check: bool = True
    #: real seconds one slice may run (0: no watchdog); None: the library's default
    slice_timeout: Setting | None = None
    #: simulated workers and slots per worker (None: no worker pool)
    workers: Setting | None = None
    slots: Setting | None = None
    #: ``WorkflowEnv(evict=...)``: "never" (cached waits) or "every_wait"
    evict: Setting | None = None


SETTINGS_KEY = pytest.StashKey[Settings]()


def _ini_int(config: pytest.Config, name: str, *, minimum: int) -> Setting | None:
    raw = str(config.getini(name)).strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or value < minimum:
        raise pytest.UsageError(
            f"ini option {name} = {raw!r}: expected an integer >= {minimum}, e.g. {name} = 7."
        )
    return Setting(value, f"ini option {name}")


def _cli_int(config: pytest.Config, opt: str, *, minimum: int) -> Setting | None:
    value = config.getoption(opt)
    if value is None:
        return None
    if value < minimum:
        raise pytest.UsageError(f"{opt}={value}: expected an integer >= {minimum}.")
    return Setting(value, opt)


def _slice_timeout(config: pytest.Config) -> Setting | None:
    value = config.getoption(OPT_SLICE_TIMEOUT)
    if value is not None:
        if value < 0:
            raise pytest.UsageError(
                f"{OPT_SLICE_TIMEOUT}={value}: expected seconds >= 0 (0 disables the watchdog)."
            )
        return Setting(value, OPT_SLICE_TIMEOUT)
    raw = str(config.getini(INI_SLICE_TIMEOUT)).strip()
    if not raw:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if seconds < 0:
        raise pytest.UsageError(
            f"ini option {INI_SLICE_TIMEOUT} = {raw!r}: expected seconds >= 0 (0 disables the "
            f"watchdog), e.g. {INI_SLICE_TIMEOUT} = 30."
        )
    return Setting(seconds, f"ini option {INI_SLICE_TIMEOUT}")


def _ini_bool(config: pytest.Config, name: str) -> bool:
    """A bool ini value; pytest's own error ("invalid truth value") does not name the option."""
    try:
        return bool(config.getini(name))
    except (ValueError, pytest.UsageError) as error:  # pytest: "invalid truth value 'maybe'"
        raise pytest.UsageError(
            f"ini option {name}: {error}; expected a boolean (true/false, yes/no, on/off, 1/0), "
            f"e.g. {name} = false."
        ) from None


def _output_dir(config: pytest.Config, opt: str) -> str | None:
    """A directory option (``--wf-record`` ...), made at start-up: a file's path or a place
    where no directory can be made is a usage error now, not an error in every test."""
    value: str | None = config.getoption(opt)
    if not value:
        return None
    if os.path.exists(value) and not os.path.isdir(value):
        raise pytest.UsageError(f"{opt}={value}: exists and is not a directory. Name a directory.")
    try:
        os.makedirs(value, exist_ok=True)
    except OSError as error:
        raise pytest.UsageError(
            f"{opt}={value}: cannot create the directory ({error.strerror or error}). Name a "
            "directory you can write to."
        ) from None
    return value


def _backend_setting(config: pytest.Config) -> Setting | None:
    setting = _cli_or_ini_text(config, OPT_BACKEND, INI_BACKEND)
    if setting is None:
        return None
    from pynenc_wf_testing.runtime.backends import backend_names

    names = backend_names()
    if setting.value not in names:
        where = setting.origin if setting.origin.startswith("ini") else OPT_BACKEND
        raise pytest.UsageError(
            f"{where} = {setting.value!r}: unknown backend; choose one of {', '.join(names)} "
            "(a backend added with register_backend must be registered before pytest starts "
            "its session, e.g. in conftest.py)."
        )
    return setting


def _cli_or_ini_text(config: pytest.Config, opt: str, ini: str) -> Setting | None:
    if config.getoption(opt):
        return Setting(config.getoption(opt), opt)
    raw = str(config.getini(ini)).strip()
    return Setting(raw, f"ini option {ini}") if raw else None


def _int_setting(config: pytest.Config, opt: str, ini: str, *, minimum: int) -> Setting | None:
    """An integer option, else its ini value (each checked against ``minimum``)."""
    return _cli_int(config, opt, minimum=minimum) or _ini_int(config, ini, minimum=minimum)


def resolve_settings(config: pytest.Config) -> Settings:
    """The session's settings: each option over its ini value; a bad value is a usage error."""
    seed = _int_setting(config, OPT_SEED, INI_SEED, minimum=0)
    max_steps = _int_setting(config, OPT_MAX_STEPS, INI_MAX_STEPS, minimum=1)
    app = _cli_or_ini_text(config, OPT_APP, INI_APP)
    log_level = config.getoption(OPT_LOG_LEVEL)
    if log_level is None:
        given = str(config.getini(INI_LOG_LEVEL)).strip()
        raw = given.lower()
        if raw and raw not in LOG_LEVELS:
            raise pytest.UsageError(
                f"ini option {INI_LOG_LEVEL} = {given!r}: expected one of "
                f"{', '.join(LOG_LEVELS)}."
            )
        log_level = raw or DEFAULT_LOG_LEVEL
    summary = bool(config.getoption(OPT_SUMMARY)) or _ini_bool(config, INI_SUMMARY)
    backend = _backend_setting(config)
    evict = _cli_or_ini_text(config, OPT_EVICT, INI_EVICT)
    if evict is not None and evict.value not in EVICT_MODES:
        raise pytest.UsageError(
            f"{evict.origin} = {evict.value!r}: expected one of {', '.join(EVICT_MODES)}."
        )
    replay_check = not config.getoption(OPT_NO_REPLAY_CHECK) and _ini_bool(
        config, INI_REPLAY_CHECK
    )
    return Settings(
        seed=seed,
        app=app,
        max_steps=max_steps,
        log_level=log_level,
        summary=summary,
        backend=backend,
        record_dir=_output_dir(config, OPT_RECORD),
        report_dir=_output_dir(config, OPT_REPORT),
        keep_db_dir=_output_dir(config, OPT_KEEP_DB),
        replay_check=replay_check,
        slice_timeout=_slice_timeout(config),
        workers=_int_setting(config, OPT_WORKERS, INI_WORKERS, minimum=1),
        slots=_int_setting(config, OPT_SLOTS, INI_SLOTS, minimum=1),
        evict=evict,
    )
