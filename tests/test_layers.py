"""The import contracts of pyproject.toml ([tool.importlinter], docs/architecture.md): they pass
on the real tree, and a wrong import, at module level, inside a function or under
``TYPE_CHECKING``, breaks them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import import_cycles

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
LAYERS = "Layers"
ENGINE_ALONE = "The engine imports nothing else of ours"


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "lint-imports"
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "importlinter.cli"]
    env = {**os.environ, "PYTHONPATH": str(cwd), "COLUMNS": "200"}
    return subprocess.run(
        [*command, "--no-cache", "--config", str(PYPROJECT)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_contracts_pass_on_the_tree() -> None:
    done = _lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{LAYERS} KEPT" in done.stdout
    assert f"{ENGINE_ALONE} KEPT" in done.stdout


def test_every_ignored_import_names_the_branch_that_removes_it() -> None:
    lines = PYPROJECT.read_text().splitlines()
    for i, line in enumerate(lines):
        if re.fullmatch(r'\s*"[\w.]+ -> [\w.]+",', line):
            assert re.search(r"# TODO\(layers\): removed by the \w+ branch", lines[i - 1]), line


def _copy_tree(dest: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "pynenc_wf_testing", dest / "pynenc_wf_testing", ignore=ignore)
    shutil.copytree(ROOT / "pytest_plugin", dest / "pytest_pynenc_wf", ignore=ignore)


_MODULE_LEVEL = "\nimport {module}\n"
_FUNCTION_LEVEL = "\n\ndef _wrong() -> None:\n    import {module}\n"
_TYPE_CHECKING = "\nfrom typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    import {module}\n"


# (importer file, imported module, how the import is written). One copy of the tree per case,
# with all of its wrong imports at once: one lint-imports run per case keeps the test fast.
_ENGINE_REACHES_UP = [
    ("engine/retry.py", "pynenc_wf_testing.runtime.clock", "module"),
    ("engine/saga.py", "pynenc_wf_testing.checks.faults", "function"),
    ("engine/exceptions.py", "pynenc_wf_testing.env", "type_checking"),
]
_A_LAYER_REACHES_UP = [
    ("runtime/clock.py", "pynenc_wf_testing.checks.faults", "function"),
    ("checks/idempotency.py", "pytest_pynenc_wf", "type_checking"),
    ("errors.py", "pynenc_wf_testing.runtime.clock", "module"),
]


@pytest.mark.parametrize(
    ("wrong_imports", "broken"),
    [(_ENGINE_REACHES_UP, {LAYERS, ENGINE_ALONE}), (_A_LAYER_REACHES_UP, {LAYERS})],
    ids=["engine-reaches-up", "a-layer-reaches-up"],
)
def test_a_wrong_import_breaks_the_contract(
    tmp_path: Path, wrong_imports: list[tuple[str, str, str]], broken: set[str]
) -> None:
    _copy_tree(tmp_path)
    for importer, imported, form in wrong_imports:
        path = tmp_path / "pynenc_wf_testing" / importer
        template = {"module": _MODULE_LEVEL, "function": _FUNCTION_LEVEL}.get(form, _TYPE_CHECKING)
        path.write_text(path.read_text() + template.format(module=imported))
    done = _lint_imports(tmp_path)
    assert done.returncode != 0
    out = " ".join(done.stdout.split())
    for importer, imported, _form in wrong_imports:
        module = "pynenc_wf_testing." + importer.removesuffix(".py").replace("/", ".")
        assert f"{module} -> {imported}" in out, done.stdout
    for name in (LAYERS, ENGINE_ALONE):
        state = "BROKEN" if name in broken else "KEPT"
        assert f"{name} {state}" in out, done.stdout


def test_the_cycle_counter_reports_a_count(capsys: pytest.CaptureFixture[str]) -> None:
    assert import_cycles.main([]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    match = re.fullmatch(
        r"(\d+) of (\d+) modules of pynenc_wf_testing sit in an import cycle", first
    )
    assert match is not None, first
    assert int(match[1]) <= int(match[2])
    assert import_cycles.main(["--max", str(int(match[2]))]) == 0
    if int(match[1]):
        assert import_cycles.main(["--max", str(int(match[1]) - 1)]) == 1


def test_no_module_sits_in_an_import_cycle(capsys: pytest.CaptureFixture[str]) -> None:
    # `make lint` runs the counter with --max 0: keep the tree at zero.
    assert import_cycles.main(["--max", "0"]) == 0, capsys.readouterr().out
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("0 of "), first


def test_a_cycle_inside_a_layer_fails_the_counter(tmp_path: Path) -> None:
    # The contracts allow imports inside one layer; the counter (`make lint`, --max 0) does not
    # allow them to loop: components.py naming Simulation again closes the runtime's old cycle.
    _copy_tree(tmp_path)
    path = tmp_path / "pynenc_wf_testing" / "runtime" / "components.py"
    path.write_text(
        path.read_text() + _TYPE_CHECKING.format(module="pynenc_wf_testing.runtime.simulation")
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "import_cycles.py"), "--max", "0"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "pynenc_wf_testing.runtime.components -> pynenc_wf_testing.runtime.simulation" in (
        done.stdout
    )
