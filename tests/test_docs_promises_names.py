"""The docs name only what exists, and every public name is in the docs.

- Every name in ``__all__`` of the user-facing modules (the package, ``engine``, ``errors``,
  and every module the docs name by its dotted path) is written in README.md or docs/*.md.
- Every dotted ``pynenc_wf_testing....`` path the docs write resolves, and every class-like
  name in backticks exists (in this package, its plugin, pynenc or the builtins).
- The member table of README's "``WorkflowEnv`` / ``wf_env``" matches the signatures: each
  member exists, each parameter it shows is a parameter, each default it shows is the default.
"""

from __future__ import annotations

import ast
import builtins
import datetime as dt
import importlib
import inspect
import pkgutil
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pynenc
import pytest

import pynenc_wf_testing
import pytest_plugin
from pynenc_wf_testing import WorkflowEnv

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TEXT = "\n".join(path.read_text() for path in DOCS)
README = (ROOT / "README.md").read_text()

#: Modules the docs name by dotted path while saying they are internal (not a user's API).
NAMED_AS_INTERNAL = {"pynenc_wf_testing.runtime.faults"}


def _dotted_paths() -> list[str]:
    return sorted(set(re.findall(r"\bpynenc_wf_testing(?:\.[A-Za-z_]\w*)*", TEXT)))


def _module_of(path: str) -> tuple[ModuleType, list[str]]:
    """The longest importable prefix of ``path`` and the attribute names after it."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            return importlib.import_module(".".join(parts[:cut])), parts[cut:]
        except ModuleNotFoundError:
            continue
    raise AssertionError(f"nothing of {path!r} imports")


def user_facing_modules() -> list[str]:
    named = {_module_of(path)[0].__name__ for path in _dotted_paths()}
    named |= {"pynenc_wf_testing", "pynenc_wf_testing.engine", "pynenc_wf_testing.errors"}
    return sorted(named - NAMED_AS_INTERNAL)


def documented(name: str) -> bool:
    return re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", TEXT) is not None


@pytest.mark.parametrize("module_name", user_facing_modules())
def test_every_public_name_of_a_user_facing_module_is_documented(module_name: str) -> None:
    module = importlib.import_module(module_name)
    names = list(getattr(module, "__all__", ()))
    missing = [name for name in names if not documented(name)]
    assert not missing, (
        f"{module_name}.__all__ has names README.md and docs/ never mention: {missing}; "
        "document them (or take them out of __all__)"
    )


def test_the_user_facing_modules_include_the_documented_packages() -> None:
    modules = user_facing_modules()
    for name in ("pynenc_wf_testing", "pynenc_wf_testing.engine", "pynenc_wf_testing.errors",
                 "pynenc_wf_testing.checks.strategies", "pynenc_wf_testing.env.report_sources"):
        assert name in modules
    assert len(pynenc_wf_testing.__all__) >= 40


@pytest.mark.parametrize("path", _dotted_paths())
def test_every_dotted_path_in_the_docs_resolves(path: str) -> None:
    obj: Any
    obj, rest = _module_of(path)
    for part in rest:
        assert hasattr(obj, part), f"the docs name {path!r}, but {obj!r} has no {part!r}"
        obj = getattr(obj, part)


def _known_names() -> set[str]:
    known = set(dir(builtins)) | set(vars(pytest_plugin))
    for package in (pynenc_wf_testing, pynenc):
        known |= set(vars(package))
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            try:
                module = importlib.import_module(info.name)
            except ImportError:  # an optional extra of pynenc's that is not installed
                continue
            known |= set(vars(module))
            for value in vars(module).values():
                if inspect.isclass(value):
                    known |= set(vars(value))
    return known


#: Class-like names the docs write that belong to other libraries or to a user's code.
FOREIGN = {
    "BytesIO", "FakeDatetime", "FakeRedisConnection", "FakeSocket", "GreenletExit",
    "PyThreadState_SetAsyncExc", "TransientPaymentError", "EncryptedSerializer_",
}


def test_every_class_like_name_in_backticks_exists() -> None:
    names: set[str] = set()
    for span in re.findall(r"`([^`\n]+)`", TEXT):
        names |= set(
            re.findall(r"(?<![\w.])([A-Z][a-z]+[A-Z]\w*|[A-Z][a-z]+(?:Error|Exception|Warning))\b", span)
        )
    unknown = sorted(names - _known_names() - FOREIGN)
    assert not unknown, f"the docs name classes that do not exist: {unknown}"


# --------------------------------------------------------------------------- the member table


def _member_table() -> list[str]:
    section = README.split("## `WorkflowEnv` / `wf_env`", 1)[1].split("\n\n", 2)[1]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    assert len(rows) >= 25, "README's WorkflowEnv member table was not found"
    return [row.split(" | ", 1)[0] for row in rows]


def _split_params(text: str) -> list[str]:
    params, depth, current = [], 0, ""
    for char in text:
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        if char == "," and depth == 0:
            params.append(current.strip())
            current = ""
        else:
            current += char
    if current.strip():
        params.append(current.strip())
    return params


def _default(text: str) -> Any:
    """A documented default as a value; Ellipsis where the docs show none or a placeholder."""
    if not text or "..." in text:
        return ...
    tree = ast.parse(text, mode="eval")
    from pynenc_wf_testing.engine import ParentClosePolicy

    names = {"timedelta": dt.timedelta, "ParentClosePolicy": ParentClosePolicy}
    return eval(compile(tree, "the docs", "eval"), names)  # a literal the docs show


def _check_call(owner: Any, span: str, where: str) -> None:
    """``span`` (``name(params) -> type`` as a doc writes it) against ``owner.name``."""
    match = re.fullmatch(r"(?:\w*\.)?(\w+)(?:\((.*)\))?(?:\s*->\s*[\w\[\]]+)?", span)
    assert match, f"{where}: cannot read {span!r}"
    member, params = match.group(1), match.group(2)
    target = owner if getattr(owner, "__name__", None) == member else getattr(owner, member, None)
    assert target is not None, f"{where} documents {member}, which {owner!r} does not have"
    if params is None or not callable(target):
        return
    signature = inspect.signature(target)
    for param in _split_params(params):
        if param in ("*", "...") or param.startswith("*"):
            continue
        name, _, default = param.partition("=")
        name = name.strip()
        assert name in signature.parameters, f"{where}: {span} shows {name!r}; the signature is {signature}"
        expected = _default(default.strip())
        actual = signature.parameters[name].default
        if expected is not ... and default:
            assert actual == expected, f"{where}: {member}'s {name} defaults to {actual!r}, not {expected!r}"


@pytest.mark.parametrize("span", [span for cell in _member_table() for span in re.findall(r"`([^`]+)`", cell)])
def test_readme_member_table_matches_the_signatures(span: str) -> None:
    _check_call(WorkflowEnv, span, "README's WorkflowEnv table")


def _engine_names_row(label: str) -> list[str]:
    text = (ROOT / "docs" / "engine.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith(f"| {label} |"))
    return re.findall(r"`([^`]+\))`", row.split(" | ", 1)[1])  # the calls of the row


def _engine_rows() -> list[tuple[str, Any, str]]:
    from pynenc_wf_testing import engine
    from pynenc_wf_testing.engine._context import DurableRootOps, DurableWorkflowContext

    rows = [
        ("function", engine), ("client (`pynenc_wf_testing.engine`)", engine),
        ("`task.wf.root` (workflow code)", DurableRootOps), ("`task.wf` (any member task)", DurableWorkflowContext),
        ("simulator (`wf_env`)", WorkflowEnv),
    ]
    calls = [(label, owner, span) for label, owner in rows for span in _engine_names_row(label)]
    keyring = _engine_names_row("encryption (docs/security.md)")
    calls += [("encryption", engine.Keyring, span) for span in keyring if not span.startswith("payload_key_id")]
    calls += [("encryption", engine, span) for span in keyring if span.startswith("payload_key_id")]
    return calls


@pytest.mark.parametrize(("label", "owner", "span"), _engine_rows())
def test_docs_engine_md_names_table_matches_the_signatures(label: str, owner: Any, span: str) -> None:
    _check_call(owner, span, f"docs/engine.md names table, row {label}")


# --------------------------------------------------------------------------- the plugin's table


def _plugin_table() -> list[list[str]]:
    section = README.split("## pytest plugin", 1)[1]
    rows = [line for line in section.splitlines() if line.startswith("| ")][1:]  # no header
    assert len(rows) >= 15, "README's plugin option table was not found"
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]


def test_readme_plugin_table_is_exactly_the_plugins_options_ini_values_and_marker_keys() -> None:
    """Each option, ini value and marker key of the table exists, and each one exists in it."""
    from pytest_plugin import _marker, _options

    rows = _plugin_table()
    options = {m for row in rows for m in re.findall(r"`(--wf-[a-z-]+)", row[0])}
    inis = {m for row in rows for m in re.findall(r"`(wf_[a-z_]+)`", row[1])}
    markers = {m for row in rows for m in re.findall(r"`(\w+)=`", row[2])}
    real_options = {v for k, v in vars(_options).items() if k.startswith("OPT_")}
    real_inis = {v for k, v in vars(_options).items() if k.startswith("INI_")}
    assert options == real_options, (sorted(options - real_options), sorted(real_options - options))
    assert inis == real_inis, (sorted(inis - real_inis), sorted(real_inis - inis))
    assert markers == set(_marker.MARKER_KWARGS), (
        sorted(markers - set(_marker.MARKER_KWARGS)), sorted(set(_marker.MARKER_KWARGS) - markers)
    )


def _faults_vocabulary() -> list[tuple[Any, str]]:
    from pynenc_wf_testing.checks import strategies

    text = (ROOT / "docs" / "faults.md").read_text().split("## The vocabulary", 1)[1]
    calls = []
    for line in text.split("\n\n", 2)[1].splitlines()[2:]:
        owner = strategies if "checks.strategies" in line.rsplit("|", 2)[1] else pynenc_wf_testing
        if "internal" in line:
            continue
        calls += [(owner, span) for span in re.findall(r"`(\w+\([^`]*\))`", line.split(" | ", 1)[0])]
    assert len(calls) >= 10, "docs/faults.md's vocabulary table was not found"
    return calls


@pytest.mark.parametrize(("owner", "span"), _faults_vocabulary())
def test_docs_faults_md_vocabulary_matches_the_signatures(owner: Any, span: str) -> None:
    if span.endswith("(...)"):
        assert hasattr(owner, span[:-5]), span
        return
    _check_call(owner, span, "docs/faults.md vocabulary")


def test_the_ledger_outcomes_are_the_documented_ones() -> None:
    """docs/faults.md, "The ledger and idempotency": every outcome the simulator writes."""
    text = (ROOT / "docs" / "faults.md").read_text()
    documented = re.search(r"outcome \((.*?)\) and whether the", text, re.S)
    assert documented
    names = set(re.findall(r"`([a-z]+)`", documented.group(1)))
    source = "".join(p.read_text() for p in (ROOT / "pynenc_wf_testing" / "runtime").glob("*.py"))
    written = set(re.findall(r"(?:ledger\.finish|_finish_execution)\([^,]+, \"(\w+)\"\)", source))
    written |= set(re.findall(r'execution\.outcome = "(\w+)"', source))
    written |= {"running", "success", "failed"}  # the default, and the final result statuses
    assert len(written) >= 9
    assert names == written, (sorted(written - names), sorted(names - written))


def test_docs_architecture_md_names_every_monkeypatch_module() -> None:
    """"one module per thing patched": the list in docs/architecture.md is the real one."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    listed = re.search(r"one module per thing patched: ([^)]*)\)", text)
    assert listed
    names = set(re.findall(r"`(\w+)`", listed.group(1)))
    folder = ROOT / "pynenc_wf_testing" / "runtime" / "monkeypatches"
    patches = {p.stem for p in folder.glob("*.py")} - {"__init__", "registry", "compat", "process"}
    assert names == patches, (sorted(patches - names), sorted(names - patches))


#: File names the docs use as examples of a user's files, not as files of this repository.
EXAMPLE_FILES = {
    "h.json", "prod.db", "prod.json", "queue_worker.py", "shop.db", "billing.db", "other.db",
    "tests/test_orders.py", "tests/test_x.py", "tool.py", "tasks.sh", "run.db", "run-2.db",
    "store-1.db", "store-2.db", "wf-runs/store-1.db", "histories/checkout.json",
    "invoices.json",
}
_SEARCHED = ("", "pynenc_wf_testing/", "pynenc_wf_testing/runtime/", "pynenc_wf_testing/engine/",
             "pynenc_wf_testing/env/", "pynenc_wf_testing/checks/", "pynenc_wf_testing/tools/",
             "pynenc_wf_testing/runtime/monkeypatches/", "pynenc_wf_testing/runtime/fast_memory/",
             "pytest_plugin/", "tests/", "tests/production/", "benchmarks/")


def test_every_file_the_docs_name_exists() -> None:
    """A path in the docs (`tests/production/test_suspension.py`, `engine/schema.py`,
    `compat.py`) is a file of the repository, found from the root or a package folder."""
    pattern = r"(?<![\w/.-])((?:[\w.-]+/)*[\w-]+\.(?:py|md|toml|json|sh|db|yml|yaml))(?:::\w+)?"
    missing = sorted(
        {name for name in re.findall(pattern, TEXT)}
        - EXAMPLE_FILES
        - {name for name in re.findall(pattern, TEXT) if any((ROOT / d / name).exists() for d in _SEARCHED)}
    )
    assert not missing, f"the docs name files that do not exist: {missing}"


def test_docs_faults_md_event_types_match_the_signatures() -> None:
    """docs/faults.md, "Interleavings": the event table and the schedule of several events."""
    from pynenc_wf_testing.checks import strategies

    text = (ROOT / "docs" / "faults.md").read_text().split("## Interleavings", 1)[1]
    table = text.split("| event | delivered as |", 1)[1].split("\n\n", 1)[0]
    calls = [row.split("`")[1] for row in table.splitlines()[2:]]
    assert [c.split("(")[0] for c in calls] == ["Signal", "Cancel", "Resume", "Advance"]
    for call in calls:
        _check_call(pynenc_wf_testing, call, "docs/faults.md event table")
    _check_call(pynenc_wf_testing, "ScheduledEvent(step, event, name=None, occurrence=1)", "faults.md")
    assert "ScheduledEvent(step, event,\nname=None, occurrence=1)" in text
    _check_call(pynenc_wf_testing, "EventSchedule(events=())", "faults.md")
    assert hasattr(strategies, "event_schedules")


def test_readme_supported_releases_are_the_checked_ones() -> None:
    """README, "Supported releases": the ranges compat.py checks (and pyproject pins)."""
    from pynenc_wf_testing.runtime.monkeypatches.compat import SUPPORTED

    paragraph = README.split("Supported releases of the libraries", 1)[1].split("\n\n", 1)[0]
    for name, supported in SUPPORTED.items():
        assert f"{name} `{supported.spec}`" in paragraph, (name, supported.spec)


def _members(cls: type) -> set[str]:
    names = set(dir(cls))
    for base in cls.__mro__:
        names |= set(getattr(base, "__annotations__", {}))
    return names


def test_readme_report_shapes_have_the_members_it_lists() -> None:
    """README, "Crash checks" (the shared ``CheckReport`` shape) and "Interleaving checks"
    (``InterleavingReport`` and ``InterleavingOutcome``)."""
    from pynenc_wf_testing import CrashReport, InterleavingOutcome, InterleavingReport

    shape = README.split("`pynenc_wf_testing.checks.report.CheckReport`:", 1)[1].split("Hypothesis", 1)[0]
    listed = {name.split("(")[0] for name in re.findall(r"`([\w(=, )]+)`", shape)}
    assert len(listed) >= 12
    for cls in (CrashReport, InterleavingReport):
        assert listed <= _members(cls), (cls.__name__, sorted(listed - _members(cls)))
    passage = README.split("`InterleavingReport`: `ok`", 1)[1].split("Bad inputs", 1)[0]
    outcome = passage.split("(`InterleavingOutcome`:", 1)[1].split("), `violations`", 1)[0]
    outcome_fields = set(re.findall(r"`(\w+)`", outcome))
    assert outcome_fields == {"schedule", "violations", "outcome", "delivered"}
    assert outcome_fields <= _members(InterleavingOutcome)
    report_members = {n.split("(")[0] for n in re.findall(r"`(\w+(?:\(\))?)`", passage)} - outcome_fields
    report_members -= {"InterleavingOutcome", "InterleavingError", "AssertionError"}
    assert report_members <= _members(InterleavingReport), sorted(report_members - _members(InterleavingReport))
