"""Every error the harness raises.

Each message says what went wrong and what to do instead. Tests pin these messages, so change
them deliberately.
"""

from __future__ import annotations

__all__ = [
    "AppConfigurationError",
    "BusyWaitError",
    "CrashSafetyError",
    "DeadlockError",
    "HistoryFormatError",
    "IncompatibleVersionError",
    "InvalidArgument",
    "NondeterminismError",
    "SliceTimeoutError",
    "StepLimitExceeded",
    "UnknownStepError",
    "UnusedMockError",
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


class HistoryFormatError(WorkflowTestingError, ValueError):
    """A history file is not a valid ``pynenc-wf-history`` document."""


class WorkflowDataSerializationError(WorkflowTestingError):
    """A value stored as workflow data does not survive pynenc's serializer.

    The memory backend keeps workflow data by reference, so the bug only shows on a
    persistent backend; pynenc's jsonpickle serializer even stores some values (functions,
    open files) silently as ``null``. The message names the workflow, the key and the type.
    """
