"""Quiet by default: the plugin hides pynenc's jsonpickle deprecation warning in users' runs,
and nothing else (inner pytest runs through ``pytester``)."""

from __future__ import annotations

import re
import warnings

import pytest
import pytest_pynenc_wf
from pynenc.serializer.json_pickle_serializer import JsonPickleSerializer

MESSAGE = "keys will default to True in jsonpickle"

USER_TESTS = """
import warnings

import jsonpickle
from pynenc.serializer.json_pickle_serializer import JsonPickleSerializer


def test_pynenc_serializes():
    text = JsonPickleSerializer.serialize({"order": "o-1", "items": [1, 2]})
    assert JsonPickleSerializer.deserialize(text) == {"order": "o-1", "items": [1, 2]}


def test_own_deprecation():
    warnings.warn("my_api() is deprecated, use my_api2()", DeprecationWarning)


def test_own_jsonpickle_call():
    assert jsonpickle.loads(jsonpickle.dumps([1])) == [1]
"""


def test_pynenc_still_warns_without_the_filter() -> None:
    """The premise: pynenc's serializer does warn (else the filter tests prove nothing)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        JsonPickleSerializer.serialize({"a": 1})
    origins = {(str(w.message), w.filename) for w in caught}
    assert any(
        m.startswith(MESSAGE) and f.endswith("json_pickle_serializer.py") for m, f in origins
    ), origins


def test_pynenc_warning_hidden_user_warnings_shown(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest("-p", "no:cacheprovider", "-k", "serializes or own_deprecation")
    result.assert_outcomes(passed=2)
    out = result.stdout.str()
    assert MESSAGE not in out
    assert "my_api() is deprecated, use my_api2()" in out
    assert "1 warning" in out


def test_a_users_own_jsonpickle_call_still_warns(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest("-p", "no:cacheprovider", "-k", "own_jsonpickle_call")
    result.assert_outcomes(passed=1)
    assert MESSAGE in result.stdout.str()


def test_the_filter_wins_over_a_users_blanket_error(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nfilterwarnings =\n    error\n")
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest("-p", "no:cacheprovider")
    # pynenc's warning is ignored; the user's own warnings still become errors, as they asked
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["*test_own_deprecation*", "*test_own_jsonpickle_call*"])


def test_the_filter_names_the_message_and_pynenc_module_only() -> None:
    from _pytest.config import parse_warning_filter

    action, message, category, module, _ = parse_warning_filter(
        pytest_pynenc_wf.PYNENC_JSONPICKLE_FILTER, escape=False
    )
    assert (action, message, category) == ("ignore", MESSAGE, DeprecationWarning)
    assert re.match(module, "pynenc.serializer.json_pickle_serializer")
    assert not re.match(module, "myshop.tasks")
