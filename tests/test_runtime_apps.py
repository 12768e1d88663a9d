"""use(app): the user's app runs on simulated components and gets its own back; no leaks."""

from __future__ import annotations

import itertools
import random
import uuid
from pathlib import Path

import pytest
from pynenc import Pynenc

from pynenc_wf_testing import AppConfigurationError, WorkflowEnv
from tests.apps import builder_app, devmode_app, flows

COMPONENTS = (
    "_conf",
    "_logger",
    "_orchestrator",
    "_trigger",
    "_broker",
    "_state_backend",
    "_serializer",
    "_client_data_store",
)

_app_ids = itertools.count()


def snapshot(app: Pynenc) -> dict[str, object]:
    return {
        "config_values": app.config_values,
        "config_copy": dict(app.config_values or {}),
        "runner": app._runner_instance,
        **{name: getattr(app, name) for name in COMPONENTS},
    }


def assert_restored(app: Pynenc, before: dict[str, object]) -> None:
    assert app.config_values is before["config_values"]
    assert app.config_values == before["config_copy"]
    assert app._runner_instance is before["runner"]
    for name in COMPONENTS:
        assert getattr(app, name) is before[name], name
    assert not hasattr(app, "_pynenc_wf_sim")


def test_use_swaps_components_and_close_restores_them() -> None:
    before = snapshot(flows.app)
    with WorkflowEnv() as env:
        assert env.use(flows.app) is flows.app
        assert env.use(flows.app) is flows.app  # idempotent
        assert type(flows.app.orchestrator).__name__ == "SimMemOrchestrator"
        assert type(flows.app.state_backend).__name__ == "SimMemStateBackend"
        assert type(flows.app.runner).__name__ == "SimRunner"
        assert flows.app.conf.cached_status_time == 0
        assert env.start(flows.child, 1).result == 10
    assert_restored(flows.app, before)
    assert flows.app.conf.runner_cls == "DummyRunner"
    assert type(flows.app.orchestrator).__name__ == "MemOrchestrator"


def test_start_uses_the_tasks_app_implicitly_and_restores_it() -> None:
    before = snapshot(flows.app)
    with WorkflowEnv() as env:
        assert env.start(flows.sequential, 1).result == [0]
    assert_restored(flows.app, before)


def test_the_same_app_in_two_envs_one_after_the_other() -> None:
    histories = []
    for _ in range(2):
        with WorkflowEnv(seed=4) as env:
            env.use(flows.app)
            assert env.start(flows.fan_out, 3).result == [0, 10, 20]
            histories.append(env.history_json())
    assert histories[0] == histories[1]


def test_restored_even_when_the_run_fails() -> None:
    before = snapshot(flows.app)
    with pytest.raises(flows.OrderError), WorkflowEnv() as env:
        env.start(flows.explode, "x").result
    assert_restored(flows.app, before)


def test_builder_sqlite_app_never_opens_its_database(tmp_path: Path) -> None:
    db = tmp_path / "production.sqlite"
    app = builder_app.build(db, f"wf-tests-builder-{next(_app_ids)}")
    assert app.config_values is not None
    assert app.config_values["sqlite_db_path"] == str(db)
    before = snapshot(app)
    with WorkflowEnv() as env:
        env.use(app)
        assert env.start(builder_app.ping, 41).result == 42
        assert env.executions(builder_app.ping) == 1
    assert not db.exists()
    assert_restored(app, before)
    assert app.conf.orchestrator_cls == "SQLiteOrchestrator"
    assert not db.exists()  # reading the config does not open the store either


def test_builder_app_can_be_used_twice(tmp_path: Path) -> None:
    db = tmp_path / "twice.sqlite"
    app = builder_app.build(db, f"wf-tests-builder-{next(_app_ids)}")
    for seed in (0, 1):
        with WorkflowEnv(seed=seed) as env:
            env.use(app)
            assert env.start(builder_app.ping, seed).result == seed + 1
    assert not db.exists()


def test_dev_mode_app_behaves_as_before_after_an_env() -> None:
    before_inv = devmode_app.double(2)
    assert before_inv.result == 4
    sync_type = type(before_inv)
    before = snapshot(devmode_app.app)
    with WorkflowEnv() as env:
        run = env.start(devmode_app.double, 5)
        assert run.result == 10
        assert env.executions(devmode_app.double) == 1
        assert type(run._invocation) is not sync_type
    assert_restored(devmode_app.app, before)
    assert devmode_app.app.conf.dev_mode_force_sync_tasks is True
    after_inv = devmode_app.double(3)
    assert type(after_inv) is sync_type
    assert after_inv.result == 6


def test_two_apps_with_the_same_app_id_are_refused(tmp_path: Path) -> None:
    app_id = f"wf-tests-builder-{next(_app_ids)}"
    first = builder_app.build(tmp_path / "a.sqlite", app_id)
    Pynenc._instances.pop(app_id, None)
    second = builder_app.build(tmp_path / "b.sqlite", app_id)
    assert first is not second
    before = snapshot(second)
    with WorkflowEnv() as env:
        env.use(first)
        with pytest.raises(
            AppConfigurationError,
            match=(
                f"^two different apps share app_id '{app_id}'; pynenc keys apps by id. "
                "Give each app its own app_id.$"
            ),
        ):
            env.use(second)
    # The refused app was never touched (pynenc itself may cache its parsed config: harmless).
    assert second.config_values is before["config_values"]
    assert second._runner_instance is before["runner"]
    for name in ("_orchestrator", "_state_backend", "_broker", "_trigger"):
        assert getattr(second, name) is before[name]
    assert not hasattr(second, "_pynenc_wf_sim")
    assert not (tmp_path / "b.sqlite").exists()


def test_environment_variables_do_not_override_the_simulated_components(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PYNENC__ variables outrank an app's config_values in pynenc; the harness's keys win
    all the same while the env uses the app, and the variable applies again after."""
    monkeypatch.setenv("PYNENC__RUNNER_CLS", "ThreadRunner")
    monkeypatch.setenv("PYNENC__ORCHESTRATOR_CLS", "SQLiteOrchestrator")
    monkeypatch.setenv("PYNENC__TRUNCATE_ARGUMENTS_LENGTH", "7")
    before = snapshot(flows.app)
    with WorkflowEnv() as env:
        env.use(flows.app)
        conf = flows.app.conf
        assert (conf.runner_cls, conf.orchestrator_cls) == ("SimRunner", "SimMemOrchestrator")
        assert conf.field_info("runner_cls").source == "pynenc-wf-testing"
        assert conf.truncate_arguments_length == 7  # the variable's other settings apply
        assert env.start(flows.child, 1).result == 10
    assert_restored(flows.app, before)
    flows.app._conf = None
    try:
        assert flows.app.conf.runner_cls == "ThreadRunner"
    finally:
        flows.app._conf = before["_conf"]  # type: ignore[assignment]


# --------------------------------------------------------------------------- isolation


def test_pynenc_instances_do_not_leak() -> None:
    before = dict(Pynenc._instances)
    with WorkflowEnv() as env:
        env.start(flows.parent_of_subworkflows, [1, 2]).result
    with WorkflowEnv(seed=1) as env:
        env.start(flows.sequential, 2).result
    assert Pynenc._instances == before


def test_an_invocation_of_one_env_does_not_exist_in_the_next() -> None:
    with WorkflowEnv(seed=0) as env:
        run = env.start(flows.sequential, 2)
        run.result
        old_id = run.invocation_id
        child_ids = [e.invocation_id for e in env.ledger]
    with WorkflowEnv(seed=1) as env:
        env.use(flows.app)
        for inv_id in [old_id, *child_ids]:
            with pytest.raises(KeyError):
                flows.app.orchestrator.get_invocation_status(inv_id)
        assert env.ledger == []
        assert env.history == []
        assert env.steps == []


def test_same_seed_in_a_new_env_starts_from_a_clean_store() -> None:
    """Same seed = same ids: the second env must not see the first one's records."""
    with WorkflowEnv(seed=9) as env:
        first = env.start(flows.uuid_then_child)
        first_result = first.result
        first_steps = env.steps
    with WorkflowEnv(seed=9) as env:
        second = env.start(flows.uuid_then_child)
        assert second.invocation_id == first.invocation_id
        assert second.result == first_result
        # A leaked store would replay the recorded uuid/child instead of recording them.
        assert env.steps == first_steps
        assert env.executions(flows.child) == 1


def test_process_patches_are_undone_on_close() -> None:
    import time

    real_uuid4, real_sleep = uuid.uuid4, time.sleep
    real_perf = time.perf_counter
    state = random.getstate()
    with WorkflowEnv(seed=5) as env:
        assert uuid.uuid4 is not real_uuid4
        assert time.sleep is not real_sleep
        env.start(flows.activity_randomness).result
        random.random()
    assert uuid.uuid4 is real_uuid4
    assert time.sleep is real_sleep
    assert time.perf_counter is real_perf
    assert random.getstate() == state


def test_only_one_env_at_a_time_and_the_next_may_open_after_close() -> None:
    from pynenc_wf_testing import InvalidArgument

    with WorkflowEnv() as env:
        with (
            pytest.raises(
                InvalidArgument,
                match=(
                    r"^another WorkflowEnv is already open in this process \(opened at "
                    r".*test_runtime_apps\.py:\d+\); close it first "
                    r"\(one simulation owns the virtual clock at a time\)\.$"
                ),
            ),
            WorkflowEnv(seed=1),
        ):
            pass  # pragma: no cover
        # The refused env did not disturb the open one.
        assert env.start(flows.child, 2).result == 20
    with WorkflowEnv(seed=1) as env:
        assert env.start(flows.child, 3).result == 30


def test_pynenc_app_info_registry_does_not_leak() -> None:
    from pynenc.state_backend.mem_state_backend import MemStateBackend

    registry = MemStateBackend._app_info_registry
    saved = dict(registry)
    registry.pop(flows.app.app_id, None)  # an earlier env in this process may have left it
    before = dict(registry)
    try:
        with WorkflowEnv() as env:
            env.start(flows.child, 1).result
        leaked = registry.get(flows.app.app_id)
        assert leaked is None, leaked.config_values
        assert registry == before
    finally:
        registry.clear()
        registry.update(saved)


def test_two_apps_in_one_env(tmp_path: Path) -> None:
    db = tmp_path / "second.sqlite"
    second = builder_app.build(db, f"wf-tests-builder-{next(_app_ids)}")
    before = [snapshot(flows.app), snapshot(second)]
    with WorkflowEnv() as env:
        env.use(second)
        a = env.start(flows.sequential, 2)
        b = env.start(builder_app.ping, 1)
        assert b.result == 2
        assert a.result == [0, 10]
        assert env.executions(builder_app.ping) == 1
        assert env.executions(flows.child) == 2
    assert_restored(flows.app, before[0])
    assert_restored(second, before[1])
    assert not db.exists()


def test_an_app_bound_after_another_gets_its_unparsed_config_back(tmp_path: Path) -> None:
    """Binding a second app compares app ids, which parses (and caches) the new app's config:
    close must put the unparsed state back (test_two_apps_in_one_env failed alone)."""
    first = builder_app.build(tmp_path / "first.sqlite", f"wf-tests-builder-{next(_app_ids)}")
    app_id = f"wf-tests-lazy-{next(_app_ids)}"
    lazy = Pynenc(config_values={"app_id": app_id})
    try:
        assert lazy._conf is None
        before = snapshot(lazy)
        with WorkflowEnv() as env:
            env.use(first)
            env.use(lazy)
        assert_restored(lazy, before)
        assert lazy._conf is None
    finally:
        Pynenc._instances.pop(app_id, None)
