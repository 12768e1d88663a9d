"""Every "how to reproduce" benchmark command the docs print still runs as written.

A figure may be stale (the machine is shared; the benchmarks themselves are the measure), but
the command that reproduces it must exist and accept the options the docs give it: each
``benchmarks/NAME.py`` the docs name exists, and each option the docs write beside it is one
its ``--help`` lists. (Running them takes minutes; ``make bench`` and the smoke tests in
tests/test_benchmarks_smoke.py run them.)
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TEXT = "\n".join(p.read_text() for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])

#: Options the docs describe in prose rather than beside the command.
PROSE_OPTIONS = {"run": {"--thread-workflows", "--thread-steps", "--thread-rounds"}}


def documented_commands() -> dict[str, set[str]]:
    """script name -> the options the docs write right after it (a line break allowed)."""
    found: dict[str, set[str]] = {}
    command = r"benchmarks/(\w+)\.py((?:\s+\[?--?[\w-]+(?:\s+[^\s\[`#-][^\s\]`#]*)*\]?)*)"
    for match in re.finditer(command, TEXT):
        options = set(re.findall(r"--[a-z][\w-]*", match.group(2)))
        found.setdefault(match.group(1), set()).update(options)
    for name, options in PROSE_OPTIONS.items():
        found.setdefault(name, set()).update(options)
    return found


COMMANDS = documented_commands()


def test_the_docs_name_the_benchmarks() -> None:
    assert {"run", "scale", "pool", "cron_month", "many_envs", "suspended_waits"} <= set(COMMANDS)
    assert {"--sizes", "--tracemalloc", "--no-calibrate"} <= COMMANDS["scale"]
    assert {"--workflows", "--wake", "--redis-url"} <= COMMANDS["suspended_waits"]


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_documented_benchmark_exists_and_takes_its_documented_options(name: str) -> None:
    script = ROOT / "benchmarks" / f"{name}.py"
    assert script.is_file(), f"the docs name benchmarks/{name}.py, which does not exist"
    if "argparse" not in script.read_text():
        assert not COMMANDS[name], f"the docs give benchmarks/{name}.py options it does not parse"
        return  # no options: `--help` would run the benchmark itself
    shown = subprocess.run(
        [sys.executable, str(script), "--help"], cwd=ROOT, capture_output=True, text=True,
        timeout=120, check=False,
    )
    assert shown.returncode == 0, shown.stderr
    missing = sorted(opt for opt in COMMANDS[name] if opt not in shown.stdout)
    assert not missing, f"the docs run benchmarks/{name}.py with {missing}, which --help does not list"
