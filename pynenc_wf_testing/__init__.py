"""pynenc-wf-testing: deterministic testing and simulation of pynenc durable workflows.

The names below are imported on first use (PEP 562): pynenc imports this package's engine
plugin at every app creation, and that must not pull in the simulator.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .clock import VirtualClock as VirtualClock
    from .crash_check import CrashReport as CrashReport
    from .crash_check import ScheduleOutcome as ScheduleOutcome
    from .crash_check import Violation as Violation
    from .env import WorkflowEnv as WorkflowEnv
    from .env import WorkflowRun as WorkflowRun
    from .errors import AppConfigurationError as AppConfigurationError
    from .errors import CrashSafetyError as CrashSafetyError
    from .errors import DeadlockError as DeadlockError
    from .errors import HistoryFormatError as HistoryFormatError
    from .errors import InvalidArgument as InvalidArgument
    from .errors import NondeterminismError as NondeterminismError
    from .errors import StepLimitExceeded as StepLimitExceeded
    from .errors import UnknownStepError as UnknownStepError
    from .errors import WorkflowDataSerializationError as WorkflowDataSerializationError
    from .errors import WorkflowTestingError as WorkflowTestingError
    from .faults import FaultSchedule as FaultSchedule
    from .faults import ScheduledCrash as ScheduledCrash
    from .history import Step as Step
    from .idempotency import is_non_idempotent as is_non_idempotent
    from .idempotency import non_idempotent as non_idempotent
    from .ledger import Execution as Execution
    from .replay import Replayer as Replayer
    from .replay import ReplayResult as ReplayResult
    from .replay import load_history as load_history

_HOMES = {
    "AppConfigurationError": "errors",
    "CrashReport": "crash_check",
    "CrashSafetyError": "errors",
    "DeadlockError": "errors",
    "Execution": "ledger",
    "FaultSchedule": "faults",
    "InvalidArgument": "errors",
    "NondeterminismError": "errors",
    "ScheduleOutcome": "crash_check",
    "ScheduledCrash": "faults",
    "Step": "history",
    "StepLimitExceeded": "errors",
    "UnknownStepError": "errors",
    "VirtualClock": "clock",
    "Violation": "crash_check",
    "WorkflowEnv": "env",
    "WorkflowRun": "env",
    "WorkflowDataSerializationError": "errors",
    "WorkflowTestingError": "errors",
    "is_non_idempotent": "idempotency",
    "non_idempotent": "idempotency",
    "HistoryFormatError": "errors",
    "ReplayResult": "replay",
    "Replayer": "replay",
    "load_history": "replay",
}

__all__ = [
    "AppConfigurationError",
    "CrashReport",
    "CrashSafetyError",
    "DeadlockError",
    "Execution",
    "FaultSchedule",
    "HistoryFormatError",
    "InvalidArgument",
    "NondeterminismError",
    "ReplayResult",
    "Replayer",
    "ScheduleOutcome",
    "ScheduledCrash",
    "Step",
    "StepLimitExceeded",
    "UnknownStepError",
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
