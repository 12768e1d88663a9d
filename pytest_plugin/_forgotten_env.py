"""An environment the test body opened and left open is closed after the test body, and the
test fails naming where it was opened."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Generator

import pytest

_WORLD_MODULE = "pynenc_wf_testing.runtime.world"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """An environment the test body opened and did not close is closed here, and the test
    fails naming where it was opened: left open, it would keep the virtual clock frozen and
    refuse every later environment of the process."""
    world = sys.modules.get(_WORLD_MODULE)  # not imported: nothing could have opened one
    before = world.active_world() if world is not None else None
    try:
        result = yield
    except BaseException:
        _close_forgotten(before)  # the test failed already: just do not poison the next
        raise
    message = _close_forgotten(before)
    if message:
        pytest.fail(message, pytrace=False)
    return result


def _close_forgotten(before: object) -> str | None:
    """Close an environment opened during the test body and still open; say where the ones
    closed this way (or on garbage collection) were opened."""
    world = sys.modules.get(_WORLD_MODULE)
    if world is None:
        return None
    places: list[str] = world.take_forgotten()
    active = world.active_world()
    if active is not None and active is not before:
        places.append(active.opened_at)
        with contextlib.suppress(Exception):
            active.close()
    if not places:
        return None
    return (
        f"this test left a WorkflowEnv open (opened at {', '.join(places)}); the harness "
        "closed it. Use `with WorkflowEnv(...) as env:`, call env.close(), or use the "
        "wf_env fixture."
    )
