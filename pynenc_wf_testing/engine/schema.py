"""The engine's stored schema: every key it writes into a workflow's data, and what each holds.

pynenc gives each workflow one key/value namespace (``wf.get_data/set_data``) that its own
deterministic operations share (``random:N``, ``task_invocation:<call id>``, ...). The engine
writes under the ``wfx:`` prefix only, and nothing outside this module spells one of its keys:
the engine's operations build keys with the functions below, and the simulator, the replay of
recorded histories and the reports read them back through :func:`classify` and the helpers
here.

Keys numbered ``N`` count an operation's position in one execution of the workflow body (the
N-th ``sleep``, the N-th ``wait_any``...), as pynenc's own ``random:N`` do: a replay of the body
reaches the same positions in the same order and finds its earlier decisions there.

Change a key or a record layout only together with :data:`SCHEMA_VERSION`: the stores of
running workflows and saved histories hold the old layout.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NotRequired, TypedDict

__all__ = [
    "CANCEL",
    "CHILD_STEP_PREFIXES",
    "CONTINUED_AS",
    "CONTINUED_FROM",
    "DEADLINE",
    "DUE_INDEX",
    "RUN_DEADLINES",
    "HALTED",
    "ID_OF_RUN",
    "INVALIDATED",
    "ID_TYPES",
    "POSITIONED",
    "PREFIX",
    "RERUN_BY",
    "RERUN_OF",
    "SCHEMA_VERSION",
    "SIGNAL_NAMES",
    "SERVICE_BEAT",
    "SERVICE_GEN",
    "STATE_LATEST",
    "INTERRUPTED",
    "STEP_KINDS",
    "AbandonRecord",
    "SUSPENDED",
    "SuspensionRecord",
    "WATCHED",
    "WATCHED_TASKS",
    "WAKES_CLAIMED",
    "WAKES_FINISHED",
    "HaltRecord",
    "InterruptRecord",
    "RerunRecord",
    "SideEffectRecord",
    "SignalRecord",
    "SignalWaitRecord",
    "StateRecord",
    "TaskWaitRecord",
    "abandon",
    "alias",
    "alias_registry",
    "check",
    "classify",
    "halt",
    "interrupt",
    "id_claim",
    "id_types",
    "is_engine_key",
    "now",
    "patch",
    "records_child",
    "retry",
    "retry_route",
    "side_effect",
    "signal",
    "signal_count",
    "signal_deadline",
    "signal_note",
    "signal_slots",
    "signal_wait",
    "state",
    "state_pos",
    "task_wait",
    "timer",
    "timer_fired",
    "wait_any",
    "wake",
    "wake_claim",
    "wake_signal",
]

#: Version of the layout below. 1: the layout the engine first shipped with (later additions
#: of new keys, such as the continue-as-new links, leave it: a store without them reads them
#: as absent).
SCHEMA_VERSION = 1

#: Every engine key starts with this; user data must not (docs/engine.md, limitations).
PREFIX = "wfx:"

# ---------------------------------------------------------------------- per-workflow flags

#: The cancellation reason (``cancel_workflow``); present = cancelled.
CANCEL = PREFIX + "cancel"
#: The run deadline, an ISO-8601 instant (``start_workflow(..., run_timeout=...)``).
DEADLINE = PREFIX + "deadline"
#: Why the run ended early, recorded the first time it saw its cancellation or run timeout
#: (after cancelling its open children): an :class:`InterruptRecord`.
INTERRUPTED = PREFIX + "interrupted"
#: Why the workflow is halted (``wf.root.halt``); reset to None when it is resumed.
HALTED = PREFIX + "halted"
#: The slot of the latest published snapshot (``wf.save_state``), an int.
STATE_LATEST = PREFIX + "state_latest"
#: In a run that called ``wf.root.continue_as_new``: the invocation id of the run it
#: started (recorded once; a replay of the old run adopts that run instead of starting another).
CONTINUED_AS = PREFIX + "continued_as"
#: In a run started by ``continue_as_new``: the invocation id of the run before it.
CONTINUED_FROM = PREFIX + "continued_from"
#: The wake-up condition of a suspended workflow (production only): a
#: :class:`SuspensionRecord`, replaced at each suspension (its ``gen`` counts them).
SUSPENDED = PREFIX + "suspended"
#: Of a re-run (``rerun_workflow``): the run it re-runs and from which step, a RerunRecord.
RERUN_OF = PREFIX + "rerun_of"
#: Of a finished run that was re-run: the run ids of its re-runs, oldest first.
RERUN_BY = PREFIX + "rerun_by"
#: Of a finished run: the child invocation ids whose recorded results a re-run must not
#: reuse (``invalidate_result``), in step order.
INVALIDATED = PREFIX + "invalidated"


# ---------------------------------------------------------------------- positioned records


def timer(n: int) -> str:
    """The n-th durable timer's deadline, an ISO-8601 instant (``sleep`` / ``sleep_until``)."""
    return f"{PREFIX}timer:{n}"


def timer_fired(n: int) -> str:
    """True once the n-th timer has fired: a replay goes straight past it."""
    return f"{PREFIX}timer_fired:{n}"


def now(n: int) -> str:
    """The n-th ``wf.root.now()``, an ISO-8601 instant."""
    return f"{PREFIX}now:{n}"


def side_effect(n: int) -> str:
    """The n-th ``wf.root.side_effect(fn)``: a :class:`SideEffectRecord`."""
    return f"{PREFIX}side_effect:{n}"


def check(n: int) -> str:
    """True once the n-th ``wf.root.check_cancelled()`` has passed."""
    return f"{PREFIX}check:{n}"


def halt(n: int) -> str:
    """The n-th ``wf.root.halt()``: a :class:`HaltRecord`."""
    return f"{PREFIX}halt:{n}"


def task_wait(n: int) -> str:
    """The n-th ``wf.root.wait_for_task()``: a :class:`TaskWaitRecord`."""
    return f"{PREFIX}task_wait:{n}"


def wait_any(n: int) -> str:
    """The n-th ``wf.root.wait_any()``: the index of the invocation that finished first."""
    return f"{PREFIX}any:{n}"


def state_pos(position: int) -> str:
    """The snapshot slot reserved by the workflow body's ``position``-th ``save_state``."""
    return f"{PREFIX}state_pos:{position}"


def retry(n: int, attempt: int) -> str:
    """The invocation id of attempt ``attempt`` of the n-th ``execute_task_with_retry``."""
    return f"{PREFIX}retry:{n}:{attempt}"


def retry_route(n: int, attempt: int) -> str:
    """True once attempt ``attempt`` of the n-th retried call is about to be routed: recorded
    before routing, so a replay after a crash in between adopts the routed child."""
    return f"{PREFIX}retry_route:{n}:{attempt}"


# ---------------------------------------------------------------------- named records


def signal(name: str, slot: int) -> str:
    """The ``slot``-th signal ``name`` received (1, 2, ...): a :class:`SignalRecord`."""
    return f"{PREFIX}signal:{name}:{slot}"


def signal_count(name: str) -> str:
    """How many signals ``name`` arrived (a hint: senders probe past it)."""
    return f"{PREFIX}signal_count:{name}"


def signal_wait(name: str, j: int) -> str:
    """The outcome of the j-th wait for signal ``name``: a :class:`SignalWaitRecord`."""
    return f"{PREFIX}signal_wait:{name}:{j}"


def signal_deadline(name: str, j: int) -> str:
    """The deadline of the j-th wait for signal ``name``, an ISO-8601 instant."""
    return f"{PREFIX}signal_deadline:{name}:{j}"


def state(slot: int) -> str:
    """A published snapshot: a :class:`StateRecord`."""
    return f"{PREFIX}state:{slot}"


def patch(change_id: str) -> str:
    """Whether this run took the new branch of ``wf.root.patched(change_id)`` (a bool)."""
    return f"{PREFIX}patch:{change_id}"


# ---------------------------------------------------------------------- outside the workflows


def alias_registry(task_key: str) -> str:
    """Workflow id of the registry of ``start_workflow(..., workflow_id=alias)`` for a task.

    Aliases live in the data of this pseudo workflow, not of a run, so that the next run of
    the same alias finds them."""
    return f"pynenc-wf-aliases:{task_key}"


#: The client's store-wide index of workflow ids (formatted with a workflow id / a run id):
#: the workflow types that use an id, and the id a run was started under.
ID_TYPES = PREFIX + "id_types:{}"
ID_OF_RUN = PREFIX + "id_of_run:{}"
#: In the same index (formatted with a run id): the names of the signals sent to that run, a
#: sorted list, which ``continue_as_new`` reads to carry unconsumed signals over. Kept out of
#: the run's own data so that its recorded history is what it was before chains existed.
SIGNAL_NAMES = PREFIX + "signal_names:{}"


def alias(workflow_id: str) -> str:
    """Key, in the alias registry, of the run that holds alias ``workflow_id``."""
    return f"alias:{workflow_id}"


def wake(workflow_id: str) -> str:
    """Wake-up key of a workflow's events (signals, cancellation, resume); never stored."""
    return f"{PREFIX}{workflow_id}"


def interrupt(workflow_id: str) -> str:
    """Wake-up key of a workflow blocked in a plain ``.result`` in the simulator (a
    cancellation, a new run deadline; not a signal); never stored."""
    return f"{PREFIX}interrupt:{workflow_id}"


def abandon(call_id: str) -> str:
    """Key of a child call made with ``parent_close=ParentClosePolicy.ABANDON`` (pynenc's
    call id: task and arguments), recorded before the child is routed; holds an
    :class:`AbandonRecord`. A call without one is cancelled when its parent closes."""
    return f"{PREFIX}abandon:{call_id}"


def wake_signal(name: str) -> str:
    """Wake-up key, in a :class:`SuspensionRecord`, of a wait for signal ``name``."""
    return f"{PREFIX}signal:{name}"


# ---------------------------------------------------------------------- atomic store keys
#
# Keys of ``engine.atomic`` (the cross-process operations), not of a workflow's data.

#: The due-time index of suspended workflows (member: workflow invocation id).
DUE_INDEX = PREFIX + "due"
#: The run deadlines of workflow runs with a run timeout, for the timer service (member:
#: workflow invocation id; production only, see ``_close_watch``).
RUN_DEADLINES = PREFIX + "run_deadlines"
#: The set of awaited invocations of suspended workflows (member: "<invocation> <workflow>").
WATCHED = PREFIX + "watched"
#: Suspended waits for any new run of a task (``wait_for_task(task)``), member
#: "<final runs counted at suspension> <workflow> <task key>".
WATCHED_TASKS = PREFIX + "watched_tasks"
#: Wakes in progress (a due-time index scored by the instant noted), checked by the timer
#: service once the grace has passed (``_suspend.finish_stranded``). Member
#: "<workflow> <gen>": written before a wake claim and kept after the reroute, so that a
#: waker that died mid-wake or a lost broker message is finished. Member
#: :func:`signal_note`: written by a signal's sender before it stores the signal and removed
#: once its wake is noted, so that a sender that died in between still wakes the workflow.
WAKES_CLAIMED = PREFIX + "wakes_claimed"
#: How many of those wakes the timer service finished (a counter, for operators and tests).
WAKES_FINISHED = PREFIX + "wakes_finished"
#: The timer service's generation counter (only the latest generation ticks) and heartbeat.
SERVICE_GEN = PREFIX + "service_gen"
SERVICE_BEAT = PREFIX + "service_beat"


def signal_note(workflow_id: str, name: str, slot: int) -> str:
    """A signal sender's note in :data:`WAKES_CLAIMED` for slot ``slot`` of signal ``name``
    (the name last: it may hold spaces; invocation ids hold none)."""
    return f"{workflow_id} * {slot} {name}"


def wake_claim(workflow_id: str, gen: int) -> str:
    """Claimed (set-if-absent) by the one waker of suspension ``gen`` of a workflow."""
    return f"{PREFIX}wake_claim:{workflow_id}:{gen}"


def signal_slots(workflow_id: str, name: str) -> str:
    """The counter that hands out the slots of signal ``name`` of a workflow."""
    return f"{PREFIX}signal_slots:{workflow_id}:{name}"


def id_claim(task_key: str, workflow_id: str) -> str:
    """The run (or a start in progress) that holds workflow id ``workflow_id`` of a type."""
    return f"{PREFIX}id_claim:{task_key}:{workflow_id}"


def id_types(workflow_id: str) -> str:
    """The set of workflow types that used ``workflow_id``."""
    return ID_TYPES.format(workflow_id)


# ---------------------------------------------------------------------- record layouts


class SideEffectRecord(TypedDict):
    value: Any


class SignalRecord(TypedDict):
    payload: Any
    at: str  # ISO-8601 arrival instant


class SignalWaitRecord(TypedDict, total=False):
    slot: int  # the signal slot consumed
    timeout: bool  # or: the wait timed out


class StateRecord(TypedDict):
    state: Any
    at: str  # ISO-8601 publication instant


class AbandonRecord(TypedDict):
    task: str  # the child task's function name (for step names)


class InterruptRecord(TypedDict):
    why: str  # "was cancelled: <reason>" or "passed its run timeout (<deadline>)"
    deadline: str | None  # the run deadline passed (ISO-8601), None for a cancellation
class SuspensionRecord(TypedDict):
    gen: int  # the n-th suspension of this workflow (the wake claim names it)
    keys: list[str]  # what wakes it besides cancel/resume: wake_signal(name), "inv:<id>",
    # "task:<task key>"
    deadline: str | None  # ISO-8601: min(wait deadline, run deadline), or None
    what: str  # the wait, for humans (describe_workflow)
    at: str  # ISO-8601 instant of the suspension
    # wait_for_task(task): task key -> how many of its runs were final at suspension
    finals: NotRequired[dict[str, int]]


class HaltRecord(TypedDict):
    reason: str
    resumed: bool


class RerunRecord(TypedDict):
    run: str  # the run id re-run
    from_step: str | None  # the first step executed again (None: only invalidated ones)
    reused: list[list[str]]  # [step name, child id] of the results it started with, in order


class TaskWaitRecord(TypedDict):
    deadline: NotRequired[str]  # ISO-8601, with a timeout
    known: NotRequired[list[str]]  # runs of the task that existed when the wait began
    done: NotRequired[str]  # the invocation the wait returned
    timeout: NotRequired[bool]  # or: the wait timed out


#: Records keyed by a position counter: (counter name, key of a position). A record at the
#: position after the one an execution reached means an earlier execution went further.
POSITIONED: tuple[tuple[str, Callable[[int], str]], ...] = (
    ("timer", timer),
    ("now", now),
    ("side_effect", side_effect),
    ("state", state_pos),
    ("halt", halt),
    ("task_wait", task_wait),
    ("any", wait_any),
    ("retry_call", lambda n: retry_route(n, 1)),
    ("check", check),
)


# ---------------------------------------------------------------------- reading keys back

#: Prefixes of the step names :func:`classify` gives records that name a child invocation
#: (an attempt of a retried call: ``attempt:charge_payment#2``); reports follow them to it.
CHILD_STEP_PREFIXES = ("attempt:",)

#: Step kinds of the engine's records, as :func:`classify` names them.
STEP_KINDS = frozenset(
    {"timer", "value", "signal", "state", "halt", "retry", "cancel", "chain", "data"}
)

# Records that only support another step (counters, deadlines of waits, flags; the client's
# index of workflow ids, which follows the start's own alias record).
_SUPPORTING = frozenset(
    {"signal_count", "signal_deadline", "state_latest", "state_pos", "halted", "id_types",
     "id_of_run", "signal_names", "suspended", "rerun_of", "rerun_by",
     "invalidated"}
)


def is_engine_key(key: str) -> bool:
    return key.startswith(PREFIX)


def records_child(key: str) -> bool:
    """Whether the record under ``key`` is the id of a child invocation the workflow
    obtained (an attempt of a retried call)."""
    return key.startswith(f"{PREFIX}retry:")


def classify(
    key: str, value: Any, child_name: Callable[[str], str | None]
) -> tuple[str, str] | None:
    """The step that writing ``value`` under the engine key ``key`` is: (kind, name), or None
    for supporting records that are not steps of their own.

    ``child_name`` gives the readable name of a child invocation by id (None if unknown).
    """
    parts = key.removeprefix(PREFIX).split(":")
    kind = parts[0]
    last = parts[-1]
    if kind in _SUPPORTING or value is None:
        return None
    if kind == "timer":
        return "timer", f"sleep#{last}"
    if kind == "timer_fired":
        return "timer", f"timer#{last}"
    if kind in ("now", "side_effect"):
        return "value", f"{kind}#{last}"
    if kind == "any":
        return "value", f"wait_any#{last}"
    if kind == "task_wait":
        return "value", f"wait_for_task#{last}"
    if kind == "signal" and len(parts) >= 3:
        return "signal", f"signal:{':'.join(parts[1:-1])}#{last}"
    if kind == "signal_wait" and len(parts) >= 3:
        return "signal", f"wait_signal:{':'.join(parts[1:-1])}#{last}"
    if kind == "state":
        return "state", f"save_state#{last}"
    if kind == "halt":
        return "halt", f"halt#{last}"
    if kind == "retry":
        child = child_name(str(value))
        return "retry", f"{CHILD_STEP_PREFIXES[0]}{last if child is None else child}"
    if kind == "patch":
        return "value", f"patch:{':'.join(parts[1:])}"
    if kind == "cancel":
        return "cancel", "cancel#1"
    if kind == "continued_as":
        return "chain", "continue_as_new#1"
    if kind == "continued_from":
        return "chain", "continued_from#1"
    if kind == "abandon" and isinstance(value, dict):
        return "value", f"abandon:{value.get('task')}"
    if kind == "deadline":
        return "timer", "run_timeout#1"
    if kind == "interrupted":
        return "cancel", "interrupted#1"
    if kind == "check":
        return "value", f"check_cancelled#{last}"
    if kind == "retry_route":
        # the intent recorded before routing attempt N of a retried call (#call:attempt)
        if len(parts) >= 3:
            return "value", f"route_attempt#{parts[1]}:{last}"
        return "value", f"route_attempt#{last}"
    return "data", key
