"""The fault vocabulary: what can go wrong in one run, as data.

A :class:`FaultSchedule` is a set of :class:`ScheduledCrash` (the worker dies right before or
after a numbered step commits) and :class:`ScheduledFailure` (the next executions of a task
raise an exception instead of running). Users write them by hand, the Hypothesis strategies
(:mod:`pynenc_wf_testing.checks.strategies`) generate and shrink them, the crash checks report
them, and ``pynenc-wf simulate`` prints them (as snippets and in ``--json`` through
:meth:`FaultSchedule.to_json`). :meth:`FaultSchedule.apply` arms one on an environment, where it
becomes the simulator's :mod:`pynenc_wf_testing.runtime.faults` (armed crashes and failures,
which also serve ``crash_after`` / ``crash_before`` / ``crash_during`` / ``fail``).

A :class:`ScheduledEviction` evicts a waiting workflow at a numbered wait: instead of staying
cached (its greenlet parked), it suspends as in production and its body re-executes from the
store when it is woken. Only code that keeps state outside the engine's records (a module
global, an object built before the wait) behaves differently.

A :class:`ScheduledWorkerCrash` takes one worker of a pool (``WorkflowEnv(workers=N)``) down
at a virtual instant while the others keep going, as :meth:`WorkflowEnv.crash_worker` does
(docs/workers.md).

A *crash point* is a place a crash can go: a step and a phase (``before`` or ``after``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pynenc_wf_testing.errors import InvalidArgument
from pynenc_wf_testing.runtime.faults import Phase, StepRef
from pynenc_wf_testing.runtime.history import Step

__all__ = [
    "FaultSchedule", "Phase", "ScheduledCrash", "ScheduledEviction", "ScheduledFailure",
    "ScheduledWorkerCrash", "StepRef",
]


@dataclass(frozen=True, order=True)
class ScheduledCrash:
    """One crash of a :class:`FaultSchedule`: at global step number ``step``, ``before`` or
    ``after`` it commits. ``name`` is the step's name in the fault-free run, for messages."""

    step: int
    phase: Phase = "after"
    name: str | None = field(default=None, compare=False)
    restart_after: float | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.step, bool) or not isinstance(self.step, int) or self.step < 1:
            raise InvalidArgument(f"ScheduledCrash.step must be an int >= 1, got {self.step!r}.")
        if self.phase not in ("before", "after"):
            raise InvalidArgument(
                f"ScheduledCrash.phase must be 'before' or 'after', got {self.phase!r}."
            )

    def snippet(self, env_name: str = "wf_env") -> str:
        ref = repr(self.name) if self.name is not None else str(self.step)
        extra = (
            "" if self.restart_after is None
            else f", restart_after=timedelta(seconds={self.restart_after:g})"
        )
        return f"{env_name}.crash_{self.phase}({ref}{extra})"

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"step": self.step, "phase": self.phase, "name": self.name}
        if self.restart_after is not None:
            doc["restart_after"] = self.restart_after
        return doc


@dataclass(frozen=True)
class ScheduledFailure:
    """One failure of a :class:`FaultSchedule`: the next ``times`` executions of the task
    whose key is ``task`` (``"package.module.function"``) raise ``exc`` instead of running,
    as :meth:`WorkflowEnv.fail` does. Pick an exception the task retries on (``retry_for``)
    to check that a retried step is harmless."""

    task: str
    times: int = 1
    exc: type[BaseException] = RuntimeError

    def __post_init__(self) -> None:
        if not isinstance(self.task, str) or "." not in self.task:
            raise InvalidArgument(
                f"ScheduledFailure.task must be a task key 'package.module.function', "
                f"got {self.task!r} (a task's key is task.task_id.key)."
            )
        if isinstance(self.times, bool) or not isinstance(self.times, int) or self.times < 1:
            raise InvalidArgument(f"ScheduledFailure.times must be an int >= 1, got {self.times!r}.")
        if not (isinstance(self.exc, type) and issubclass(self.exc, BaseException)):
            raise InvalidArgument(
                f"ScheduledFailure.exc must be an exception class, got {self.exc!r}."
            )

    @property
    def task_name(self) -> str:
        return self.task.rsplit(".", 1)[-1]

    def snippet(self, env_name: str = "wf_env") -> str:
        return f"{env_name}.fail({self.task_name}, times={self.times}, exc={self.exc.__name__})"

    def to_json(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "times": self.times,
            "exc": f"{self.exc.__module__}.{self.exc.__qualname__}",
        }


@dataclass(frozen=True, order=True)
class ScheduledEviction:
    """One eviction of a :class:`FaultSchedule`: the workflow that reaches wait number
    ``wait`` (1, 2, ... over the run, counting the waits that block) is evicted there, as
    :meth:`WorkflowEnv.evict_at_wait` does."""

    wait: int

    def __post_init__(self) -> None:
        if isinstance(self.wait, bool) or not isinstance(self.wait, int) or self.wait < 1:
            raise InvalidArgument(
                f"ScheduledEviction.wait must be an int >= 1 (the n-th wait that blocks), "
                f"got {self.wait!r}."
            )

    def snippet(self, env_name: str = "wf_env") -> str:
        return f"{env_name}.evict_at_wait({self.wait})"

    def to_json(self) -> dict[str, Any]:
        return {"wait": self.wait}


def _seconds(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and value >= 0


@dataclass(frozen=True)
class ScheduledWorkerCrash:
    """One worker crash of a :class:`FaultSchedule`: pool worker ``worker`` (1-based) goes
    down ``after`` virtual seconds after the schedule is applied and comes back ``down_for``
    seconds later, or never (None), as :meth:`WorkflowEnv.crash_worker` does. Needs an
    environment with a worker pool (``WorkflowEnv(workers=N)``)."""

    worker: int
    after: float = 0.0
    down_for: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.worker, bool) or not isinstance(self.worker, int) or self.worker < 1:
            raise InvalidArgument(
                f"ScheduledWorkerCrash.worker must be a worker number (an int >= 1), got "
                f"{self.worker!r}."
            )
        if not _seconds(self.after):
            raise InvalidArgument(
                f"ScheduledWorkerCrash.after must be a number of virtual seconds >= 0, got "
                f"{self.after!r}."
            )
        if self.down_for is not None and not _seconds(self.down_for):
            raise InvalidArgument(
                f"ScheduledWorkerCrash.down_for must be a number of virtual seconds >= 0, or "
                f"None to keep the worker down for good, got {self.down_for!r}."
            )

    def sort_key(self) -> tuple[float, int, float]:
        return (self.after, self.worker, -1.0 if self.down_for is None else self.down_for)

    def snippet(self, env_name: str = "wf_env") -> str:
        back = (
            "" if self.down_for is None
            else f", down_for=timedelta(seconds={self.down_for:g})"
        )
        return (
            f"{env_name}.crash_worker({self.worker}, after=timedelta(seconds={self.after:g})"
            f"{back})"
        )

    def to_json(self) -> dict[str, Any]:
        return {"worker": self.worker, "after": self.after, "down_for": self.down_for}


def _exception_class(name: Any) -> type[BaseException]:
    import builtins
    import importlib

    module_name, _, qualname = str(name).rpartition(".")
    try:
        obj: Any = importlib.import_module(module_name) if module_name else builtins
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError, ValueError):
        raise InvalidArgument(f"unknown exception class {name!r} in a fault schedule.") from None
    if not (isinstance(obj, type) and issubclass(obj, BaseException)):
        raise InvalidArgument(f"{name!r} in a fault schedule is not an exception class.")
    return obj


@dataclass(frozen=True)
class FaultSchedule:
    """The faults of one run; built by hand, by
    :func:`pynenc_wf_testing.checks.strategies.fault_schedules` (Hypothesis shrinks it), by the
    crash checks and by ``pynenc-wf simulate``."""

    crashes: tuple[ScheduledCrash, ...] = ()
    failures: tuple[ScheduledFailure, ...] = ()
    evictions: tuple[ScheduledEviction, ...] = ()
    worker_crashes: tuple[ScheduledWorkerCrash, ...] = ()

    def apply(self, env: Any, *, optional: bool = False, fine: bool = True) -> None:
        """Arm every fault on ``env``. With ``optional=True`` a crash whose step the run
        never reaches is not an error (generated schedules may point past the end). With
        ``fine=False`` a crash does not fire inside pynenc's own non-atomic sequences (see
        :func:`pynenc_wf_testing.runtime.history.in_pynenc_window`)."""
        from pynenc_wf_testing.runtime.history import in_pynenc_window

        for crash in self.crashes:
            if fine:
                ref: Any = crash.step
            else:
                def ref(step: Step, crash: ScheduledCrash = crash) -> bool:
                    return step.number == crash.step and not in_pynenc_window(step, crash.phase)

            env.world.faults.add_crash(
                crash.phase,
                ref,
                description=repr(crash.name) if crash.name else f"step {crash.step}",
                optional=optional,
                restart_after=crash.restart_after,
            )
        for failure in self.failures:
            env.world.faults.add_failure(failure.task, failure.times, failure.exc)
        for eviction in self.evictions:
            env.world.sim.eviction.at_waits.add(eviction.wait)
        sim = env.world.sim if self.worker_crashes else None
        for down in self.worker_crashes:
            assert sim is not None
            # the same fault, and reason, as env.crash_worker(): the same history
            sim.schedule_worker_down(
                down.worker,
                sim.clock.micros + round(down.after * 1_000_000),
                None if down.down_for is None else round(down.down_for * 1_000_000),
                f"crash_worker({down.worker})",
            )

    def snippet_lines(self, env_name: str = "wf_env") -> list[str]:
        return (
            [f.snippet(env_name) for f in self.failures]
            + [e.snippet(env_name) for e in self.evictions]
            + [w.snippet(env_name) for w in self.worker_crashes]
            + [c.snippet(env_name) for c in self.crashes]
        )

    def to_json(self) -> dict[str, Any]:
        """The schedule as plain JSON data (``pynenc-wf simulate --json`` prints this)."""
        doc: dict[str, Any] = {
            "crashes": [c.to_json() for c in self.crashes],
            "failures": [f.to_json() for f in self.failures],
        }
        if self.evictions:
            doc["evictions"] = [e.to_json() for e in self.evictions]
        if self.worker_crashes:
            doc["worker_crashes"] = [w.to_json() for w in self.worker_crashes]
        return doc

    @classmethod
    def from_json(cls, doc: Any) -> FaultSchedule:
        """The schedule :meth:`to_json` wrote (e.g. a shrunk schedule of ``pynenc-wf
        simulate --json``); exception classes are imported by their dotted names."""
        known = {"crashes", "failures", "evictions", "worker_crashes"}
        if isinstance(doc, (str, bytes)):
            raise InvalidArgument(
                f"FaultSchedule.from_json() takes the dict to_json() returns, got "
                f"{type(doc).__name__} {doc[:60]!r}. Parse JSON text first: "
                "FaultSchedule.from_json(json.loads(text))."
            )
        if isinstance(doc, dict) and not set(doc) <= known:
            extra = sorted(str(k) for k in set(doc) - known)
            raise InvalidArgument(
                f"a fault schedule has no {', '.join(map(repr, extra))} list; its keys are "
                "'crashes', 'failures' and (optionally) 'evictions' and 'worker_crashes'."
            )
        if not isinstance(doc, dict):
            raise InvalidArgument(
                "a fault schedule is a dict with 'crashes', 'failures' and (optionally) "
                f"'evictions' and 'worker_crashes' lists, got {doc!r}."
            )
        try:
            crashes = tuple(
                ScheduledCrash(c["step"], c.get("phase", "after"), c.get("name"),
                               c.get("restart_after"))
                for c in doc.get("crashes", [])
            )
            failures = tuple(
                ScheduledFailure(f["task"], f.get("times", 1), _exception_class(f["exc"]))
                for f in doc.get("failures", [])
            )
            evictions = tuple(ScheduledEviction(e["wait"]) for e in doc.get("evictions", []))
            downs = tuple(
                ScheduledWorkerCrash(w["worker"], w.get("after", 0.0), w.get("down_for"))
                for w in doc.get("worker_crashes", [])
            )
        except (KeyError, TypeError) as error:
            raise InvalidArgument(f"malformed fault schedule {doc!r}: {error!r}.") from None
        return cls(crashes, failures, evictions, downs)

    def __len__(self) -> int:
        return (
            len(self.crashes) + len(self.failures) + len(self.evictions)
            + len(self.worker_crashes)
        )

    def __str__(self) -> str:
        if not self:
            return "no faults"
        return "; ".join(self.snippet_lines("env"))
