"""The durable-workflow engine on top of pynenc's ``@app.workflow`` / ``task.wf``.

Off by default: ``enable_workflows(app)`` (or ``PynencBuilder().enable_workflows()``) adds
durable timers, signals, queries, waits, retry policies, halt/resume/cancel, run timeouts,
compensation, workflow id aliases and continue-as-new to ``task.wf`` / ``task.wf.root``, and
can encrypt the app's stored payloads (``encryption=Keyring(...)``). Every feature runs on
pynenc's stock runners and backends as well as under a simulator.

The engine imports pynenc and itself only (and ``cryptography`` once an app enables
encryption). A simulator plugs in through ``hooks``; every key
the engine stores is defined in ``schema``; ``task_wf`` swaps pynenc's ``task.wf``.
"""

from pynenc_wf_testing.engine.client import (
    WorkflowDescription,
    WorkflowQuery,
    cancel_workflow,
    describe_workflow,
    enable_workflows,
    enable_workflows_in_config,
    query_workflow,
    resume_workflow,
    set_retry_policy,
    signal_workflow,
    start_workflow,
    workflow_result,
)
from pynenc_wf_testing.engine.crypto import (
    EncryptionError,
    Keyring,
    MissingEncryptionKey,
    payload_key_id,
)
from pynenc_wf_testing.engine.exceptions import (
    AmbiguousWorkflowId,
    ContinuedAsNew,
    InvalidWorkflowArgument,
    InvalidWorkflowOperation,
    NotAWorkflow,
    SignalTimeout,
    UnknownStep,
    UnknownWorkflow,
    UnsupportedPynencVersion,
    UnsupportedStateBackend,
    WaitTimeout,
    WorkflowAlreadyStarted,
    WorkflowCancelled,
    WorkflowEngineError,
    WorkflowFinished,
    WorkflowHaltException,
    WorkflowIdConflict,
    WorkflowNotFinished,
    WorkflowsNotEnabled,
    WorkflowSuspended,
    WorkflowTimeout,
)
from pynenc_wf_testing.engine.parent_close import ParentClosePolicy
from pynenc_wf_testing.engine.rerun import invalidate_result, rerun_workflow, workflow_steps
from pynenc_wf_testing.engine.retry import RetryPolicy
from pynenc_wf_testing.engine.saga import Saga

__all__ = [
    "AmbiguousWorkflowId",
    "ContinuedAsNew",
    "EncryptionError",
    "InvalidWorkflowArgument",
    "InvalidWorkflowOperation",
    "Keyring",
    "MissingEncryptionKey",
    "NotAWorkflow",
    "ParentClosePolicy",
    "RetryPolicy",
    "Saga",
    "SignalTimeout",
    "UnknownStep",
    "UnknownWorkflow",
    "UnsupportedPynencVersion",
    "UnsupportedStateBackend",
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
    "WorkflowSuspended",
    "WorkflowTimeout",
    "WorkflowsNotEnabled",
    "cancel_workflow",
    "describe_workflow",
    "enable_workflows",
    "enable_workflows_in_config",
    "invalidate_result",
    "payload_key_id",
    "query_workflow",
    "rerun_workflow",
    "resume_workflow",
    "set_retry_policy",
    "signal_workflow",
    "start_workflow",
    "workflow_result",
    "workflow_steps",
]
