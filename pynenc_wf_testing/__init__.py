"""pynenc-wf-testing: deterministic testing and simulation of pynenc durable workflows."""

from .clock import VirtualClock
from .crash_check import CrashReport, ScheduleOutcome, Violation
from .env import WorkflowEnv, WorkflowRun
from .errors import (
    AppConfigurationError,
    CrashSafetyError,
    DeadlockError,
    InvalidArgument,
    NondeterminismError,
    StepLimitExceeded,
    UnknownStepError,
    WorkflowTestingError,
)
from .faults import FaultSchedule, ScheduledCrash
from .history import Step
from .idempotency import is_non_idempotent, non_idempotent
from .ledger import Execution

__all__ = [
    "AppConfigurationError",
    "CrashReport",
    "CrashSafetyError",
    "DeadlockError",
    "Execution",
    "FaultSchedule",
    "InvalidArgument",
    "NondeterminismError",
    "ScheduleOutcome",
    "ScheduledCrash",
    "Step",
    "StepLimitExceeded",
    "UnknownStepError",
    "VirtualClock",
    "WorkflowEnv",
    "WorkflowRun",
    "Violation",
    "WorkflowTestingError",
    "is_non_idempotent",
    "non_idempotent",
]
