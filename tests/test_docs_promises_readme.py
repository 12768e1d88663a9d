"""README.md prose promises that no other test states, probed as a user would write them."""

from __future__ import annotations

import datetime as dt

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


#: Made before any environment opens: a real ``datetime``, not freezegun's ``FakeDatetime``.
LAUNCH = dt.datetime(2030, 1, 1, 10, tzinfo=dt.UTC)


@app.task
def days_until(start: dt.datetime, end: dt.date) -> int:
    return (end - start.date()).days


def test_a_datetime_argument_survives_the_serializer_check(wf_env: WorkflowEnv) -> None:
    """ "Values that cannot round-trip are an error at the call": a datetime does round-trip
    (under the frozen virtual clock jsonpickle rebuilds it as freezegun's ``FakeDatetime``, an
    equal subclass, which is not a loss; a datetime made before the environment opened, as
    a module constant, used to be refused as one)."""
    assert type(LAUNCH).__module__ == "datetime"
    assert wf_env.start(days_until, LAUNCH, dt.date(2030, 1, 31)).result == 30
