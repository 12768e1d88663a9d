"""Recorded histories, the Replayer, versioning with patched()."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest

from pynenc_wf_testing import (
    HistoryFormatError,
    InvalidArgument,
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


@pytest.mark.parametrize("flag", ["no", 0, None])
def test_raise_on_replay_failure_must_be_a_bool(flag: object) -> None:
    with pytest.raises(InvalidArgument, match=rf"replay\(raise_on_replay_failure={re.escape(repr(flag))}\): "
                       r"expected True or False \(a string such as 'no' would count as true\)"):
        Replayer(replay_apps.app).replay(record_v1(), raise_on_replay_failure=flag)  # type: ignore[arg-type]


def test_a_history_replayed_with_another_app_is_refused_naming_the_right_one() -> None:
    from tests import fuzz_apps

    with pytest.raises(InvalidArgument, match=r"^Replayer\(app\) got app 'wf-tests-fuzz', but "
                       r"the history's workflow tests\.replay_apps\.checkout is a task of app "
                       r"'replay-apps' \(defined in tests\.replay_apps\)\. Replay it with that"):
        Replayer(fuzz_apps.app).replay(record_v1())


@pytest.mark.parametrize("seed", ["1", -1, 1.5, True])
def test_a_replayer_seed_must_be_a_non_negative_int(seed: object) -> None:
    with pytest.raises(InvalidArgument, match=r"Replayer\(seed=\.\.\.\) must be a non-negative "
                       rf"int, got {re.escape(repr(seed))}\. Pass e\.g\."):
        Replayer(replay_apps.app, seed=seed)  # type: ignore[arg-type]


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
    with pytest.raises(NondeterminismError, match="at child call #2: the history recorded charge") as err:
        Replayer(replay_apps.app).replay(doc)
    assert "seed" not in str(err.value).lower()  # a replay diverges whatever the seed


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
            with pytest.raises(NondeterminismError, match="at child call #2: the history recorded"
                               r".* Seed: 5\.$"):  # a re-execution in the run: its seed
                run.result
    finally:
        replay_apps.ON_CHARGE.clear()


def test_replaying_with_the_recording_seed_names_the_new_call_right() -> None:
    # The replay's own ids must not collide with the recorded ones (same seed, same stream).
    history = record_v1(seed=3)
    replay_apps.VERSION = 2
    with pytest.raises(NondeterminismError, match=r"now calls charge\(amount=12"):
        Replayer(replay_apps.app, seed=3).replay(history)


# ---------------------------------------------------------------------- never a silent pass

PATCH_HINT = 'branch on wf.root.patched("<change-id>")'
NEXT_NOTIFY = 'the history recorded next child call #2 notify(order="o-1")'

#: change -> fragments of the NondeterminismError a replay of the v1 history raises.
DIVERGENCES: dict[str, list[str]] = {
    "durable_sleep": [
        'diverged from its recorded history after child call #1 reserve(order="o-1")',
        NEXT_NOTIFY,
        "but the replayed code now takes the step sleep#1 (a durable timer), which the "
        "history does not have",
        PATCH_HINT,
    ],
    "signal_wait": [
        'after child call #1 reserve(order="o-1")',
        NEXT_NOTIFY,
        "now waits for signal 'approved', a wait the history does not have",
        PATCH_HINT,
    ],
    "time_sleep": [
        'after child call #1 reserve(order="o-1")',
        NEXT_NOTIFY,
        "now sleeps in time.sleep() until 2030-01-01T00:00:30+00:00",
        "use the durable wf.root.sleep() instead",
    ],
    "new_value": [
        'after child call #1 reserve(order="o-1")',
        "now takes the step uuid#1 (a recorded value)",
        PATCH_HINT,
    ],
    "different_result": [
        'returned "r-o-1/n-o-1!" on replay but the history recorded "r-o-1/n-o-1"',
        PATCH_HINT,
    ],
    "fails": [
        "ended failed on replay but the history recorded success; now: "
        "ValueError('no stock for o-1')",
        PATCH_HINT,
    ],
    "extra_child": [
        'at child call #2: the history recorded notify(order="o-1") but the replayed code '
        'now calls audit(order="o-1")',
        PATCH_HINT,
    ],
    "trailing_child": [
        "at child call #3: the history ends after 2 child calls, but the replayed code now "
        'calls audit(order="o-1")',
        PATCH_HINT,
    ],
    "missing_child": [
        'at child call #2: the history recorded notify(order="o-1") but the replayed code '
        "finished (success) without making that call",
        PATCH_HINT,
    ],
    "reordered": [
        'at child call #1: the history recorded reserve(order="o-1") but the replayed code '
        'now calls notify(order="o-1")',
        PATCH_HINT,
    ],
}


def test_every_change_has_a_divergence_case() -> None:
    assert set(DIVERGENCES) == set(replay_apps.CHANGES)


def record_ship(change: str, seed: int = 4) -> str:
    replay_apps.VERSION = 1
    with WorkflowEnv(seed=seed) as env:
        assert env.start(replay_apps.ship, "o-1", change).result == "r-o-1/n-o-1"
        return env.history_json()


@pytest.mark.parametrize("change", replay_apps.CHANGES)
def test_unchanged_code_replays_every_recorded_ship(change: str) -> None:
    result = Replayer(replay_apps.app).replay(record_ship(change))
    assert result.ok and result.completed and result.result == "r-o-1/n-o-1"


@pytest.mark.parametrize("change", replay_apps.CHANGES)
def test_a_changed_workflow_never_replays_silently(change: str) -> None:
    history = record_ship(change)
    replay_apps.VERSION = 2
    result = Replayer(replay_apps.app).replay(history, raise_on_replay_failure=False)
    assert not result.ok and isinstance(result.error, NondeterminismError)
    message = str(result.error)
    assert message.startswith("workflow ship#1 [")
    for fragment in DIVERGENCES[change]:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    with pytest.raises(NondeterminismError):
        Replayer(replay_apps.app).replay(history)


@pytest.mark.parametrize("change", ["durable_sleep", "signal_wait", "time_sleep"])
def test_a_new_wait_stops_the_replay_without_moving_the_clock(change: str) -> None:
    history = record_ship(change)
    end = max(step["time"] for step in json.loads(history)["steps"])
    replay_apps.VERSION = 2
    result = Replayer(replay_apps.app).replay(history, raise_on_replay_failure=False)
    assert not result.ok and not result.completed
    # The new wait was not skipped over: every step of the replay is at the recorded end.
    assert {step.time for step in result.steps} == {end}


def record_timed() -> tuple[str, str]:
    replay_apps.VERSION = 1
    with WorkflowEnv(seed=6) as env:
        run = env.start(replay_apps.timed, "o-7")
        env.advance(hours=3)
        env.signal(run, "go", "yes")
        assert run.result == "r-o-7/yes/none"
        return env.history_json(), run.workflow_id


def test_recorded_timers_and_signals_replay_without_waiting() -> None:
    history, workflow_id = record_timed()
    times = [s["time"] for s in json.loads(history)["steps"] if s["workflow_id"] == workflow_id]
    assert len(set(times)) > 1  # the recorded run waited hours of virtual time
    result = Replayer(replay_apps.app).replay(history)
    assert result.ok and result.completed and result.result == "r-o-7/yes/none"
    # Every timer and signal wait of the record passes at once, at the recorded end.
    assert {s.time for s in result.steps} == {max(times)}
    assert [s.name for s in result.steps] == ["route:timed#1", "timed#1"]


def test_a_dropped_durable_step_is_a_missing_step() -> None:
    history, _ = record_timed()
    replay_apps.VERSION = 2
    with pytest.raises(NondeterminismError) as info:
        Replayer(replay_apps.app).replay(history)
    message = str(info.value)
    assert "the history recorded the step sleep#1 (workflow data 'wfx:timer:1') but the " \
        "replayed code finished without taking it" in message
    assert PATCH_HINT in message


def record_refund() -> str:
    replay_apps.VERSION = 1
    with WorkflowEnv(seed=8) as env:
        run = env.start(replay_apps.refund, "o-8")
        env.run_until_idle()
        assert run.status.value == "failed"
        return env.history_json()


def test_a_recorded_failure_replays_when_it_fails_the_same_way() -> None:
    result = Replayer(replay_apps.app).replay(record_refund())
    assert result.ok and result.completed


def test_a_recorded_failure_must_fail_the_same_way() -> None:
    history = record_refund()
    replay_apps.VERSION = 2
    with pytest.raises(NondeterminismError) as info:
        Replayer(replay_apps.app).replay(history)
    message = str(info.value)
    assert "failed on replay with KeyError('o-8') but the history recorded a failure with " \
        "ValueError('nothing to refund for o-8')" in message
    assert PATCH_HINT in message



# ---------------------------------------------------------------------- bad input


@pytest.fixture
def bad_files(tmp_path: object) -> dict[str, tuple[object, str]]:
    import pathlib

    from tests.replay_inputs import bad_files

    return bad_files(pathlib.Path(str(tmp_path)), record_v1())  # type: ignore[return-value]


BAD_CASES = [
    "truncated", "truncated_says_so", "malformed", "not_a_history", "workflows_not_a_list",
    "step_number_type", "child_not_an_object", "argument_not_serialized", "unknown_version",
    "missing_workflow_id", "empty_workflow_id", "empty", "blank", "not_utf8", "directory",
]


def test_the_bad_cases_are_all_listed(bad_files: dict[str, tuple[object, str]]) -> None:
    assert set(bad_files) == set(BAD_CASES)


@pytest.mark.parametrize("case", BAD_CASES)
def test_load_history_names_the_problem_of_a_bad_file(
    case: str, bad_files: dict[str, tuple[object, str]]
) -> None:
    path, fragment = bad_files[case]
    with pytest.raises(HistoryFormatError) as info:
        load_history(str(path))
    message = str(info.value)
    assert fragment in message
    assert str(path) in message
    # ... and what to do about it.
    assert re.search(r"Record|record it again|Check|pass one of|Produce one", message), message
    # (a path object works the same)
    with pytest.raises(HistoryFormatError, match=re.escape(fragment)):
        load_history(path)  # type: ignore[arg-type]


def test_other_sources_are_rejected_clearly() -> None:
    with pytest.raises(HistoryFormatError, match="got an empty string"):
        load_history("")
    with pytest.raises(HistoryFormatError, match="expects a path, JSON text or a dict, got int"):
        load_history(3)  # type: ignore[arg-type]
    with pytest.raises(HistoryFormatError, match=r"<json>: not a pynenc-wf history"):
        load_history('{"format": 1}')


def test_a_history_without_workflows_has_nothing_to_replay() -> None:
    doc = json.loads(record_v1())
    doc["workflows"] = []
    with pytest.raises(HistoryFormatError, match="holds no workflow records"):
        Replayer(replay_apps.app).replay(doc)


def test_a_patch_after_the_last_recorded_step_keeps_finished_histories_on_the_old_path() -> None:
    """The hint's advice works at the very end too: the recorded run finished, so it went
    past every point the replay reaches."""
    history = record_ship("")
    replay_apps.VERSION = 3
    result = Replayer(replay_apps.app).replay(history)
    assert result.ok and result.result == "r-o-1/n-o-1"
    assert "patch:audit-after-notify" in [s.name for s in result.steps]
    with WorkflowEnv(seed=4) as env:  # new runs take the new path
        run = env.start(replay_apps.ship, "o-2", "")
        assert run.result == "r-o-2/n-o-2" and "audit#1" in env.steps
