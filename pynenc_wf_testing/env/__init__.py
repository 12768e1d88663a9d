"""The facade behind the ``wf_env`` fixture: ``WorkflowEnv`` and ``WorkflowRun``."""

from pynenc_wf_testing.env.environment import WorkflowEnv, WorkflowRun

__all__ = ["WorkflowEnv", "WorkflowRun"]
