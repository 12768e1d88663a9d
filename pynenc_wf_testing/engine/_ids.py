"""Where the client's records of workflow ids live: the pseudo workflows whose data hold them.

Below both the client and continue-as-new (``_chain``), which point a workflow id at a run.
"""

from __future__ import annotations

from typing import Any

from pynenc_wf_testing.engine import schema


def index_identity() -> Any:
    """The app-wide index of workflow ids (``schema.ID_TYPES``, ``schema.ID_OF_RUN``, ...)."""
    from pynenc.identifiers.invocation_id import InvocationId
    from pynenc.identifiers.task_id import TaskId
    from pynenc.workflow.workflow_identity import WorkflowIdentity

    return WorkflowIdentity(
        workflow_id=InvocationId("pynenc-wf-ids"),
        workflow_type=TaskId("pynenc_wf_testing.engine", "workflow_ids"),
    )


def alias_identity_of(task_key: str) -> Any:
    """The registry of the ids given to runs of workflow ``task_key`` (``schema.alias``)."""
    from pynenc.identifiers.invocation_id import InvocationId
    from pynenc.identifiers.task_id import TaskId
    from pynenc.workflow.workflow_identity import WorkflowIdentity

    return WorkflowIdentity(
        workflow_id=InvocationId(schema.alias_registry(task_key)),
        workflow_type=TaskId.from_key(task_key),
    )
