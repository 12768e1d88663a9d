"""pynenc-wf-testing: deterministic testing and simulation of pynenc durable workflows.

The names below are imported on first use (PEP 562): pynenc imports this package's engine
plugin at every app creation, and that must not pull in the simulator.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pynenc_wf_testing.checks.crash_report import CrashReport as CrashReport
    from pynenc_wf_testing.checks.crash_report import ScheduleOutcome as ScheduleOutcome
    from pynenc_wf_testing.checks.crash_report import Violation as Violation
    from pynenc_wf_testing.checks.events import Advance as Advance
    from pynenc_wf_testing.checks.events import Cancel as Cancel
    from pynenc_wf_testing.checks.events import EventSchedule as EventSchedule
    from pynenc_wf_testing.checks.events import Resume as Resume
    from pynenc_wf_testing.checks.events import ScheduledEvent as ScheduledEvent
    from pynenc_wf_testing.checks.events import Signal as Signal
    from pynenc_wf_testing.checks.faults import FaultSchedule as FaultSchedule
    from pynenc_wf_testing.checks.faults import ScheduledCrash as ScheduledCrash
    from pynenc_wf_testing.checks.faults import ScheduledEviction as ScheduledEviction
    from pynenc_wf_testing.checks.faults import ScheduledFailure as ScheduledFailure
    from pynenc_wf_testing.checks.faults import ScheduledWorkerCrash as ScheduledWorkerCrash
    from pynenc_wf_testing.checks.idempotency import is_non_idempotent as is_non_idempotent
    from pynenc_wf_testing.checks.idempotency import non_idempotent as non_idempotent
    from pynenc_wf_testing.checks.interleavings import (
        InterleavingOutcome as InterleavingOutcome,
    )
    from pynenc_wf_testing.checks.interleavings import InterleavingReport as InterleavingReport
    from pynenc_wf_testing.checks.replay import Replayer as Replayer
    from pynenc_wf_testing.checks.replay import ReplayResult as ReplayResult
    from pynenc_wf_testing.checks.replay import load_history as load_history
    from pynenc_wf_testing.env.environment import TaskCall as TaskCall
    from pynenc_wf_testing.env.environment import WorkflowEnv as WorkflowEnv
    from pynenc_wf_testing.env.environment import WorkflowRun as WorkflowRun
    from pynenc_wf_testing.errors import AppConfigurationError as AppConfigurationError
    from pynenc_wf_testing.errors import (
        ArgumentSerializationError as ArgumentSerializationError,
    )
    from pynenc_wf_testing.errors import BusyWaitError as BusyWaitError
    from pynenc_wf_testing.errors import CrashSafetyError as CrashSafetyError
    from pynenc_wf_testing.errors import DeadlockError as DeadlockError
    from pynenc_wf_testing.errors import HistoryFormatError as HistoryFormatError
    from pynenc_wf_testing.errors import IncompatibleVersionError as IncompatibleVersionError
    from pynenc_wf_testing.errors import InterleavingError as InterleavingError
    from pynenc_wf_testing.errors import InvalidArgument as InvalidArgument
    from pynenc_wf_testing.errors import NondeterminismError as NondeterminismError
    from pynenc_wf_testing.errors import SliceTimeoutError as SliceTimeoutError
    from pynenc_wf_testing.errors import StepLimitExceeded as StepLimitExceeded
    from pynenc_wf_testing.errors import StoreReadError as StoreReadError
    from pynenc_wf_testing.errors import UnknownStepError as UnknownStepError
    from pynenc_wf_testing.errors import UnserializableValueError as UnserializableValueError
    from pynenc_wf_testing.errors import UnusedMockError as UnusedMockError
    from pynenc_wf_testing.errors import (
        WorkflowDataSerializationError as WorkflowDataSerializationError,
    )
    from pynenc_wf_testing.errors import WorkflowTestingError as WorkflowTestingError
    from pynenc_wf_testing.runtime.clock import VirtualClock as VirtualClock
    from pynenc_wf_testing.runtime.history import Step as Step
    from pynenc_wf_testing.runtime.ledger import Execution as Execution

_HOMES = {
    "Advance": "checks.events",
    "Cancel": "checks.events",
    "EventSchedule": "checks.events",
    "InterleavingError": "errors",
    "InterleavingOutcome": "checks.interleavings",
    "InterleavingReport": "checks.interleavings",
    "Resume": "checks.events",
    "ScheduledEvent": "checks.events",
    "Signal": "checks.events",
    "AppConfigurationError": "errors",
    "ArgumentSerializationError": "errors",
    "CrashReport": "checks.crash_report",
    "CrashSafetyError": "errors",
    "DeadlockError": "errors",
    "Execution": "runtime.ledger",
    "FaultSchedule": "checks.faults",
    "InvalidArgument": "errors",
    "NondeterminismError": "errors",
    "ScheduleOutcome": "checks.crash_report",
    "ScheduledCrash": "checks.faults",
    "ScheduledEviction": "checks.faults",
    "ScheduledWorkerCrash": "checks.faults",
    "ScheduledFailure": "checks.faults",
    "Step": "runtime.history",
    "BusyWaitError": "errors",
    "SliceTimeoutError": "errors",
    "StepLimitExceeded": "errors",
    "StoreReadError": "errors",
    "UnknownStepError": "errors",
    "UnusedMockError": "errors",
    "TaskCall": "env.environment",
    "UnserializableValueError": "errors",
    "VirtualClock": "runtime.clock",
    "Violation": "checks.crash_report",
    "WorkflowEnv": "env.environment",
    "WorkflowRun": "env.environment",
    "WorkflowDataSerializationError": "errors",
    "WorkflowTestingError": "errors",
    "is_non_idempotent": "checks.idempotency",
    "non_idempotent": "checks.idempotency",
    "HistoryFormatError": "errors",
    "IncompatibleVersionError": "errors",
    "ReplayResult": "checks.replay",
    "Replayer": "checks.replay",
    "load_history": "checks.replay",
}

__all__ = [
    "Advance",
    "AppConfigurationError",
    "BusyWaitError",
    "ArgumentSerializationError",
    "Cancel",
    "CrashReport",
    "CrashSafetyError",
    "DeadlockError",
    "EventSchedule",
    "Execution",
    "FaultSchedule",
    "HistoryFormatError",
    "IncompatibleVersionError",
    "InterleavingError",
    "InterleavingOutcome",
    "InterleavingReport",
    "InvalidArgument",
    "NondeterminismError",
    "ReplayResult",
    "Replayer",
    "Resume",
    "ScheduleOutcome",
    "ScheduledCrash",
    "ScheduledEvent",
    "ScheduledEviction",
    "ScheduledFailure",
    "ScheduledWorkerCrash",
    "Signal",
    "SliceTimeoutError",
    "Step",
    "StepLimitExceeded",
    "StoreReadError",
    "TaskCall",
    "UnknownStepError",
    "UnusedMockError",
    "UnserializableValueError",
    "VirtualClock",
    "Violation",
    "WorkflowEnv",
    "WorkflowRun",
    "WorkflowDataSerializationError",
    "WorkflowTestingError",
    "is_non_idempotent",
    "load_history",
    "non_idempotent",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'pynenc_wf_testing' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
