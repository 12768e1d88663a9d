"""The text rendering of a report: :func:`render_text` (the public home is
:mod:`pynenc_wf_testing.env.report`)."""

from __future__ import annotations

from pynenc_wf_testing.env._report_layout import (
    _build,
    _Crash,
    _crash_text,
    _follow_lines,
    _header_lines,
    _interval,
    _Node,
    _notes,
    _Report,
    _runs_text,
)
from pynenc_wf_testing.env.report_model import (
    ReportData,
    ReportedEnv,
)

__all__: list[str] = []

#: Widest name column of the text tree before the columns stop being aligned.
_MAX_LABEL = 60
#: Lines of the text tree longer than this are wrapped where the format allows.
_MAX_LINE = 100

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
        notes = _notes(node)
        chain = f"  {notes}" if notes else ""
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
