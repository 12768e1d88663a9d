"""Tests of the document review workflow (examples/review/tasks.py), and the planted race
that ``wf_env.check_interleavings`` finds in it."""

from datetime import timedelta

import pytest
from pynenc_wf_testing import Advance, Cancel, InterleavingError, Signal

from review import tasks
from review.services import documents

#: What can reach a review from outside: the approval, the author withdrawing the
#: document, and time passing while the worker is busy.
EVENTS = [Signal("approved", {"by": "ann"}), Cancel("withdrawn"), Advance(timedelta(hours=6))]


@pytest.fixture(autouse=True)
def outside_world():
    documents.reset()


def one_end_state(env):
    """The business rule: a document is published or archived, never both."""
    both = documents.both_published_and_archived()
    assert not both, f"published and archived: {both}"


def a_known_result(result):
    return result == "archived" or result.startswith("published by ")


def test_an_approval_within_the_day_publishes_without_a_reminder(wf_env):
    run = wf_env.start(tasks.review_document, "doc-1")
    wf_env.advance(hours=5)
    wf_env.signal(run, "approved", {"by": "ann"})

    assert run.result == "published by ann"
    assert documents.published == ["doc-1"] and documents.reminders == []


def test_no_approval_reminds_once_then_archives(wf_env):
    run = wf_env.start(tasks.review_document, "doc-2")

    assert run.result == "archived"
    assert documents.reminders == ["doc-2"] and documents.archived == ["doc-2"]


def test_check_interleavings_finds_the_approval_that_races_the_deadline(wf_env):
    report = wf_env.check_interleavings(
        tasks.review_document, "doc-3", events=EVENTS,
        invariant=one_end_state, compare=a_known_result, before_each=documents.reset,
    )

    with pytest.raises(InterleavingError) as found:
        report.assert_ok()
    message = str(found.value)
    # The smallest schedule: the approval right after the second wait timed out (the
    # deadline timer fired), before the workflow finished.
    assert "wf_env.deliver_after('wait_signal:approved#2', Signal('approved', {'by': 'ann'}))" in message
    assert "[invariant] invariant(env) failed: published and archived: ['doc-3']" in message
    assert "Golden run (no events): returned 'archived'" in message
    # The same approval earlier is consumed by a wait and published: not the race.
    singles = report.explored[: len(report.boundaries) * len(EVENTS)]  # each event alone first
    earlier = [
        o for o in singles
        if str(o.schedule).startswith("env.deliver_after('wait_signal:approved#1', Signal(")
    ]
    assert [o.outcome for o in earlier] == ["returned 'published by ann'"]
    assert all(o.ok for o in earlier)


def test_the_reproduction_replays_the_race(wf_env):
    wf_env.deliver_after("wait_signal:approved#2", Signal("approved", {"by": "ann"}))
    run = wf_env.start(tasks.review_document, "doc-4")

    assert run.result == "published by ann"
    assert documents.archived == ["doc-4"] and documents.published == ["doc-4"]


def test_the_fixed_workflow_passes_every_interleaving(wf_env):
    report = wf_env.check_interleavings(
        tasks.review_document_fixed, "doc-5", events=EVENTS,
        invariant=one_end_state, compare=a_known_result, before_each=documents.reset,
    )

    report.assert_ok()
    # A cancellation ends the workflow with WorkflowCancelled: an outcome, not a violation.
    assert any(o.outcome.startswith("raised WorkflowCancelled") for o in report.explored)
    assert {o.outcome for o in report.explored} >= {"returned 'archived'", "returned 'published by ann'"}
