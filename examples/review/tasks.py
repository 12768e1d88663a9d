"""Document review with a reminder, and a planted race (a production pynenc app).

An author submits a document; the approver has a day to approve it (signal ``"approved"``
with ``{"by": name}``), is reminded when that day is over, and has one more day. After that
the review is over and the document is archived.

    review_document(doc_id)                 the planted race
      wait for "approved", 1 day            -> reminder timer
      send_reminder
      wait for "approved", 1 day            -> the deadline
      archive                               <- the review is over ...
      poll "approved" once                  <- ... but an approval that came in just as the
                                               deadline timer fired is published too
      publish                               -> published AND archived

An approval that arrives during the two days is consumed by a wait and published; one that
arrives after the workflow finished is refused by the engine. The race is an approval that
lands right when the deadline timer fires (after the second wait timed out, before the
workflow finished): ``review_document`` archives the document, then finds the approval and
publishes it as well. ``review_document_fixed`` looks for such an approval *before* deciding
to archive. ``examples/test_review.py`` shows ``wf_env.check_interleavings`` finding the race
(an approval delivered at each step boundary) and passing the fixed workflow.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from pynenc import PynencBuilder

from .services import documents

DB_PATH = Path(
    os.environ.get("REVIEW_DB_PATH", Path.home() / ".cache" / "pynenc-review" / "review.db")
)

app = (
    PynencBuilder()
    .app_id("review")
    .sqlite(str(DB_PATH))
    .thread_runner(min_threads=1, max_threads=4)
    .enable_workflows()
    .build()
)

REMIND_AFTER = timedelta(days=1)


@app.task
def send_reminder(doc_id: str) -> None:
    documents.reminders.append(doc_id)


@app.task
def publish(doc_id: str, approver: str) -> None:
    documents.published.append(doc_id)


@app.task
def archive(doc_id: str) -> None:
    documents.archived.append(doc_id)


@app.workflow
def review_document(doc_id: str) -> str:
    root = review_document.wf.root
    approval = root.wait_for_signal("approved", timeout=REMIND_AFTER, default=None)
    if approval is None:
        root.execute_task(send_reminder, doc_id).result
        approval = root.wait_for_signal("approved", timeout=REMIND_AFTER, default=None)
    if approval is None:
        root.execute_task(archive, doc_id).result
        # An approval that raced with the deadline is still honoured (the planted bug: the
        # document was archived a moment ago).
        approval = root.wait_for_signal("approved", timeout=timedelta(0), default=None)
    if approval is not None:
        root.execute_task(publish, doc_id, approval["by"]).result
        return f"published by {approval['by']}"
    return "archived"


@app.workflow
def review_document_fixed(doc_id: str) -> str:
    root = review_document_fixed.wf.root
    approval = root.wait_for_signal("approved", timeout=REMIND_AFTER, default=None)
    if approval is None:
        root.execute_task(send_reminder, doc_id).result
        approval = root.wait_for_signal("approved", timeout=REMIND_AFTER, default=None)
    if approval is None:
        # An approval that arrived just as the deadline timer fired is still on time:
        # look for it before deciding.
        approval = root.wait_for_signal("approved", timeout=timedelta(0), default=None)
    if approval is not None:
        root.execute_task(publish, doc_id, approval["by"]).result
        return f"published by {approval['by']}"
    root.execute_task(archive, doc_id).result
    return "archived"
