"""README.md prose promises that no other test states, probed as a user would write them."""

from __future__ import annotations

from pynenc_wf_testing import WorkflowEnv
from tests.docs_shop import app, note


def _source_of(key: str) -> str:
    explained = app.conf.explain()
    line = next(line for line in str(explained).splitlines() if line.startswith(f"{key} = "))
    return line.rsplit("[from: ", 1)[1].rstrip("]")


def test_forced_keys_show_the_harness_as_their_source_and_come_back_on_close() -> None:
    """ "Apps join by themselves": "`app.conf.explain()` shows `pynenc-wf-testing` as the
    source of the forced keys", and "the app's own configuration is back when the env
    closes"."""
    before = {key: _source_of(key) for key in ("broker_cls", "runner_cls")}
    assert "pynenc-wf-testing" not in before.values()
    with WorkflowEnv(seed=1) as env:
        assert env.start(note, "x").result == "x"  # the app joined by itself
        assert _source_of("broker_cls") == _source_of("runner_cls") == "pynenc-wf-testing"
        assert app.conf.runner_cls == "SimRunner"
    assert {key: _source_of(key) for key in before} == before
    assert app.conf.runner_cls != "SimRunner"
