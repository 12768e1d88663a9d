"""The durable-workflow engine on top of pynenc's ``@app.workflow`` / ``task.wf``.

Off by default: ``enable_workflows(app)`` (or ``PynencBuilder().enable_workflows()``) adds
durable timers, signals, queries, waits, retry policies, halt/resume/cancel, run timeouts,
compensation and workflow id aliases to ``task.wf`` / ``task.wf.root``. Every feature runs on
pynenc's stock runners and backends as well as in the simulator.
"""

from pynenc_wf_testing.engine.client import (
    WorkflowDescription,
    WorkflowQuery,
    cancel_workflow,
    describe_workflow,
    enable_workflows,
    query_workflow,
    resume_workflow,
    set_retry_policy,
    signal_workflow,
    start_workflow,
    workflow_result,
)
from pynenc_wf_testing.engine.exceptions import (
    AmbiguousWorkflowId,
    NotAWorkflow,
    SignalTimeout,
    UnknownWorkflow,
    WaitTimeout,
    WorkflowAlreadyStarted,
    WorkflowCancelled,
    WorkflowEngineError,
    WorkflowFinished,
    WorkflowHaltException,
    WorkflowIdConflict,
    WorkflowNotFinished,
    WorkflowsNotEnabled,
    WorkflowTimeout,
)
from pynenc_wf_testing.engine.retry import RetryPolicy
from pynenc_wf_testing.engine.saga import Saga

__all__ = [
    "AmbiguousWorkflowId",
    "NotAWorkflow",
    "RetryPolicy",
    "Saga",
    "SignalTimeout",
    "UnknownWorkflow",
    "WaitTimeout",
    "WorkflowAlreadyStarted",
    "WorkflowCancelled",
    "WorkflowDescription",
    "WorkflowEngineError",
    "WorkflowFinished",
    "WorkflowHaltException",
    "WorkflowIdConflict",
    "WorkflowNotFinished",
    "WorkflowQuery",
    "WorkflowTimeout",
    "WorkflowsNotEnabled",
    "cancel_workflow",
    "describe_workflow",
    "enable_workflows",
    "query_workflow",
    "resume_workflow",
    "set_retry_policy",
    "signal_workflow",
    "start_workflow",
    "workflow_result",
]
