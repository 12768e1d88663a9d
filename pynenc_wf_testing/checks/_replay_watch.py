"""What a replay of a finished history must hold to, watched while it runs.

``ReplayWatch`` sees every step the replayed code commits and every workflow-data record it
reads: a durable step the history lacks aborts the replay at once; at the end, a recorded
step not taken, a stop before the end, or another status, result or failure is a
``NondeterminismError`` (docs/history-format.md).
"""

from __future__ import annotations

import functools
import hashlib
import json
from typing import TYPE_CHECKING, Any

from pynenc_wf_testing.engine import schema as engine_schema
from pynenc_wf_testing.errors import NondeterminismError
from pynenc_wf_testing.runtime.history import Step

from ._history_export import read_payload
from ._history_format import History, shorten

if TYPE_CHECKING:
    from pynenc.app import Pynenc

__all__ = ["PATCH_HINT", "ReplayWatch", "digest"]

#: Where a replay of a finished history diverges because the code changed.
PATCH_HINT = (
    "If the change is intended, branch on wf.root.patched(\"<change-id>\") so runs recorded "
    "before it take the old path (docs/engine.md, versioning)."
)


def digest(text: str | None) -> str | None:
    """Short stable digest of a serialized payload (sha256, 16 hex chars)."""
    if text is None:
        return None
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@functools.cache
def _consumed_prefixes() -> tuple[str, ...]:
    """Keys of records the workflow's own code consumes by position (pynenc's deterministic
    values, the engine's timers, waits and values): one the replay never reads is a step the
    new code no longer takes. Patch markers are left out on purpose: a retired patch must
    not break the histories recorded with it."""
    return (
        "random:",
        "uuid:",
        "time:",
        engine_schema.signal_wait("", 0).rsplit(":", 2)[0] + ":",
        *(
            key(0).rsplit(":", 1)[0] + ":"
            for name, key in engine_schema.POSITIONED
            # A retried call's intents are not read back once its attempt is known: its
            # attempts are child calls, compared one by one.
            if name != "retry_call"
        ),
    )


# Keys of patched() decisions (schema.patch("x") is "<prefix>x").
_PATCH_PREFIX = engine_schema.patch("")


class _WatchedSteps(list[Step]):
    """The replay world's step list: tells the watch of each step as it commits."""

    def __init__(self, watch: ReplayWatch) -> None:
        super().__init__()
        self.watch = watch

    def append(self, step: Step) -> None:
        super().append(step)
        self.watch.on_step(step)


class ReplayWatch:
    """What a replay of a finished history must hold to (see docs/history-format.md):
    no durable step the history lacks, no stop before the end, every recorded step taken,
    the recorded status, result or failure."""

    def __init__(self, sim: Any, app: Pynenc, record: dict[str, Any], history: History) -> None:
        self.sim = sim
        self.app = app
        self.record = record
        self.history = history
        self.workflow_id: str = record["workflow_id"]
        self.read: set[str] = set()
        sim.record_into(_WatchedSteps(self))
        backend = app.state_backend
        original = backend.get_workflow_data
        workflow_id = self.workflow_id
        read = self.read

        # An instance attribute on the replay world's own backend (dropped with that world).
        def get_workflow_data(identity: Any, key: str, default: Any = None) -> Any:
            if str(identity.workflow_id) == workflow_id:
                read.add(key)
            return original(identity, key, default)

        self._backend = backend
        self._had_own = "get_workflow_data" in vars(backend)
        self._own = vars(backend).get("get_workflow_data")
        backend.get_workflow_data = get_workflow_data

    def close(self) -> None:
        """Stop tracking reads (the backend may outlive the replay world)."""
        if self._had_own:
            self._backend.get_workflow_data = self._own
        else:
            vars(self._backend).pop("get_workflow_data", None)

    # -- wording

    @property
    def label(self) -> str:
        return f"workflow {self.sim.label(self.workflow_id)}"

    def _call_text(self, index: int) -> str:
        return f"child call #{index + 1} {_call_signature(self.record['children'][index])}"

    def _where(self) -> str:
        obtained = min(self.sim.replay_obtained.get(self.workflow_id, 0),
                       len(self.record["children"]))
        if obtained == 0:
            return "before its first child call"
        return f"after {self._call_text(obtained - 1)}"

    def _recorded_next(self) -> str:
        obtained = self.sim.replay_obtained.get(self.workflow_id, 0)
        if obtained < len(self.record["children"]):
            return self._call_text(obtained)
        return f"the end of the workflow ({self.record['status']})"

    def _error(self, now: str, *, hint: str = PATCH_HINT) -> NondeterminismError:
        return NondeterminismError(
            f"{self.label} diverged from its recorded history {self._where()}: the history "
            f"recorded next {self._recorded_next()}, but the replayed code now {now}. {hint}"
        )

    # -- a new step, at once

    def on_step(self, step: Step) -> None:
        if step.workflow_id != self.workflow_id or self._expected(step):
            return
        what = {"timer": "durable timer", "signal": "signal", "value": "recorded value",
                "data": "workflow data write", "state": "state snapshot", "halt": "halt"}
        self.sim.abort(self._error(
            f"takes the step {step.name} (a {what.get(step.kind, step.kind)}), which the "
            "history does not have"
        ))

    def _expected(self, step: Step) -> bool:
        if step.invocation_id == self.workflow_id and step.kind in ("route", "result"):
            return True  # the replayed invocation itself: its status is compared at the end
        if step.kind in ("route", "record"):
            return True  # a child call: the simulator compares it with the recorded calls
        key = str(step.detail.get("key", ""))
        if key.startswith(_PATCH_PREFIX):
            return True  # patched() records its decision on every path
        # The body rewrites data it wrote when recorded (the history keeps the last value).
        return step.kind == "data" and key in self.record["data"]

    # -- at the end

    def stopped_early(self) -> NondeterminismError:
        sim = self.sim
        thread = sim.threads.get(self.workflow_id)
        stalled = sim.stalled.get(self.workflow_id)
        if thread is not None and thread.waiting_for is not None:
            until = (f" (until {_iso_micros(thread.sleeping_until)})"
                     if thread.sleeping_until is not None else "")
            now = (f"waits for {thread.waiting_what}{until}, a wait the history does not "
                   "have (the replay stops there)")
        elif thread is not None and thread.sleeping_until is not None:
            return self._error(
                f"sleeps in time.sleep() until {_iso_micros(thread.sleeping_until)} (the replay "
                "stops there)",
                hint="A time.sleep() in a workflow body is not recorded, so a replay cannot "
                "tell it from new code, and a crash re-runs it in full: use the durable "
                "wf.root.sleep() instead (docs/engine.md, timers).",
            )
        elif thread is not None and thread.waiting_on:
            now = f"waits for the result of {', '.join(sim.label(i) for i in thread.waiting_on)}"
        elif stalled is not None:
            now = f"stops: it {stalled}"
        else:
            now = "stops before the end (nothing left to run in the replay)"
        return self._error(now)

    def ended(self, status: Any) -> NondeterminismError | None:
        missing = self._missing_step(status)
        if missing is not None:
            return missing
        record = self.record
        backend = self.app.state_backend
        if status.value != record["status"]:
            return NondeterminismError(
                f"{self.label} ended {status.value} on replay but the history recorded "
                f"{record['status']}"
                + (f" ({_exception_text(record['exception'])})" if record.get("exception")
                   else "")
                + (f"; now: {_exception_text(backend._get_exception(self.workflow_id))}"
                   if status.value == "failed" else "")
                + f". {PATCH_HINT}"
            )
        if status.value == "success":
            text = backend._get_result(self.workflow_id)
            if record.get("result") is not None and digest(text) != digest(record["result"]):
                return NondeterminismError(
                    f"{self.label} returned {shorten(text)} on replay but the history recorded "
                    f"{shorten(record['result'])}. {PATCH_HINT}"
                )
        elif record.get("exception") is not None:
            text = read_payload(self.app, backend._get_exception, self.workflow_id)
            if digest(text) != digest(record["exception"]):
                return NondeterminismError(
                    f"{self.label} failed on replay with {_exception_text(text)} but the "
                    f"history recorded a failure with {_exception_text(record['exception'])}. "
                    f"{PATCH_HINT}"
                )
        return None

    def _missing_step(self, status: Any) -> NondeterminismError | None:
        """The first recorded step the replayed code finished without taking."""
        record = self.record
        children = record["children"]
        obtained = self.sim.replay_obtained.get(self.workflow_id, 0)
        unread = [
            key for key in record["data"]
            if key.startswith(_consumed_prefixes()) and key not in self.read
        ]
        # Name the one that came first in the recording (when the file has its steps).
        order: dict[str, tuple[int, str]] = {}
        for step in self.history.steps:
            if step.workflow_id != self.workflow_id or step.number is None:
                continue
            key = step.detail.get("key")
            if key in record["data"]:
                order.setdefault(str(key), (step.number, step.name))
            if step.kind == "result" and step.invocation_id != self.workflow_id:
                order.setdefault(f"child:{step.invocation_id}", (step.number, step.name))
        candidates: list[tuple[float, str, str]] = []
        if obtained < len(children):
            child_key = f"child:{children[obtained]['invocation_id']}"
            number = order.get(child_key, (float("inf"), ""))[0]
            candidates.append((number, "child", self._call_text(obtained)))
        for key in unread:
            number, name = order.get(key, (float("inf"), key))
            candidates.append((number, "record", f"{name} (workflow data {key!r})"))
        if not candidates:
            return None
        _, kind, what = min(candidates, key=lambda c: c[0])
        if kind == "child":
            # The same wording as the simulator's own child-call divergences.
            return NondeterminismError(
                f"{self.label} diverged from its recorded history at child call "
                f"#{obtained + 1}: the history recorded {_call_signature(children[obtained])}"
                f" but the replayed code finished ({status.value}) "
                "without making that call. "
                f"{PATCH_HINT}"
            )
        return NondeterminismError(
            f"{self.label} diverged from its recorded history: the history recorded the step "
            f"{what} but the replayed code finished without taking it. {PATCH_HINT}"
        )


def _call_signature(child: dict[str, Any]) -> str:
    """``charge(amount=..., order=...)``: a recorded child call as the messages name it."""
    args = ", ".join(f"{k}={v}" for k, v in sorted(child["arguments"].items()))
    return f"{child['task'].rsplit('.', 1)[-1]}({args})"


def _iso_micros(micros: int) -> str:
    from pynenc_wf_testing.runtime.clock import from_micros

    return from_micros(micros).isoformat()


def _exception_text(text: str | None) -> str:
    """``ValueError('no stock')`` from pynenc's serialized exception (its JSON envelope
    around the jsonpickle of the exception), or the text itself when it has another shape."""
    try:
        envelope = json.loads(text or "")
        name = str(envelope["error_name"])
        reduced = json.loads(envelope["error_data"])["py/reduce"][1]["py/tuple"]
        return f"{name}({', '.join(repr(arg) for arg in reduced)})"
    except Exception:
        return shorten(text)

