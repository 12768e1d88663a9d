"""With the plugin installed and active, pynenc's own shipped workflow tests still pass.

They live in site-packages (``pynenc_tests``); ``unit/workflow`` has no ``__init__.py``, so they
are passed by path, not with ``--pyargs``. They take ~10 s (real threads, real sleeps).
"""

from __future__ import annotations

from pathlib import Path

import pytest

pynenc_tests = pytest.importorskip("pynenc_tests")

SUITES = ("unit/workflow", "integration/workflow")


def test_pynencs_own_workflow_tests_pass_with_the_plugin_active(
    pytester: pytest.Pytester,
) -> None:
    root = Path(pynenc_tests.__file__).parent
    paths = [str(root / suite) for suite in SUITES]
    # An empty ini here: without it pytest would pick up this repository's pyproject.toml
    # (the common ancestor of the site-packages paths).
    pytester.makeini("[pytest]\n")
    result = pytester.runpytest_subprocess(
        *paths,
        "-c",
        str(pytester.path / "tox.ini"),
        "--rootdir",
        str(pytester.path),
        "-p",
        "pynenc_wf",
        "-p",
        "no:cacheprovider",
        "-W",
        "ignore::DeprecationWarning",
        timeout=300,
    )
    # Our report header proves the plugin was loaded in that run.
    result.stdout.fnmatch_lines(["pynenc-wf-testing: seed=per-test (derived from test id)"])
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()[-3000:]
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) >= 60 and "failed" not in outcomes and "errors" not in outcomes
