"""Readable reports of a simulation or a store: the workflow tree as text, and a self-contained
HTML page.

Both draw a :class:`~pynenc_wf_testing.env.report_model.ReportData`: of an open environment
(``report_data(env)``: every invocation the simulation saw, its status asked of pynenc's
orchestrator, its executions from the side-effect ledger) or read from a production store or a
history file (``env.report_sources``). From it :func:`_build` makes the tree (:class:`_Report`):
nested workflow -> sub-workflows -> children, each with its start, end and runs, and the
worker crashes placed where they happened. Output is deterministic: the same seed and code (or
the same store) give byte-identical text and HTML (no ``id()``, no wall clock, ordering by
first appearance in the history).

Symbols of the text tree (plain ASCII so that any terminal and CI log shows them)::

    |-- `--   tree branches
    *         an injected failure (wf_env.fail) in the list of runs
    x         a worker crash, with the fault that caused it
    ~         what followed a crash (worker restart, pynenc's recovery)
    !         what an unfinished invocation waits for right now

Times are relative to the start (``+H:MM:SS``, ``+Nd HH:MM:SS`` past a day): of the
environment's virtual clock, or of the first record of a store (real time).
"""

from __future__ import annotations

import datetime as dt
import html
import itertools
import math
from collections.abc import Iterator, Mapping, Sequence
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

__all__ = ["render_html", "render_text"]

#: Prefixes of step names that point at an invocation's own step (``route:charge_payment#1``).
_NAME_PREFIXES = ("route:", "retry_status:", "retry:", "record:", *engine_schema.CHILD_STEP_PREFIXES)

#: Widest name column of the text tree before the columns stop being aligned.
_MAX_LABEL = 60
#: Lines of the text tree longer than this are wrapped where the format allows.
_MAX_LINE = 100


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
                else None
            ),
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


# ------------------------------------------------------------------------------ text


def render_text(env: ReportedEnv | ReportData) -> str:
    """The workflow tree of everything ``env`` ran so far, as plain text.

    One line per invocation, nested workflow -> sub-workflows -> children, in order of first
    appearance: its step name, short invocation id, pynenc status, virtual interval
    (``+start..end``, ``open`` while unfinished) and its runs from the ledger (``3 runs:
    retry* x2, success``; ``*`` marks an injected failure). Worker crashes appear where they
    happened (``x crash: crash_after('charge_payment#1') at charge_payment#1``), followed by
    the recovery (``~``); an unfinished invocation says what it waits for (``!``). A header
    gives the seed, how to rerun, and the virtual time span. Deterministic for a given seed.

    ``env`` is an open ``WorkflowEnv``, or a :class:`ReportData` read from a production store
    or a history file (``env.report_sources``): the same tree, on real time for a store.
    """
    report = _build(env)
    lines = _header_lines(report)
    if not report.roots:
        lines.append("(nothing ran in this environment yet)")
        return "\n".join(lines) + "\n"

    rows: list[tuple[str, _Node | None]] = []  # (prefix + label or whole line, node)

    def walk(items: list[_Node | _Crash], lead: str, top: bool) -> None:
        for position, item in enumerate(items):
            last = position == len(items) - 1
            branch = "" if top else ("`-- " if last else "|-- ")
            cont = "" if top else ("    " if last else "|   ")
            if isinstance(item, _Crash):
                line = lead + branch + _crash_text(report, item)
                if len(line) > _MAX_LINE and " at " in item.reason:
                    # Too wide for a terminal: the fault on one line, where it fired below.
                    fault, name = item.reason.rsplit(" at ", 1)
                    rows.append((f"{lead}{branch}x crash: {fault}", None))
                    line = f"{lead}{cont}  at {name}  {report.offset(item.time)}"
                rows.append((line, None))
                for text in _follow_lines(report, item):
                    rows.append((lead + cont + "  " + text, None))
                continue
            rows.append((f"{lead}{branch}{item.name} [{item.short}]", item))
            if item.blocked:
                hang = "|   " if item.children else "    "
                rows.append((f"{lead}{cont}{hang}! {item.blocked}", None))
            walk(item.children, lead + cont, False)

    walk(report.roots, "", True)
    node_rows = [(text, node) for text, node in rows if node is not None]
    width = min(_MAX_LABEL, max((len(text) for text, _ in node_rows), default=0))
    status_width = max((len(node.status) for _, node in node_rows), default=0)
    interval_width = max((len(_interval(report, node)) for _, node in node_rows), default=0)
    for text, node in rows:
        if node is None:
            lines.append(text)
            continue
        label = text.ljust(width)
        status = node.status.upper().ljust(status_width)
        interval = _interval(report, node).ljust(interval_width)
        chain = f"  {node.chain}" if node.chain else ""
        lines.append(
            f"{label}  {status}  {interval}  {_runs_text(node.attempts)}{chain}".rstrip()
        )
    legend = _legend(report)
    if legend:
        lines.append(legend)
    return "\n".join(lines) + "\n"


def _legend(report: _Report) -> str:
    parts = []
    if any(a.injected for n in report.nodes for a in n.attempts):
        parts.append("* injected failure (wf_env.fail)")
    if report.crashes:
        parts.append("x worker crash, ~ recovery")
    if any(n.blocked for n in report.nodes):
        parts.append("! waits right now")
    return ("legend: " + "; ".join(parts)) if parts else ""


# ------------------------------------------------------------------------------ HTML

_OUTCOME_COLOURS = {
    "success": "#2e7d32",
    "failed": "#c62828",
    "retry": "#ef6c00",
    "crashed": "#f48fb1",
    "running": "#1565c0",
    "stalled": "#6a1b9a",
    "suspended": "#90a4ae",
    "aborted": "#6d4c41",
    "cancelled": "#8d6e63",
}
_CRASH_RED = "#d50000"
_SPAN_GREY = "#cfd8dc"

_CSS = """
body { font-family: 'DejaVu Sans', 'Liberation Sans', Arial, sans-serif; margin: 24px;
  color: #1b1f23; background: #ffffff; font-size: 14px; }
h1 { font-size: 20px; margin: 0 0 8px 0; word-break: break-all; }
h2 { font-size: 16px; margin: 24px 0 8px 0; border-bottom: 1px solid #d0d7de; }
.meta { margin: 2px 0; }
.seed { font-family: 'DejaVu Sans Mono', monospace; background: #f6f8fa; padding: 6px 8px;
  border: 1px solid #d0d7de; border-radius: 4px; }
code, .mono { font-family: 'DejaVu Sans Mono', 'Liberation Mono', monospace; font-size: 13px; }
ul.tree, ul.tree ul { list-style: none; margin: 0; padding-left: 22px; }
ul.tree { padding-left: 0; }
ul.tree li { margin: 3px 0; }
ul.tree ul { border-left: 1px dotted #8c959f; margin-left: 6px; padding-left: 16px; }
summary { cursor: pointer; }
.leaf { padding-left: 16px; }
.name { font-weight: bold; }
.wf > .name, summary > .name { color: #0b3d91; }
.id { color: #57606a; }
.status { display: inline-block; padding: 0 6px; border-radius: 8px; font-size: 12px;
  color: #ffffff; background: #57606a; }
.s-success { background: #2e7d32; }
.s-failed { background: #c62828; }
.s-running, .s-pending, .s-registered, .s-rerouted { background: #1565c0; }
.s-retry { background: #ef6c00; }
.time { color: #57606a; font-family: 'DejaVu Sans Mono', monospace; font-size: 12px; }
.runs { color: #1b1f23; }
.run { display: inline-block; width: 10px; height: 10px; margin-right: 2px;
  border-radius: 2px; vertical-align: middle; }
.crash { color: #d50000; font-weight: bold; background: #fdecea; padding: 2px 6px;
  border-radius: 4px; display: inline-block; }
.follow { color: #8a4b00; padding-left: 22px; }
.blocked { color: #8a4b00; padding-left: 22px; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #d0d7de; padding: 2px 8px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
tr.crashrow td { background: #fdecea; color: #b71c1c; }
tr.eventrow td { background: #fff8e1; }
.note { color: #57606a; font-size: 12px; }
.legend span { margin-right: 14px; }
svg text { font-family: 'DejaVu Sans', Arial, sans-serif; font-size: 11px; }
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def render_html(env: ReportedEnv | ReportData, *, title: str) -> str:
    """A self-contained HTML page of ``env``'s run: no external resource, no script.

    It holds the seed line and rerun recipe, the workflow tree of :func:`render_text`
    (collapsible ``<details>``), a timeline of the virtual clock (one row per invocation, its
    runs as coloured bars, crashes as red markers), the step list and the executions
    (ledger). ``title`` heads the page (the plugin passes the test's node id). The page is
    well-formed XML as well as HTML (it parses with ``xml.etree``). ``env`` may also be a
    :class:`ReportData` (a production store or a history file, ``env.report_sources``).
    """
    report = _build(env)
    parts: list[str] = [
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n",
        f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n",
        f"<h1>{_e(title)}</h1>\n",
    ]
    header = _header_lines(report)
    parts.append(f"<p class=\"seed\">{'<br/>'.join(_e(line) for line in header[:-1])}</p>\n")
    parts.append(f"<p class=\"meta\">{_e(header[-1])}</p>\n")
    parts.append("<h2>Workflow tree</h2>\n")
    if report.roots:
        parts.append("<ul class=\"tree\">\n")
        parts.extend(_html_items(report, report.roots))
        parts.append("</ul>\n")
    else:
        parts.append("<p>Nothing ran in this environment yet.</p>\n")
    parts.append(_html_legend())
    parts.append(f"<h2>Timeline ({_clock_name(report)})</h2>\n")
    parts.append(_svg_timeline(report))
    parts.append(
        "<p class=\"note\">The time axis is compressed: each instant at which something starts "
        "or ends gets a tick, and a gap of t seconds between two ticks is drawn 1 + "
        "log10(1 + t) units wide, so that seconds and days fit on one page. Grey: the "
        "invocation exists (routed, waiting); coloured: one execution (run). Hover a bar for "
        "details.</p>\n"
    )
    parts.append("<h2>Steps</h2>\n")
    parts.append(_steps_table(report))
    parts.append("<h2>Executions (ledger)</h2>\n")
    parts.append(_executions_table(report))
    parts.append("</body>\n</html>\n")
    return "".join(parts)


def _clock_name(report: _Report) -> str:
    return "virtual clock" if report.clock == "virtual" else "real time"


def _html_legend() -> str:
    items = [
        f"<span><span class=\"run\" style=\"background:{colour}\"></span>{_e(outcome)}</span>"
        for outcome, colour in _OUTCOME_COLOURS.items()
    ]
    items.append("<span>* injected failure (wf_env.fail)</span>")
    return f"<p class=\"note legend\">runs: {''.join(items)}</p>\n"


def _html_row(report: _Report, node: _Node) -> str:
    runs = "".join(
        f"<span class=\"run\" style=\"background:{_OUTCOME_COLOURS.get(a.outcome, '#57606a')}\" "
        f"title=\"{_e(_attempt_title(report, node, a))}\"></span>"
        for a in node.attempts
    )
    cls = "wf" if node.is_workflow else "task"
    return (
        f"<span class=\"{cls}\"><span class=\"name\">{_e(node.name)}</span></span> "
        f"<code class=\"id\" title=\"{_e(node.invocation_id)}\">[{_e(node.short)}]</code> "
        f"<span class=\"status s-{_e(node.status.replace(' ', '-'))}\">"
        f"{_e(node.status.upper())}</span> "
        f"<span class=\"time\">{_e(_interval(report, node))}</span> "
        f"{runs} <span class=\"runs\">{_e(_runs_text(node.attempts))}</span>"
        + (f" <span class=\"note\">{_e(node.chain)}</span>" if node.chain else "")
    )


def _attempt_title(report: _Report, node: _Node, attempt: _Attempt) -> str:
    end = report.offset(attempt.end) if attempt.end is not None else "open"
    injected = " (injected failure)" if attempt.injected else ""
    worker = f" on worker {attempt.worker}" if attempt.worker else ""
    return (
        f"{node.name} run {attempt.number}: {attempt.outcome}{injected}{worker}, "
        f"{report.offset(attempt.start)}..{end}"
    )


def _html_items(report: _Report, items: list[_Node | _Crash]) -> Iterator[str]:
    for item in items:
        if isinstance(item, _Crash):
            yield f"<li><span class=\"crash\">&#x2717; {_e(_crash_text(report, item)[2:])}</span>"
            for text in _follow_lines(report, item):
                yield f"<div class=\"follow\">{_e(text)}</div>"
            yield "</li>\n"
            continue
        blocked = (
            f"<div class=\"blocked\">! {_e(item.blocked)}</div>" if item.blocked else ""
        )
        if item.children:
            yield f"<li><details open=\"open\"><summary>{_html_row(report, item)}</summary>"
            yield blocked
            yield "<ul>\n"
            yield from _html_items(report, item.children)
            yield "</ul></details></li>\n"
        else:
            yield f"<li class=\"leaf\">{_html_row(report, item)}{blocked}</li>\n"


def _svg_timeline(report: _Report) -> str:
    """One row per invocation (tree order) on a compressed virtual time axis."""
    label_width, chart_width, row_height, top = 330, 780, 22, 58
    instants = {report.t0, report.now}
    for node in report.nodes:
        instants.add(node.start)
        if node.end is not None:
            instants.add(node.end)
        for attempt in node.attempts:
            instants.add(attempt.start)
            if attempt.end is not None:
                instants.add(attempt.end)
    for crash in report.crashes:
        instants.add(crash.time)
        instants.update(when for _, when in crash.follow)
    ordered = sorted(instants)
    weights = [0.0]
    for previous, current in itertools.pairwise(ordered):
        seconds = (current - previous) / 1_000_000
        weights.append(weights[-1] + 1.0 + math.log10(1.0 + seconds))
    total = weights[-1] or 1.0
    position = {
        instant: label_width + chart_width * weight / total
        for instant, weight in zip(ordered, weights, strict=True)
    }
    height = top + row_height * max(1, len(report.nodes)) + 16
    width = label_width + chart_width + 60
    out = [
        (
            f"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" "
            f"viewBox=\"0 0 {width} {height}\" role=\"img\" "
            f"aria-label=\"timeline of the {_clock_name(report)}\" "
            "style=\"max-width:100%;height:auto\">\n"
        ),
        f"<rect x=\"0\" y=\"0\" width=\"{width}\" height=\"{height}\" fill=\"#ffffff\"/>\n",
    ]
    # Axis: ticks at every instant, labels where they do not collide.
    last_label, last_width = -1e9, 0.0
    for instant in ordered:
        x = position[instant]
        out.append(
            f"<line x1=\"{x:.1f}\" y1=\"{top - 24}\" x2=\"{x:.1f}\" y2=\"{height - 12}\" "
            "stroke=\"#eaeef2\" stroke-width=\"1\"/>\n"
        )
        tick = report.offset(instant)
        tick_width = 6.2 * len(tick)  # about 11 px sans-serif: real-time offsets are long
        if x - last_label >= max(64.0, (last_width + tick_width) / 2 + 8):
            out.append(
                f"<text x=\"{x:.1f}\" y=\"{top - 28}\" text-anchor=\"middle\" "
                f"fill=\"#57606a\">{_e(tick)}</text>\n"
            )
            last_label, last_width = x, tick_width
    for row, node in enumerate(report.nodes):
        y = top + row * row_height
        if row % 2:
            out.append(
                f"<rect x=\"0\" y=\"{y}\" width=\"{width}\" height=\"{row_height}\" "
                "fill=\"#f6f8fa\" fill-opacity=\"0.7\"/>\n"
            )
        label = f"{node.name} [{node.short}]{_workers_text(node.attempts)}"
        out.append(
            f"<text x=\"{6 + 14 * node.depth}\" y=\"{y + 15}\" "
            f"font-weight=\"{'bold' if node.is_workflow else 'normal'}\" fill=\"#1b1f23\">"
            f"{_e(label)}</text>\n"
        )
        x1 = position[node.start]
        x2 = position[node.end if node.end is not None else report.now]
        out.append(
            f"<rect x=\"{x1:.1f}\" y=\"{y + 8}\" width=\"{max(x2 - x1, 2.0):.1f}\" "
            f"height=\"6\" fill=\"{_SPAN_GREY}\"><title>{_e(label)} "
            f"{_e(_interval(report, node))} ({_e(node.status)})</title></rect>\n"
        )
        after_marker = -1.0  # right edge of the last zero-length run drawn in this row
        for attempt in node.attempts:
            a1 = position[attempt.start]
            a2 = position[attempt.end if attempt.end is not None else report.now]
            # Runs that end where they start (an immediate failure) are 5 px markers, put
            # side by side rather than on top of each other.
            a1 = max(a1, after_marker + 1)
            a2 = max(a2, a1 + 5.0)
            if attempt.end == attempt.start:
                after_marker = a1 + 5.0
            colour = _OUTCOME_COLOURS.get(attempt.outcome, "#57606a")
            extra = ""
            if attempt.injected:
                extra = " stroke=\"#000000\" stroke-dasharray=\"2 2\""
            elif attempt.outcome == "crashed":
                extra = f" stroke=\"{_CRASH_RED}\" stroke-width=\"1\""
            out.append(
                f"<rect x=\"{a1:.1f}\" y=\"{y + 4}\" width=\"{a2 - a1:.1f}\" "
                f"height=\"14\" rx=\"2\" fill=\"{colour}\"{extra}>"
                f"<title>{_e(_attempt_title(report, node, attempt))}</title></rect>\n"
            )
    for crash in report.crashes:
        x = position[crash.time]
        out.append(
            f"<g><title>{_e(crash.reason)} at {_e(report.offset(crash.time))}</title>"
            f"<line x1=\"{x:.1f}\" y1=\"{top - 16}\" x2=\"{x:.1f}\" y2=\"{height - 12}\" "
            f"stroke=\"{_CRASH_RED}\" stroke-width=\"3\"/>"
            f"<polygon points=\"{x - 7:.1f},{top - 18} {x + 7:.1f},{top - 18} {x:.1f},{top - 6}\" "
            f"fill=\"{_CRASH_RED}\"/>"
            f"<text x=\"{x + 9:.1f}\" y=\"{top - 7}\" fill=\"{_CRASH_RED}\" "
            f"font-weight=\"bold\">crash {crash.number}</text></g>\n"
        )
    out.append("</svg>\n")
    return "".join(out)


def _steps_table(report: _Report) -> str:
    rows = [
        (
            f"<table class=\"steps\">\n<tr><th>#</th><th>{report.clock} time</th><th>kind</th>"
            "<th>name</th><th>workflow</th><th>invocation</th><th>detail</th></tr>\n"
        )
    ]
    for entry in report.history:
        cls = ""
        if entry.kind == "crash":
            cls = " class=\"crashrow\""
        elif not entry.is_step:
            cls = " class=\"eventrow\""
        workflow = report.names.get(entry.workflow_id or "", "")
        invocation = (entry.invocation_id or "")[:8]
        detail = ", ".join(
            f"{key}={value}" for key, value in sorted(entry.detail.items()) if key != "key"
        )
        number = str(entry.number) if entry.number is not None else "--"
        when = _micros(entry.time, {})
        rows.append(
            f"<tr{cls}><td>{_e(number)}</td>"
            f"<td class=\"mono\" title=\"{_e(entry.time)}\">{_e(report.offset(when))}</td>"
            f"<td>{_e(entry.kind)}</td><td class=\"mono\">{_e(entry.name)}</td>"
            f"<td class=\"mono\">{_e(workflow)}</td><td class=\"mono\">{_e(invocation)}</td>"
            f"<td>{_e(detail)}</td></tr>\n"
        )
    rows.append("</table>\n")
    return "".join(rows)


def _executions_table(report: _Report) -> str:
    ends: dict[tuple[str, int], int | None] = {
        (n.invocation_id, a.number): a.end for n in report.nodes for a in n.attempts
    }
    # A worker column only with a worker pool (reports without one keep their bytes).
    pooled = any(getattr(e, "worker", 0) for e in report.ledger)
    rows = [
        (
            "<table class=\"executions\">\n<tr><th>name</th><th>invocation</th><th>run</th>"
            "<th>outcome</th><th>started</th><th>ended</th>"
            + ("<th>worker</th>" if pooled else "")
            + "</tr>\n"
        )
    ]
    for execution in report.ledger:
        end = ends.get((execution.invocation_id, execution.attempt))
        outcome = execution.outcome + (" (injected failure)" if execution.injected else "")
        colour = _OUTCOME_COLOURS.get(execution.outcome, "#57606a")
        rows.append(
            f"<tr><td class=\"mono\">{_e(execution.name)}</td>"
            f"<td class=\"mono\">{_e(execution.invocation_id[:8])}</td>"
            f"<td>{execution.attempt}</td>"
            f"<td><span class=\"run\" style=\"background:{colour}\"></span>{_e(outcome)}</td>"
            f"<td class=\"mono\">{_e(report.offset(_micros(execution.started, {})))}</td>"
            f"<td class=\"mono\">{_e(report.offset(end) if end is not None else 'open')}</td>"
            + (f"<td>w{execution.worker}</td>" if pooled else "")
            + "</tr>\n"
        )
    rows.append("</table>\n")
    return "".join(rows)
