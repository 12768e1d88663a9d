"""Bad history files, shared by the load_history, CLI and --wf-replay tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: What every structural complaint tells the user to do.
REDO = "Record or export it again"


def _doc(good: str, mutate: Callable[[dict[str, Any]], object]) -> str:
    doc = json.loads(good)
    mutate(doc)
    return json.dumps(doc)


def _set_step_number(doc: dict[str, Any]) -> None:
    doc["steps"][0]["number"] = "1"


def _child_as_text(doc: dict[str, Any]) -> None:
    doc["workflows"][0]["children"][0] = "reserve"


def _argument_not_serialized(doc: dict[str, Any]) -> None:
    doc["workflows"][0]["arguments"]["order"] = 7


def bad_files(directory: Path, good: str) -> dict[str, tuple[Path, str]]:
    """Write one bad history file per case into ``directory``: case -> (path, a fragment of
    the HistoryFormatError message)."""
    texts: dict[str, tuple[str | bytes, str]] = {
        "truncated": (good[: len(good) // 2], "not valid JSON"),
        "truncated_says_so": (good[: len(good) // 2], "the file looks truncated"),
        "malformed": ('{"format": "pynenc-wf-history", version: 1}', "not valid JSON"),
        "not_a_history": ("[1, 2, 3]", 'not a pynenc-wf history (expected "format"'),
        "workflows_not_a_list": (
            _doc(good, lambda d: d.update(workflows={})),
            "'workflows' should be a list, got object",
        ),
        "step_number_type": (
            _doc(good, _set_step_number),
            "steps[0].number should be an integer or null, got string",
        ),
        "child_not_an_object": (
            _doc(good, _child_as_text),
            "workflows[0].children[0] should be an object, got string",
        ),
        "argument_not_serialized": (
            _doc(good, _argument_not_serialized),
            "workflows[0].arguments['order'] should be a string (a serialized payload), got "
            "integer",
        ),
        "unknown_version": (
            _doc(good, lambda d: d.update(version=7)),
            "history format version 7 is not supported",
        ),
        "missing_workflow_id": (
            _doc(good, lambda d: d["workflows"][0].pop("workflow_id")),
            "workflows[0] lacks the field 'workflow_id'",
        ),
        "empty_workflow_id": (
            _doc(good, lambda d: d["workflows"][0].update(workflow_id="")),
            "workflows[0].workflow_id is empty",
        ),
        "empty": ("", "the file is empty"),
        "blank": ("  \n", "the file is empty"),
        "not_utf8": (b'{"format": "pynenc-wf-history", "x": "\xff\xfe"}', "not a UTF-8 text file"),
    }
    files: dict[str, tuple[Path, str]] = {}
    for case, (text, fragment) in texts.items():
        path = directory / f"{case}.json"
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        files[case] = (path, fragment)
    folder = directory / "a_directory.json"
    folder.mkdir()
    files["directory"] = (folder, "is a directory, not a history file")
    return files
