"""The tree a report draws, built from a :class:`~pynenc_wf_testing.env.report_model.
ReportData`, and the formatting the text and HTML renderings share.

:func:`_build` nests workflow -> sub-workflows -> children, each with its start, end and runs,
places the worker crashes where they happened and says which runs link to which (a
continue-as-new chain, a re-run). Deterministic: ordering by first appearance in the history,
never by ``id()`` or the wall clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pynenc_wf_testing.engine import schema as engine_schema
from pynenc_wf_testing.env.report_model import (
    InvocationView,
    ReportData,
    ReportedEnv,
    RunView,
    report_data,
)
from pynenc_wf_testing.runtime.clock import to_micros
from pynenc_wf_testing.runtime.history import Step

__all__: list[str] = []


#: Prefixes of step names that point at an invocation's own step (``route:charge_payment#1``).
_NAME_PREFIXES = ("route:", "retry_status:", "retry:", "record:", *engine_schema.CHILD_STEP_PREFIXES)

# ------------------------------------------------------------------------------ model


@dataclass
class _Attempt:
    """One execution of an invocation (a ledger entry) with its virtual interval."""

    number: int
    outcome: str
    injected: bool
    start: int
    end: int | None
    crash: int | None = None  # index (in _Report.crashes) of the crash that ended it
    worker: int = 0  # the pool worker that ran it (0: no worker pool)


@dataclass
class _Crash:
    """A worker crash and what followed it (restart, recovery)."""

    number: int  # 1-based, in order
    index: int  # position in the history
    time: int
    reason: str
    worker: Any
    follow: list[tuple[str, int]] = field(default_factory=list)  # (text, time)


@dataclass
class _Node:
    """An invocation in the tree."""

    invocation_id: str
    name: str
    task: str
    is_workflow: bool
    status: str
    index: int  # first appearance in the history (sort key)
    start: int
    end: int | None
    attempts: list[_Attempt]
    blocked: str | None = None
    #: ``continued as renewal#2 [fb353203]`` for a run that continued as new.
    chain: str | None = None
    #: Links to the runs before it (``continued from ...``, ``re-run of fulfill#1
    #: [1a2b3c4d] from ship#1``) and after it besides ``chain`` (``re-run as ...``).
    came_from: list[str] = field(default_factory=list)
    went_to: list[str] = field(default_factory=list)
    depth: int = 0
    children: list[_Node | _Crash] = field(default_factory=list)

    @property
    def short(self) -> str:
        return self.invocation_id[:8]


@dataclass
class _Report:
    source: str
    rerun: str | None
    clock: str
    notes: tuple[str, ...]
    t0: int
    now: int
    roots: list[_Node | _Crash]
    nodes: list[_Node]  # depth-first, tree order
    crashes: list[_Crash]
    history: list[Step]
    ledger: list[RunView]
    names: dict[str, str]  # invocation id -> step name
    steps: int

    def offset(self, micros: int) -> str:
        return _format_offset(micros - self.t0)


def _micros(iso: str, cache: dict[str, int]) -> int:
    value = cache.get(iso)
    if value is None:
        value = to_micros(dt.datetime.fromisoformat(iso))
        cache[iso] = value
    return value


def _label(infos: Mapping[str, InvocationView], invocation_id: str) -> str:
    """``renewal#2 [1a2b3c4d]``: an invocation's step name and short id."""
    info = infos.get(invocation_id)
    short = invocation_id[:8]
    return f"{info.name} [{short}]" if info else f"[{short}]"


def _build(source: ReportedEnv | ReportData) -> _Report:
    data = source if isinstance(source, ReportData) else report_data(source)
    history = list(data.steps)
    ledger = list(data.runs)
    cache: dict[str, int] = {}
    now = _micros(data.now, cache)
    t0 = _micros(data.start, cache)
    for entry in history[:1]:
        t0 = min(t0, _micros(entry.time, cache))
    infos = {view.invocation_id: view for view in data.invocations}

    # First appearance, results and retries per invocation, crashes, from the history.
    first: dict[str, int] = {}
    results: dict[str, list[int]] = {}
    retries: dict[str, list[int]] = {}
    crashes: list[_Crash] = []
    # Continue-as-new: the new run's back link is written right before the old run's
    # forward link (engine/_chain.py), so each forward link pairs with the back link before it.
    continued: dict[str, str] = {}
    back_link: str | None = None
    for index, entry in enumerate(history):
        when = _micros(entry.time, cache)
        if entry.kind == "chain" and entry.workflow_id is not None:
            if entry.name.startswith("continued_from"):
                back_link = entry.workflow_id
            elif back_link is not None:
                continued[entry.workflow_id] = back_link
        if entry.invocation_id is not None:
            first.setdefault(entry.invocation_id, index)
            if entry.kind == "result":
                results.setdefault(entry.invocation_id, []).append(when)
            elif entry.kind == "retry":
                retries.setdefault(entry.invocation_id, []).append(when)
        if entry.kind == "crash":
            crashes.append(
                _Crash(
                    number=len(crashes) + 1,
                    index=index,
                    time=when,
                    reason=str(entry.detail.get("reason", "crash")),
                    worker=entry.detail.get("worker"),
                )
            )
        elif entry.kind in ("recover", "restart") and crashes:
            crashes[-1].follow.append((_follow_text(entry, crashes[-1]), when))

    # Executions per invocation, each with the instant it ended.
    attempts: dict[str, list[_Attempt]] = {}
    used_results: dict[str, int] = {}
    used_retries: dict[str, int] = {}
    used_crashes: dict[str, int] = {}
    for execution in ledger:
        inv_id = execution.invocation_id
        start = _micros(execution.started, cache)
        end: int | None = None
        crash_no: int | None = None
        if execution.outcome == "crashed":
            crash_no = _next_crash(crashes, start, used_crashes, inv_id)
        if execution.finished is not None:
            end = _micros(execution.finished, cache)
        elif execution.outcome in ("success", "failed"):
            end = _next_at_or_after(results.get(inv_id, []), start, used_results, inv_id)
        elif execution.outcome == "retry":
            end = _next_at_or_after(retries.get(inv_id, []), start, used_retries, inv_id)
        elif crash_no is not None:
            end = crashes[crash_no].time
        attempts.setdefault(inv_id, []).append(
            _Attempt(
                number=execution.attempt,
                outcome=execution.outcome,
                injected=execution.injected,
                start=start,
                end=end,
                crash=crash_no,
                worker=getattr(execution, "worker", 0),
            )
        )

    nodes: dict[str, _Node] = {}
    fallback = len(history)
    for order, (inv_id, info) in enumerate(infos.items()):
        runs = attempts.get(inv_id, [])
        start = (
            _micros(history[first[inv_id]].time, cache)
            if inv_id in first
            else _micros(info.first_seen, cache) if info.first_seen else now
        )
        if runs:
            start = min(start, runs[0].start)
        status = info.status
        node_end: int | None = None
        if inv_id in results and status in ("success", "failed"):
            node_end = results[inv_id][-1]
        nodes[inv_id] = _Node(
            invocation_id=inv_id,
            name=info.name,
            task=info.task,
            is_workflow=info.is_workflow,
            status=status,
            index=first.get(inv_id, fallback + order),
            start=start,
            end=node_end,
            attempts=runs,
            blocked=info.blocked,
            chain=(
                f"continued as {_label(infos, continued[inv_id])}"
                if inv_id in continued
                else f"continued as {_label(infos, info.continued_as)}"
                if info.continued_as
                else None
            ),
            came_from=_came_from(infos, info),
            went_to=_went_to(infos, info),
        )

    # Nest: direct parent invocation, else the owning workflow, else a root.
    roots: list[_Node | _Crash] = []
    for inv_id, node in nodes.items():
        parent = _parent_of(infos[inv_id], nodes)
        (nodes[parent].children if parent is not None else roots).append(node)
    for crash in crashes:
        container = _crash_container(crash, history, infos, nodes)
        (nodes[container].children if container is not None else roots).append(crash)

    def key(item: _Node | _Crash) -> tuple[int, int]:
        # A crash sorts after the children that appeared before it, at its position in time.
        return (item.index, 1 if isinstance(item, _Crash) else 0)

    ordered: list[_Node] = []

    def walk(items: list[_Node | _Crash], depth: int) -> None:
        items.sort(key=key)
        for item in items:
            if isinstance(item, _Node):
                item.depth = depth
                ordered.append(item)
                walk(item.children, depth + 1)

    walk(roots, 0)
    return _Report(
        source=data.source,
        rerun=data.rerun,
        clock=data.clock,
        notes=data.notes,
        t0=t0,
        now=now,
        roots=roots,
        nodes=ordered,
        crashes=crashes,
        history=history,
        ledger=ledger,
        names={inv_id: info.name for inv_id, info in infos.items()},
        steps=sum(1 for entry in history if entry.is_step),
    )


def _came_from(infos: Mapping[str, InvocationView], info: InvocationView) -> list[str]:
    links = []
    if info.continued_from is not None:
        links.append(f"continued from {_label(infos, info.continued_from)}")
    if info.rerun_of is not None:
        step = f" from {info.rerun_from_step}" if info.rerun_from_step else ""
        links.append(f"re-run of {_label(infos, info.rerun_of)}{step}")
    return links


def _went_to(infos: Mapping[str, InvocationView], info: InvocationView) -> list[str]:
    if not info.rerun_as:
        return []
    return ["re-run as " + ", ".join(_label(infos, run) for run in info.rerun_as)]


def _notes(node: _Node) -> str:
    """What a node's line says after its runs: the runs before it, then after it."""
    return "; ".join([*node.came_from, *([node.chain] if node.chain else []), *node.went_to])


def _next_at_or_after(
    times: list[int], start: int, used: dict[str, int], inv_id: str
) -> int | None:
    """The next unused instant of ``times`` not before ``start`` (k-th retry ends k-th run)."""
    position = used.get(inv_id, 0)
    while position < len(times) and times[position] < start:
        position += 1
    if position >= len(times):
        return None
    used[inv_id] = position + 1
    return times[position]


def _next_crash(
    crashes: list[_Crash], start: int, used: dict[str, int], inv_id: str
) -> int | None:
    position = used.get(inv_id, 0)
    while position < len(crashes) and crashes[position].time < start:
        position += 1
    if position >= len(crashes):
        return None
    used[inv_id] = position + 1
    return position


def _follow_text(entry: Step, crash: _Crash) -> str:
    worker = entry.detail.get("worker")
    if entry.kind == "restart" and "pool_worker" in entry.detail:
        return f"restart: pool worker {entry.detail['pool_worker']} started again"
    if entry.kind == "restart":
        return f"restart: worker {worker} started"
    if entry.name == "recover-tasks":
        return "recover: pynenc's recovery tasks routed"
    return f"recover: worker {worker} took over at once"


def _parent_of(info: InvocationView, nodes: dict[str, _Node]) -> str | None:
    for candidate in (info.parent_invocation_id, info.owner_workflow_id):
        if candidate is not None and candidate in nodes and candidate != info.invocation_id:
            return candidate
    return None


def _crash_container(
    crash: _Crash,
    history: list[Step],
    infos: dict[str, InvocationView],
    nodes: dict[str, _Node],
) -> str | None:
    """The workflow whose children list shows ``crash`` (None: top level).

    The crash event names the step it fired at only in its ``reason`` text
    (``crash_after('x#1') at x#1``); the step's workflow is recovered from the history (after
    a commit) or from the invocation names (before one). A workflow id on the event (its
    ``workflow_id`` or ``detail["workflow_id"]``), when the simulation records one, wins.
    """
    event = history[crash.index]
    recorded = event.workflow_id or event.detail.get("workflow_id")
    if isinstance(recorded, str):
        return recorded if recorded in nodes else None
    reason = crash.reason
    if " at " not in reason:
        return None
    snippet, name = reason.rsplit(" at ", 1)
    if snippet.startswith("crash_after("):
        for entry in reversed(history[: crash.index]):
            if entry.is_step:
                if entry.name == name:
                    wf = entry.workflow_id
                    return wf if wf in nodes else None
                break
    # Before a commit: the step is not in the history. Find the invocation by its name,
    # preferring one whose run this crash ended.
    base = name
    for prefix in _NAME_PREFIXES:
        base = base.removeprefix(prefix)
    hit = crash.number - 1
    named = sorted((n for n in nodes.values() if n.name == base), key=lambda n: n.index)
    if named:
        # Killed by this crash; else the last one seen before it; else (a routing that
        # never committed) the first one routed after the recovery.
        killed = [n for n in named if any(a.crash == hit for a in n.attempts)]
        before = [n for n in named if n.index <= crash.index]
        chosen = killed[-1] if killed else before[-1] if before else named[0]
        info = infos[chosen.invocation_id]
        owner = info.owner_workflow_id or info.workflow_id
        return owner if owner in nodes else None
    # A workflow's own step (sleep#1, uuid#2, data:...): a workflow this crash interrupted
    # that was not itself waiting on an interrupted sub-workflow (the innermost), the one
    # active last before the crash if several.
    killed_wfs = {
        n.invocation_id
        for n in nodes.values()
        if n.is_workflow and any(a.crash == hit for a in n.attempts)
    }
    waiting = {_parent_of(infos[wf], nodes) for wf in killed_wfs}
    innermost: set[str] = {wf for wf in killed_wfs if wf not in waiting}
    for earlier in history[: crash.index][::-1]:
        if earlier.workflow_id in innermost or earlier.invocation_id in innermost:
            return earlier.workflow_id if earlier.workflow_id in innermost else earlier.invocation_id
    return max(innermost, key=lambda wf: nodes[wf].index) if innermost else None


# ------------------------------------------------------------------------------ formatting


def _format_offset(delta: int) -> str:
    sign = "+" if delta >= 0 else "-"
    return sign + _format_span(abs(delta))


def _format_span(micros: int) -> str:
    days, rest = divmod(micros, 86_400_000_000)
    seconds, fraction = divmod(rest, 1_000_000)
    hours, rest_s = divmod(seconds, 3600)
    minutes, secs = divmod(rest_s, 60)
    text = f"{hours}:{minutes:02d}:{secs:02d}"
    if fraction:
        text += f".{fraction:06d}".rstrip("0")
    if days:
        text = f"{days}d" if not rest else f"{days}d {text}"
    return text


def _iso(micros: int) -> str:
    return (dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=micros)).isoformat()


def _runs_text(attempts: Sequence[_Attempt]) -> str:
    if not attempts:
        return "not run"
    if len(attempts) == 1 and attempts[0].outcome == "success" and not attempts[0].injected:
        return "1 run" + _workers_text(attempts)
    groups: list[list[Any]] = []
    for attempt in attempts:
        label = attempt.outcome + ("*" if attempt.injected else "")
        if groups and groups[-1][0] == label:
            groups[-1][1] += 1
        else:
            groups.append([label, 1])
    parts = [label if count == 1 else f"{label} x{count}" for label, count in groups]
    noun = "run" if len(attempts) == 1 else "runs"
    return f"{len(attempts)} {noun}: " + ", ".join(parts) + _workers_text(attempts)


def _workers_text(attempts: Sequence[_Attempt]) -> str:
    """`` on w1, w2``: the pool workers of the runs, in order (empty without a pool)."""
    if not any(attempt.worker for attempt in attempts):
        return ""
    return " on " + ", ".join(f"w{attempt.worker}" for attempt in attempts)


def _interval(report: _Report, node: _Node) -> str:
    if node.end == node.start:
        return report.offset(node.start)
    end = report.offset(node.end) if node.end is not None else "open"
    return f"{report.offset(node.start)}..{end}"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 'es' if noun.endswith('sh') else 's'}"


def _header_lines(report: _Report) -> list[str]:
    lines = [
        (
            f"{report.source}; {_plural(report.steps, 'step')}, "
            f"{_plural(len(report.crashes), 'crash')}, "
            f"{_plural(len(report.ledger), 'task execution')}"
        ),
    ]
    if report.rerun is not None:
        lines.append(f"rerun: {report.rerun}")
    lines.extend(report.notes)
    lines.append(
        f"{report.clock} time: {_iso(report.t0)} -> {_iso(report.now)} "
        f"(+{_format_span(report.now - report.t0)})"
    )
    return lines


def _crash_text(report: _Report, crash: _Crash) -> str:
    return f"x crash: {crash.reason}  {report.offset(crash.time)}"


def _follow_lines(report: _Report, crash: _Crash) -> list[str]:
    return [f"~ {text}  {report.offset(when)}" for text, when in crash.follow]
