"""Recorded histories, the Replayer, versioning with patched()."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest

from pynenc_wf_testing import (
    HistoryFormatError,
    NondeterminismError,
    Replayer,
    WorkflowEnv,
    load_history,
)
from tests import replay_apps


@pytest.fixture(autouse=True)
def _version() -> Iterator[None]:
    yield
    replay_apps.VERSION = 1


def record_v1(seed: int = 3) -> str:
    replay_apps.VERSION = 1
    with WorkflowEnv(seed=seed) as env:
        run = env.start(replay_apps.checkout, "o-1")
        assert run.result.startswith("r-o-1/c-o-1-10/")
        return env.history_json()


def test_a_history_replays_cleanly_against_unchanged_code() -> None:
    history = record_v1()
    result = Replayer(replay_apps.app).replay(history)
    assert result.ok and result.completed
    assert result.result.startswith("r-o-1/c-o-1-10/")
    assert result.replayed_calls == 3


def test_replay_executes_no_child() -> None:
    history = record_v1()
    with WorkflowEnv(seed=1) as env:
        env.use(replay_apps.app)
        Replayer(replay_apps.app).replay(history)
        # The replay ran in its own world: this env saw nothing and executed nothing.
        assert env.ledger == []


def test_incompatible_change_names_the_first_divergent_step() -> None:
    history = record_v1()
    replay_apps.VERSION = 2
    with pytest.raises(NondeterminismError) as info:
        Replayer(replay_apps.app).replay(history)
    message = str(info.value)
    assert "workflow checkout#1" in message
    assert "diverged from its recorded history at child call #2" in message
    assert "the history recorded charge(amount=10, order=\"o-1\")" in message
    assert "the replayed code now calls charge(amount=12, order=\"o-1\")" in message


def test_without_raising_the_result_carries_the_error() -> None:
    history = record_v1()
    replay_apps.VERSION = 2
    result = Replayer(replay_apps.app).replay(history, raise_on_replay_failure=False)
    assert not result.ok and isinstance(result.error, NondeterminismError)


def test_patched_replays_old_histories_on_the_old_branch() -> None:
    history = record_v1()
    replay_apps.VERSION = 3
    result = Replayer(replay_apps.app).replay(history)
    assert result.ok and "c-o-1-10" in result.result


def test_patched_sends_new_runs_down_the_new_branch() -> None:
    replay_apps.VERSION = 3
    with WorkflowEnv(seed=3) as env:
        run = env.start(replay_apps.checkout, "o-2")
        assert "c-o-2-12" in run.result
        assert "patch:new-price" in env.steps
        history = env.history_json()
    # ... and the new histories replay too, with the patch marker recorded.
    assert Replayer(replay_apps.app).replay(history).ok


def test_retired_patch_still_replays_histories_recorded_with_it() -> None:
    replay_apps.VERSION = 3
    with WorkflowEnv(seed=3) as env:
        env.start(replay_apps.checkout, "o-3").result
        history = env.history_json()
    replay_apps.VERSION = 2  # the patch removed, only the new branch kept
    assert Replayer(replay_apps.app).replay(history).ok


def test_a_tampered_child_argument_is_a_divergence() -> None:
    doc = json.loads(record_v1())
    workflow = doc["workflows"][0]
    charge = next(c for c in workflow["children"] if c["task"].endswith(".charge"))
    charge["arguments"]["amount"] = "11"
    charge["call_id"] = "tampered"
    with pytest.raises(NondeterminismError, match="at child call #2: the history recorded charge"):
        Replayer(replay_apps.app).replay(doc)


def test_a_truncated_history_is_rejected() -> None:
    doc = json.loads(record_v1())
    doc["workflows"][0]["children"].pop()
    with pytest.raises(HistoryFormatError, match="the history's children list lacks it"):
        Replayer(replay_apps.app).replay(doc)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(version=99), "history format version 99 is not supported"),
        (lambda d: d.update(format="other"), "not a pynenc-wf history"),
        (lambda d: d["workflows"][0].pop("children"), "workflows[0] lacks the field 'children'"),
        (lambda d: d["workflows"][0].update(data=[]), "workflows[0].data should be an object, got list"),
        (lambda d: d["steps"][0].update(bogus=1), "steps[0] is malformed"),
    ],
)
def test_malformed_histories_are_rejected_clearly(mutate: object, message: str) -> None:
    doc = json.loads(record_v1())
    mutate(doc)  # type: ignore[operator]
    with pytest.raises(HistoryFormatError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_history(doc)


def test_not_json_at_all() -> None:
    with pytest.raises(HistoryFormatError, match=r"<json>: not valid JSON"):
        load_history("{not json")
    with pytest.raises(
        HistoryFormatError, match=re.escape("cannot read history file /nonexistent.json")
    ):
        load_history("/nonexistent.json")


def test_history_files_round_trip(tmp_path: object) -> None:
    import pathlib

    path = pathlib.Path(str(tmp_path)) / "h.json"
    path.write_text(record_v1())
    history = load_history(str(path))
    assert history.seed == 3 and history.workflow()["task"].endswith(".checkout")
    assert Replayer(replay_apps.app).replay(str(path)).ok


def test_a_workflow_in_flight_replays_up_to_where_it_waits() -> None:
    with WorkflowEnv(seed=3) as env:
        run = env.start(replay_apps.waits_for_go, "o-4")
        env.run_until_idle()
        assert not run.done
        history = env.history_json()
    result = Replayer(replay_apps.app).replay(history)
    assert result.ok and not result.completed and result.replayed_calls == 1


def test_live_nondeterminism_is_caught_during_a_run() -> None:
    """New code deployed while a workflow is in flight: its replay after a crash diverges."""

    def deploy_v2() -> None:
        replay_apps.VERSION = 2

    replay_apps.ON_CHARGE.append(deploy_v2)
    try:
        with WorkflowEnv(seed=5) as env:
            env.crash_after("charge#1")
            run = env.start(replay_apps.checkout, "o-5")
            with pytest.raises(NondeterminismError, match="at child call #2: the history recorded"):
                run.result
    finally:
        replay_apps.ON_CHARGE.clear()


def test_replaying_with_the_recording_seed_names_the_new_call_right() -> None:
    # The replay's own ids must not collide with the recorded ones (same seed, same stream).
    history = record_v1(seed=3)
    replay_apps.VERSION = 2
    with pytest.raises(NondeterminismError, match=r"now calls charge\(amount=12"):
        Replayer(replay_apps.app, seed=3).replay(history)
