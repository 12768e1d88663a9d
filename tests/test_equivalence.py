"""The fast simulated components store exactly what pynenc's own memory components store.

``WorkflowEnv(backend="memory-stock")`` runs pynenc 0.4 as shipped (its ``MemOrchestrator``,
``MemStateBackend``, ``MemBroker``, ``MemTrigger``, ``MemClientDataStore``, no speed-up
patches) with the simulator's observation hooks; the default ``"memory"`` backend runs the
fast subclasses of ``pynenc_wf_testing/runtime/fast_memory/`` plus the speed-up
patches of ``pynenc_wf_testing/runtime/monkeypatches/``. The same workflows with the same seed and fault plan must leave the same
complete stored state: every invocation's status record and status history (order, owners,
timestamps), retries, indexes, serialized arguments, results and exceptions, workflow data,
workflow run registries, the client data store, the broker's queues, runner heartbeats and
contexts, and the simulator's step history and ledger.

Documented exceptions (not state, or the same state in another shape):

- ``MemOrchestrator.locks``: pynenc keeps one ``threading.Lock`` per invocation; the fast
  orchestrator uses one lock for all. Lock objects hold no data.
- ``MemStateBackend._history``: the fast backend keeps compact history rows (the status
  record itself, or a tuple); compared through ``get_history`` (pynenc's reader) and the
  time-range iterators, field by field, in stored order.
- ``MemOrchestrator.call_id_to_inv_id``: the fast orchestrator stores a call's only invocation
  id itself where pynenc holds a one-element set; both are compared as sorted lists.
- The component class names in the app's config (also stored in its ``AppInfo``): they are
  how the two runs choose their components.
- Object identity: the fast run may hand out the same (immutable) datetime object, status
  record or str for equal values; values are compared, never identities.

The fast serializer path, the signature binding cache and the call-id hashing are also checked
directly against pynenc's and jsonpickle's own functions (Hypothesis).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import inspect
import json
import math
import time
from typing import Any

import jsonpickle  # type: ignore[import-untyped]
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pynenc import Pynenc
from pynenc.arguments import Arguments
from pynenc.call import compute_args_id

from pynenc_wf_testing import WorkflowEnv
from pynenc_wf_testing.runtime.fast_memory import dumps_plain, loads_plain
from pynenc_wf_testing.runtime.monkeypatches.pynenc_speedups import Binder as _Binder
from pynenc_wf_testing.runtime.monkeypatches.pynenc_speedups import (
    compute_args_id as _compute_args_id,
)

app = Pynenc(config_values={"app_id": "equivalence-apps"})


class Flaky(Exception):
    """A retriable error (the ``flaky`` task retries on it)."""


@dataclasses.dataclass
class Order:
    """A non-JSON argument: jsonpickle writes it with ``py/object``."""

    id: str
    amount: int


@app.task
def add(a: int, b: int = 1) -> int:
    return a + b


@app.task
def describe(order: Order, tags: list[str], meta: dict[str, Any]) -> dict[str, Any]:
    return {"id": order.id, "amount": order.amount, "tags": tags, "meta": meta}


@app.task(retry_for=(Flaky,), max_retries=3)
def flaky(x: int) -> int:
    return x * 3


@app.task
def boom(message: str) -> int:
    raise ValueError(message)


@app.task
def measure(payload: str, ratio: float, flags: list[bool | None]) -> dict[str, Any]:
    return {"size": len(payload), "ratio": ratio, "flags": flags}


@app.task
def nap(seconds: int) -> str:
    time.sleep(seconds)  # a virtual sleep: later statuses carry later timestamps
    return f"slept {seconds}"


@app.workflow
def sub_flow(n: int) -> int:
    total = 0
    for i in range(n):
        total = sub_flow.wf.root.execute_task(add, total, i).result
    return total


@app.workflow
def main_flow(order_id: str) -> dict[str, Any]:
    root = main_flow.wf.root
    token = root.uuid()
    lucky = root.random()
    stamp = root.utc_now()
    main_flow.wf.set_data("token", token)
    first = root.execute_task(add, 1).result
    pending = [root.execute_task(add, i, b=i) for i in range(3)]
    parallel = [invocation.result for invocation in pending]
    described = root.execute_task(describe, Order(order_id, 5), ["x", "y"], {"k": (1, 2)}).result
    tripled = root.execute_task(flaky, 2).result
    sub = root.execute_task(sub_flow, 3).result
    try:
        root.execute_task(boom, f"bad {order_id}").result
        error = ""
    except ValueError as exc:
        error = str(exc)
    measured = root.execute_task(measure, "z" * 3000, 0.1, [True, None]).result
    slept = root.execute_task(nap, 90).result
    main_flow.wf.set_data("done", {"error": error, "sub": sub})
    return {
        "token": token,
        "lucky": lucky,
        "stamp": stamp.isoformat(),
        "first": first,
        "parallel": parallel,
        "described": described,
        "tripled": tripled,
        "sub": sub,
        "error": error,
        "measured": measured,
        "slept": slept,
    }


# --------------------------------------------------------------------------- snapshots


def _status_record(record: Any) -> tuple[Any, ...]:
    return (record.status.value, record.runner_id, record.timestamp)


def _history(entries: list[Any]) -> list[tuple[Any, ...]]:
    return [
        (
            str(h.invocation_id),
            _status_record(h.status_record),
            h.runner_context_id,
            h.registered_by_inv_id,
            h.timestamp,
        )
        for h in entries
    ]


def _sorted_sets(mapping: dict[Any, set[Any]]) -> dict[str, list[str]]:
    return {str(k): sorted(map(str, v)) for k, v in mapping.items() if v}


def _sorted_call_index(mapping: dict[Any, Any]) -> dict[str, list[str]]:
    """``call_id_to_inv_id``: pynenc's sets, or the fast orchestrator's single id (a str)
    where pynenc holds a one-element set; compared as the same sorted lists."""
    return _sorted_sets({k: {v} if isinstance(v, str) else v for k, v in mapping.items()})


_EARLY = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
_LATE = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
_COMPONENT_KEYS = (
    "orchestrator_cls", "state_backend_cls", "broker_cls", "trigger_cls", "client_data_store_cls"
)


def _app_info(info: Any) -> Any:
    """The stored app info, minus the component class names (they differ by design)."""
    config = {k: v for k, v in (info.config_values or {}).items() if k not in _COMPONENT_KEYS}
    return dataclasses.replace(info, config_values=config)


def snapshot(env: WorkflowEnv) -> dict[str, Any]:
    """Everything the durable store holds (and what the simulator recorded), as plain
    values that compare by value."""
    orch: Any = app.orchestrator
    sb: Any = app.state_backend
    ids = sorted(orch.invocation_status_record)
    state: dict[str, Any] = {
        "classes": None,  # filled by the caller: the two runs differ here by design
        "status_records": {i: _status_record(orch.invocation_status_record[i]) for i in ids},
        "retries": dict(sorted(orch.invocation_retries.items())),
        "status_index": {s.value: sorted(v) for s, v in orch.status_index.items() if v},
        "task_index": _sorted_sets(orch.task_id_to_inv_id),
        "call_index": _sorted_call_index(orch.call_id_to_inv_id),
        "inv_to_call": {str(k): str(v) for k, v in sorted(orch.inv_id_to_call_id.items())},
        "args_index": sorted(
            (str(pair), sorted(v)) for pair, v in orch.args_index.items() if v
        ),
        "to_purge": list(orch.invocations_to_purge),
        "runner_created": dict(orch.runner_creation_time),
        "runner_heartbeat": dict(orch.runner_last_heartbeat),
        "runner_queues": dict(orch.runner_consumed_queues),
        "runner_atomic": dict(orch.runner_atomic_service_eligible),
        "atomic_executions": list(orch.atomic_service_executions),
        "invocations": {i: sb._cache[i] for i in sorted(sb._cache)},
        "history": {i: _history(sb.get_history(i)) for i in ids},
        "history_by_time": [
            _history(batch) for batch in sb.iter_history_in_timerange(_EARLY, _LATE, 7)
        ],
        "ids_by_time": [list(b) for b in sb.iter_invocations_in_timerange(_EARLY, _LATE, 7)],
        "results": dict(sorted(sb._results.items())),
        "exceptions": dict(sorted(sb._exceptions.items())),
        "workflow_data": {str(k): dict(v) for k, v in sorted(sb._workflow_data.items())},
        "workflow_types": sorted(str(t) for t in sb._workflow_types),
        "workflow_runs": {
            str(k): sorted(str(r.workflow_id) for r in v)
            for k, v in sorted(sb._workflow_runs.items(), key=lambda kv: str(kv[0]))
        },
        "workflow_subs": _sorted_sets(sb._workflow_sub_invocations),
        "children": {k: list(v) for k, v in sorted(sb._parent_to_children.items()) if v},
        "event_children": {k: list(v) for k, v in sorted(sb._event_to_children.items()) if v},
        "runner_contexts": {
            k: dataclasses.asdict(v) for k, v in sorted(sb._runner_contexts.items())
        },
        "app_info": _app_info(sb.get_app_info()),
        "client_data": dict(sorted(app.client_data_store._storage.items())),
        "queues": {
            q: {p: list(d) for p, d in by_priority.items() if d}
            for q, by_priority in app.broker._queues.items()
        },
        "trigger_conditions": sorted(app.trigger._conditions),
        "valid_conditions": sorted(app.trigger._valid_conditions),
        "steps": env.history_json(),
        "ledger": [dataclasses.astuple(e) for e in env.ledger],
        "crashes": env.crashes,
        "now": env.now,
    }
    return state


def run_main(backend: str, seed: int, fault: str) -> tuple[Any, dict[str, Any]]:
    with WorkflowEnv(seed=seed, backend=backend) as env:
        env.use(app)
        env.fail(flaky, times=2, exc=Flaky)
        if fault == "crash_after":
            env.crash_after("add#3")
        elif fault == "crash_before":
            env.crash_before("sub_flow#1")
        elif fault == "crash_restart_later":
            env.crash_after("flaky#1", restart_after=dt.timedelta(minutes=15))
        run = env.start(main_flow, f"o-{seed}")
        result = run.result
        env.run_until_idle()
        state = snapshot(env)
        state["classes"] = sorted(
            type(getattr(app, name)).__name__
            for name in ("orchestrator", "state_backend", "broker", "trigger", "client_data_store")
        )
        return result, state


@pytest.mark.parametrize("seed", [0, 11])
@pytest.mark.parametrize("fault", ["none", "crash_after", "crash_before", "crash_restart_later"])
def test_fast_components_store_what_pynenc_stores(seed: int, fault: str) -> None:
    stock_result, stock = run_main("memory-stock", seed, fault)
    fast_result, fast = run_main("memory", seed, fault)
    assert stock["classes"] != fast["classes"]  # the two runs did use different components
    assert fast_result == stock_result
    assert stock["crashes"] == (0 if fault == "none" else 1)
    # not vacuous: retries, a failure, external client data, sub-workflows, time moved
    assert any(stock["retries"].values())
    assert stock["exceptions"] and stock["client_data"] and len(stock["workflow_runs"]) == 2
    assert len({h[4] for hs in stock["history"].values() for h in hs}) > 1
    for key in stock:
        if key != "classes":
            assert fast[key] == stock[key], key


def test_crash_check_reports_are_identical() -> None:
    def report(backend: str) -> list[Any]:
        with WorkflowEnv(seed=3, backend=backend) as env:
            got = env.check_crash_safety(sub_flow, 3)
            return [
                (o.schedule, o.outcome, o.crashes, o.steps, [v.message for v in o.violations])
                for o in got.explored
            ] + [[s.name for s in got.golden_steps]]

    stock = report("memory-stock")
    assert len(stock) > 10
    assert report("memory") == stock


def test_fast_components_log_what_pynenc_logs(capfd: pytest.CaptureFixture[str]) -> None:
    # The fast routing path formats pynenc's log lines only when they are emitted: at debug
    # level both runs must print the same lines (ids are seeded, the time is virtual).
    def lines(backend: str) -> list[str]:
        with WorkflowEnv(seed=5, backend=backend, log_level="debug") as env:
            env.use(app)
            env.start(main_flow, "logged").result  # drive it to the end
            env.run_until_idle()
        out, err = capfd.readouterr()
        return [line for line in (out + err).splitlines() if "pynenc." in line]

    stock = lines("memory-stock")
    assert any("REGISTERED and ROUTED" in line for line in stock)
    assert any("New invocation for call Call(" in line for line in stock)
    assert lines("memory") == stock


def test_memory_stock_selects_pynenc_classes() -> None:
    with WorkflowEnv(backend="memory-stock") as env:
        env.use(app)
        assert type(app.trigger).__name__ == "MemTrigger"
        assert type(app.broker).__name__ == "MemBroker"
        assert type(app.client_data_store).__name__ == "MemClientDataStore"
        assert type(app.orchestrator).__mro__[1].__name__ == "SimOrchestratorMixin"
        assert Arguments.__dict__["from_call"].__func__.__module__ == "pynenc.arguments"
    with WorkflowEnv() as env:
        env.use(app)
        assert type(app.trigger).__name__ == "SimMemTrigger"
        assert Arguments.__dict__["from_call"].__func__.__module__ == (
            "pynenc_wf_testing.runtime.monkeypatches.pynenc_speedups"
        )
    assert Arguments.__dict__["from_call"].__func__.__module__ == "pynenc.arguments"


# --------------------------------------------------------------------------- serializer

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
)
json_keys = st.text().filter(lambda k: not k.startswith("py/"))  # py/... keys are declined
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(json_keys, inner, max_size=4),
    max_leaves=20,
)
odd_values = st.one_of(
    st.tuples(st.integers(), st.text()),
    st.sets(st.integers(), max_size=3),
    st.binary(max_size=8),
    st.dictionaries(st.integers(), st.integers(), max_size=3),
    st.dictionaries(st.sampled_from(["py/object", "py/id", "py/tuple", "py/set", "a"]), st.integers()),
    st.builds(Order, st.text(max_size=5), st.integers()),
    st.lists(st.tuples(st.integers()), max_size=3),
    st.sampled_from([True, False]).map(lambda b: [b, int(b)]),
)


def _same(a: Any, b: Any) -> bool:
    """Equal, type for type (repr tells 1 from True from 1.0, -0.0 from 0.0; NaN is nan)."""
    return repr(a) == repr(b) and type(a) is type(b)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_dumps_plain_is_jsonpickle_byte_for_byte(value: Any) -> None:
    text = dumps_plain(value)
    assert text is not None
    assert text == jsonpickle.dumps(value)


@settings(max_examples=200)
@given(st.one_of(json_values, odd_values))
def test_dumps_plain_declines_or_matches(value: Any) -> None:
    text = dumps_plain(value)
    assert text is None or text == jsonpickle.dumps(value)


def test_dumps_plain_declines_shared_and_cyclic_containers() -> None:
    shared = [1]
    assert dumps_plain([shared, shared]) is None  # jsonpickle writes a py/id reference
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    assert dumps_plain(cyclic) is None
    assert dumps_plain({"py/object": 1}) is None  # jsonpickle drops reserved keys
    assert dumps_plain(True) == jsonpickle.dumps(True)


@settings(max_examples=300)
@given(st.one_of(json_values, odd_values))
def test_loads_plain_is_jsonpickle(value: Any) -> None:
    text = jsonpickle.dumps(value)
    fast = loads_plain(text)
    if fast is not loads_plain("{"):  # the "not plain" marker: jsonpickle's path is taken
        assert _same(fast, jsonpickle.loads(text))


@settings(max_examples=300)
@given(
    st.one_of(
        st.text(max_size=12),
        st.from_regex(r'\A"[ -~]{0,8}"\Z'),
        st.from_regex(r"\A-?[0-9]{1,6}\Z"),
        st.sampled_from(['"a\\"b"', '"\\u00e9"', '"\x7f"', '"\x01"', " 1", "1 ", "-0", "01", '"']),
    )
)
def test_loads_plain_on_any_text(text: str) -> None:
    """Any stored text: the fast path gives jsonpickle's value, or declines (then pynenc's
    serializer runs and raises what it raises)."""
    fast = loads_plain(text)
    if fast is loads_plain("{"):
        return
    assert _same(fast, jsonpickle.loads(text))


def test_float_and_nan_round_trip_like_jsonpickle() -> None:
    for value in (0.1, -0.0, 1e300, math.inf, -math.inf):
        assert dumps_plain(value) == jsonpickle.dumps(value)
        assert _same(loads_plain(jsonpickle.dumps(value)), jsonpickle.loads(jsonpickle.dumps(value)))
    assert math.isnan(loads_plain(jsonpickle.dumps(math.nan)))


@settings(max_examples=200)
@given(st.dictionaries(st.text(), st.text(), max_size=5))
def test_call_id_hash_is_pynenc_s(serialized: dict[str, str]) -> None:
    assert _compute_args_id(serialized) == compute_args_id(serialized)


def test_seeded_invocation_ids_are_uuid4_text() -> None:
    import random as _random
    import uuid

    from pynenc_wf_testing.runtime.monkeypatches.ids import uuid4_text as _uuid4_text

    rng = _random.Random(7)
    for bits in [0, 2**128 - 1, *(rng.getrandbits(128) for _ in range(2000))]:
        assert _uuid4_text(bits) == str(uuid.UUID(int=bits, version=4))


# --------------------------------------------------------------------------- binding


def f_simple(a: int, b: str = "x", c: Any = None) -> None: ...


def f_kwonly(a: int, *, k: int = 2) -> None: ...


def f_varargs(a: int, *rest: int, **extra: int) -> None: ...


def f_posonly(a: int, /, b: int = 1) -> None: ...


CALLS: list[tuple[Any, tuple[Any, ...], dict[str, Any]]] = [
    (f_simple, (1,), {}),
    (f_simple, (1, "y"), {}),
    (f_simple, (1, "y", 3), {}),
    (f_simple, (1,), {"c": 5}),
    (f_simple, (), {"a": 1, "b": "z"}),
    (f_simple, (), {"c": 1, "a": 2}),
    (f_simple, (1,), {"a": 2}),  # TypeError: multiple values
    (f_simple, (), {}),  # TypeError: missing a
    (f_simple, (1, 2, 3, 4), {}),  # TypeError: too many
    (f_simple, (1,), {"zz": 2}),  # TypeError: unexpected keyword
    (f_kwonly, (1,), {}),
    (f_kwonly, (1,), {"k": 3}),
    (f_varargs, (1, 2, 3), {"x": 4}),
    (f_posonly, (1,), {"b": 3}),
    (f_posonly, (), {"a": 1}),  # TypeError: positional-only
]


@pytest.mark.parametrize(("func", "args", "kwargs"), CALLS)
def test_cached_binding_is_inspect_s(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    def stock() -> Any:
        bound = inspect.signature(func).bind(*args, **kwargs)
        bound.apply_defaults()
        return list(bound.arguments.items())

    try:
        expected = stock()
    except TypeError as exc:
        with pytest.raises(TypeError) as info:
            _Binder(func).bind(args, kwargs)
        assert str(info.value) == str(exc)
        return
    got = _Binder(func).bind(args, kwargs)
    assert list(got.items()) == expected
    assert type(got) is dict


def test_snapshot_is_json_free_of_identity() -> None:
    """The snapshot compares values: two stock runs give equal snapshots (no ids, no
    addresses), so a difference between stock and fast is a real one."""
    _, one = run_main("memory-stock", 5, "none")
    _, two = run_main("memory-stock", 5, "none")
    assert one == two
    json.dumps(one["steps"])
