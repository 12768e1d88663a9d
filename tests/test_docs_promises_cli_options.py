"""Every ``pynenc-wf`` command line the docs print uses options the command has.

Each ``pynenc-wf <command> ...`` in README.md and docs/*.md (a line, continued with ``\\``)
and each row of the option table of docs/reports.md is checked against the command's own
``--help``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pynenc_wf_testing.tools.cli import main

ROOT = Path(__file__).resolve().parent.parent
TEXT = "\n".join(p.read_text() for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])


def documented_options() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for match in re.finditer(r"pynenc-wf (simulate|report|export|replay)((?:\\\n|[^`\n])*)", TEXT):
        options = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*|-o)(?![\w-])", match.group(2)))
        found.setdefault(match.group(1), set()).update(options)
    reports = (ROOT / "docs" / "reports.md").read_text().split("| option | meaning |", 1)[1]
    table = reports.split("\n\n", 1)[0]
    found["report"].update(re.findall(r"^\| `(--[a-z-]+|-o)", table, re.M))
    # docs/faults.md's section on simulate names its options in prose too
    simulate = (ROOT / "docs" / "faults.md").read_text().split("## pynenc-wf simulate", 1)[1]
    simulate = simulate.split("\n## ", 1)[0].split("`pynenc-wf export --sqlite FILE`", 1)[0]
    found["simulate"].update(re.findall(r"`(--[a-z][a-z-]*)", simulate))
    return found


OPTIONS = documented_options()


def test_the_docs_use_every_command() -> None:
    assert set(OPTIONS) == {"simulate", "report", "export", "replay"}
    assert {"--sqlite", "--redis", "--history", "--app", "--app-id", "--title", "-o"} <= OPTIONS["report"]
    assert {"--args", "--runs", "--concurrency", "--faults", "--max-crashes", "--examples",
            "--json", "--log-level", "--seed"} <= OPTIONS["simulate"]


@pytest.mark.parametrize("command", sorted(OPTIONS))
def test_each_documented_option_is_one_of_the_command(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        code = main([command, "--help"])
    except SystemExit as exited:  # argparse's --help exits
        code = exited.code  # type: ignore[assignment]
    assert code == 0
    shown = capsys.readouterr().out
    missing = sorted(opt for opt in OPTIONS[command] if not re.search(rf"(?<![\w-]){opt}(?![\w-])", shown))
    assert not missing, f"the docs run pynenc-wf {command} with {missing}, which its --help does not list"
