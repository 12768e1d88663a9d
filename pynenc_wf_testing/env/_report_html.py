"""The HTML rendering of a report: :func:`render_html`, a self-contained page (the public
home is :mod:`pynenc_wf_testing.env.report`)."""

from __future__ import annotations

import html
import itertools
import math
from collections.abc import Iterator

from pynenc_wf_testing.env._report_layout import (
    _Attempt,
    _build,
    _Crash,
    _crash_text,
    _follow_lines,
    _header_lines,
    _interval,
    _micros,
    _Node,
    _notes,
    _Report,
    _runs_text,
    _workers_text,
)
from pynenc_wf_testing.env.report_model import (
    ReportData,
    ReportedEnv,
)

__all__: list[str] = []

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
        + (f" <span class=\"note\">{_e(_notes(node))}</span>" if _notes(node) else "")
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
