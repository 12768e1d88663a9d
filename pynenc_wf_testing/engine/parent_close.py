"""The parent-close policy of a child call: what happens to it when its parent workflow ends.

Chosen per call with ``wf.root.start_child(task, *args, parent_close=...)``; see
docs/engine.md, "Parent-close policy".
"""

from __future__ import annotations

import enum

__all__ = ["ParentClosePolicy"]


class ParentClosePolicy(enum.Enum):
    """What happens to a running child when its parent workflow ends (completes, fails, is
    cancelled or times out). Named after Temporal's ``ParentClosePolicy``."""

    CANCEL = "cancel"
    """The default: a sub-workflow is asked to cancel (``WorkflowCancelled`` inside it, its
    compensations run); any other child is terminated (FAILED with ``WorkflowCancelled``)."""
    ABANDON = "abandon"
    """The child runs on to its own end, whatever happens to the parent."""
