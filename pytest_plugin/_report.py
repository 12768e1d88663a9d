"""Text of the plugin's reports: the failure section and the ``--wf-summary`` table.

Pure formatting over plain data (stdlib only), so it is cheap to import and easy to test.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

#: Title of the report section added to a failing test that used ``wf_env``.
SECTION_TITLE = "pynenc-wf"

#: How many of the last history entries a failure report shows.
LAST_STEPS = 15


@dataclass
class EnvSnapshot:
    """What a report needs from a ``WorkflowEnv``, read while it was still open."""

    history: list[Any] = field(default_factory=list)
    steps: int = 0
    crashes: int = 0
    executions: int = 0
    now: dt.datetime | None = None
    blocked: dict[str, str] = field(default_factory=dict)
    tree: str = ""


def take_snapshot(env: Any) -> EnvSnapshot | None:
    """Read ``env`` for a report; None if it cannot be read (never raises: reports stay robust)."""
    try:
        history = env.history
        return EnvSnapshot(
            history=history,
            steps=sum(1 for step in history if step.number is not None),
            crashes=env.crashes,
            executions=len(env.ledger),
            now=env.now,
            blocked=dict(env.blocked()),
            tree=_tree(env),
        )
    except Exception:
        return None


def _tree(env: Any) -> str:
    try:
        return str(env.render())
    except Exception:
        return ""


def shell_quote(text: str) -> str:
    """Always single-quote (node ids hold ``::`` and ``[...]``), escaping inner quotes."""
    return "'" + text.replace("'", "'\"'\"'") + "'"


def seed_line(seed: int, nodeid: str) -> str:
    """The one line that says how to reproduce a run: the seed and the exact command."""
    return (
        f"wf_env seed: {seed} \u2014 rerun with: pytest {shell_quote(nodeid)} --wf-seed={seed}"
        f"  (or add @pytest.mark.wf(seed={seed}))"
    )


def failure_section(seed: int, nodeid: str, snapshot: EnvSnapshot | None) -> str:
    """The body of the ``pynenc-wf`` report section of a failing test."""
    lines = [seed_line(seed, nodeid)]
    if snapshot is None:
        return "\n".join(lines)
    now = snapshot.now.isoformat() if snapshot.now is not None else "?"
    lines.append(
        f"virtual time: {now}; {snapshot.steps} steps, {snapshot.crashes} crashes, "
        f"{snapshot.executions} task executions"
    )
    history = snapshot.history
    if history:
        shown = history[-LAST_STEPS:]
        hidden = len(history) - len(shown)
        lines.append(
            "last steps of the history"
            + (f" ({hidden} earlier entries not shown):" if hidden else ":")
        )
        rows = [
            (f"#{step.number}" if step.number is not None else "--", str(step.name), step.time)
            for step in shown
        ]
        w_num = max(len(r[0]) for r in rows)
        w_name = max(len(r[1]) for r in rows)
        lines.extend(f"  {num:>{w_num}} {name:<{w_name}}  {time}" for num, name, time in rows)
    else:
        lines.append("history: no steps yet")
    if snapshot.blocked:
        lines.append("blocked:")
        lines.extend(f"  {who}: {what}" for who, what in snapshot.blocked.items())
    if snapshot.tree:
        lines.append("workflow tree:")
        lines.extend(f"  {line}" for line in snapshot.tree.splitlines())
    return "\n".join(lines)


def format_duration(seconds: float) -> str:
    """A compact virtual duration: ``0s``, ``1h``, ``30d 2h 5m 3s``, ``1.5s``."""
    if seconds <= 0:
        return "0s"
    whole = int(seconds)
    fraction = seconds - whole
    days, rest = divmod(whole, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "m")) if n]
    if secs or fraction:
        parts.append(f"{secs + fraction:g}s" if fraction else f"{secs}s")
    return " ".join(parts)


SUMMARY_COLUMNS = ("test", "seed", "steps", "crashes", "executions", "virtual time", "outcome")


def summary_table(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Lines of the ``--wf-summary`` table, one row per test that used ``wf_env``."""
    cells = [
        [
            str(row["nodeid"]),
            str(row["seed"]),
            str(row["steps"]),
            str(row["crashes"]),
            str(row["executions"]),
            format_duration(float(row["elapsed"])),
            str(row["outcome"]),
        ]
        for row in rows
    ]
    widths = [
        max([len(title), *(len(r[i]) for r in cells)]) for i, title in enumerate(SUMMARY_COLUMNS)
    ]
    numeric = {1, 2, 3, 4}

    def render(values: Sequence[str]) -> str:
        out = [
            value.rjust(widths[i]) if i in numeric else value.ljust(widths[i])
            for i, value in enumerate(values)
        ]
        return "  ".join(out).rstrip()

    return [render(SUMMARY_COLUMNS), *(render(r) for r in cells)]
