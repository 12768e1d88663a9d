"""Every error the harness raises.

Each message says what went wrong and what to do instead. Tests pin these messages, so change
them deliberately.
"""

from __future__ import annotations

__all__ = [
    "AppConfigurationError",
    "BusyWaitError",
    "ArgumentSerializationError",
    "CrashSafetyError",
    "DeadlockError",
    "HistoryFormatError",
    "IncompatibleVersionError",
    "InterleavingError",
    "InvalidArgument",
    "NondeterminismError",
    "SliceTimeoutError",
    "StepLimitExceeded",
    "StoreReadError",
    "UnknownStepError",
    "UnusedMockError",
    "UnserializableValueError",
    "WorkflowDataSerializationError",
    "WorkflowTestingError",
]


class WorkflowTestingError(Exception):
    """Base class of every error raised by pynenc-wf-testing."""


class InvalidArgument(WorkflowTestingError, TypeError):
    """A harness function was called with an argument it cannot accept."""


class AppConfigurationError(WorkflowTestingError):
    """The pynenc app handed to the harness cannot be simulated as configured."""


class IncompatibleVersionError(AppConfigurationError):
    """An installed library whose internals the harness patches is outside the releases it
    supports (``pynenc_wf_testing.runtime.monkeypatches.compat.SUPPORTED``)."""


class DeadlockError(WorkflowTestingError):
    """Something waits on what can never happen: nothing is runnable and no timer is pending.

    ``blocked`` maps each blocked invocation (a readable label) to what it waits on.
    """

    def __init__(self, message: str, blocked: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.blocked: dict[str, str] = dict(blocked or {})


class StepLimitExceeded(WorkflowTestingError):
    """The simulation ran more scheduler slices, or committed more history steps, than
    ``max_steps`` allows: probably a run that never ends."""


class BusyWaitError(WorkflowTestingError):
    """A simulated task read the frozen virtual clock over and over within one slice without
    any progress: a busy wait (``while datetime.now() < deadline: pass``) that can never end,
    because the virtual clock only moves while every invocation is parked."""


class SliceTimeoutError(WorkflowTestingError):
    """One scheduler slice (an invocation running between two parkings) took longer than the
    environment's ``slice_timeout`` of real time: code that spins without yielding."""


class UnknownStepError(WorkflowTestingError):
    """A crash point or step reference never matched any step of the run."""


class UnusedMockError(UnknownStepError):
    """A ``wf_env.mock`` was never called: the test did not exercise what it mocked."""


class NondeterminismError(WorkflowTestingError):
    """Replayed workflow code did something different from what its history recorded."""


class CrashSafetyError(WorkflowTestingError, AssertionError):
    """A crash/replay check found a fault schedule under which the workflow misbehaves."""


class InterleavingError(WorkflowTestingError, AssertionError):
    """An interleaving check found a schedule of external events (signals, cancellation,
    resume, time passing) under which the workflow misbehaves, or its golden run did not."""


class HistoryFormatError(WorkflowTestingError, ValueError):
    """A history file is not a valid ``pynenc-wf-history`` document."""


class StoreReadError(WorkflowTestingError):
    """A report source cannot be read: a missing file, a file that is not a pynenc store, an
    unknown app or workflow id, an unreachable Redis server (``env.report_sources``)."""


class UnserializableValueError(WorkflowTestingError):
    """A value handed to pynenc does not survive its serializer (the app's ``serializer``).

    pynenc's jsonpickle serializer stores some values (a lambda, a closure, an open file, a
    socket) silently as ``null``, drops function-valued attributes and turns non-str dict keys
    into strings: in production the receiving side gets ``None`` or something else. The
    harness checks what goes into the store on every backend (the memory backend keeps objects
    by reference and would hide the loss) and raises where the value is handed over.
    """


class ArgumentSerializationError(UnserializableValueError, TypeError):
    """An argument of a task call (``env.start``, a direct call, a child call) does not survive
    pynenc's serializer. The message names the task, the parameter and the type."""


class WorkflowDataSerializationError(UnserializableValueError):
    """A value stored as workflow data (``task.wf.set_data``, a signal's payload, the engine's
    records) does not survive pynenc's serializer.

    The memory backend keeps workflow data by reference, so without the harness's check the bug
    would only show on a persistent backend; pynenc's jsonpickle serializer even stores some
    values (functions, open files) silently as ``null``. The message names the workflow, the key
    (or the signal) and the type.
    """
