"""pynenc-wf-testing: deterministic testing and simulation of pynenc durable workflows."""

from .clock import VirtualClock
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
from .history import Step
from .ledger import Execution

__all__ = [
    "AppConfigurationError",
    "CrashSafetyError",
    "DeadlockError",
    "Execution",
    "InvalidArgument",
    "NondeterminismError",
    "Step",
    "StepLimitExceeded",
    "UnknownStepError",
    "VirtualClock",
    "WorkflowEnv",
    "WorkflowRun",
    "WorkflowTestingError",
]
