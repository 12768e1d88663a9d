"""The history document: its format name, ``History`` and ``load_history`` with validation.

A history document (format ``pynenc-wf-history``, see docs/history-format.md) holds the step
list of a run plus, per workflow, what its code needs to replay. Loading checks every field
it reads, so a hand-edited or truncated file fails here with a ``HistoryFormatError`` that
says what is wrong, not later inside a replay.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pynenc_wf_testing.errors import HistoryFormatError
from pynenc_wf_testing.runtime.history import HISTORY_FORMAT_VERSION, Step

__all__ = ["FORMAT_NAME", "History", "load_history", "shorten"]

FORMAT_NAME = "pynenc-wf-history"

#: Required fields and their JSON types (a tuple: any of them).
_WORKFLOW_FIELDS: dict[str, tuple[type, ...]] = {
    "workflow_id": (str,),
    "task": (str,),
    "arguments": (dict,),
    "status": (str,),
    "children": (list,),
    "data": (dict,),
}
_WORKFLOW_OPTIONAL: dict[str, tuple[type, ...]] = {
    "awaited": (list,),
    "result": (str, type(None)),
    "exception": (str, type(None)),
}
_CHILD_FIELDS: dict[str, tuple[type, ...]] = {
    "invocation_id": (str,),
    "task": (str,),
    "call_id": (str,),
    "arguments": (dict,),
    "status": (str,),
}
_CHILD_OPTIONAL: dict[str, tuple[type, ...]] = {
    "result": (str, type(None)),
    "exception": (str, type(None)),
    "is_workflow": (bool,),
}
_STEP_FIELDS: dict[str, tuple[type, ...]] = {
    "number": (int, type(None)),
    "kind": (str,),
    "name": (str,),
    "workflow_id": (str, type(None)),
    "invocation_id": (str, type(None)),
    "time": (str,),
}
_STEP_OPTIONAL: dict[str, tuple[type, ...]] = {
    "task": (str, type(None)),
    "detail": (dict,),
}
_JSON_NAMES = {
    str: "string", int: "integer", dict: "object", list: "list", bool: "boolean",
    type(None): "null", float: "number",
}
#: What to do about a document that is not what this version writes.
_REDO = (
    "Record or export it again (wf_env.history_json(), --wf-record or `pynenc-wf export`) "
    "rather than editing it by hand."
)


@dataclass
class History:
    """A loaded, validated history document."""

    steps: list[Step]
    workflows: list[dict[str, Any]]
    seed: int | None = None
    source: str = "<memory>"

    def workflow(self, workflow_id: str | None = None) -> dict[str, Any]:
        if not self.workflows:
            raise HistoryFormatError(
                f"{self.source}: the history holds no workflow records, so there is nothing "
                f"to replay. {_REDO}"
            )
        if workflow_id is None:
            return self.workflows[0]
        for record in self.workflows:
            if record["workflow_id"] == workflow_id:
                return record
        known = ", ".join(r["workflow_id"] for r in self.workflows)
        raise HistoryFormatError(
            f"{self.source}: no workflow {workflow_id!r} in the history (it has: {known})."
        )


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _json_type(value: Any) -> str:
    return _JSON_NAMES.get(type(value), type(value).__name__)


def _require(
    obj: Mapping[str, Any],
    fields: Mapping[str, tuple[type, ...]],
    where: str,
    source: str,
    optional: Mapping[str, tuple[type, ...]] | None = None,
) -> None:
    for name in fields:
        if name not in obj:
            raise HistoryFormatError(f"{source}: {where} lacks the field {name!r}. {_REDO}")
    for name, kinds in {**fields, **(optional or {})}.items():
        if name not in obj:
            continue
        value = obj[name]
        # bool is an int to Python, not to JSON: a step number of true is wrong.
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            expected = " or ".join(_JSON_NAMES.get(k, k.__name__) for k in kinds)
            raise HistoryFormatError(
                f"{source}: {where}.{name} should be {_article(expected)} {expected}, got "
                f"{_json_type(value)} "
                f"({shorten(json.dumps(value, default=repr), 60)}). {_REDO}"
            )


def _require_strings(mapping: Mapping[str, Any], where: str, source: str) -> None:
    """Arguments and workflow data hold the app serializer's strings."""
    for key, value in mapping.items():
        if not isinstance(value, str):
            raise HistoryFormatError(
                f"{source}: {where}[{key!r}] should be a string (a serialized payload), got "
                f"{_json_type(value)}. {_REDO}"
            )


def _read_text(path: str) -> str:
    if os.path.isdir(path):
        raise HistoryFormatError(
            f"{path} is a directory, not a history file: pass one of the .json files in it "
            "(or the directory to --wf-replay, which replays all of them)."
        )
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except UnicodeDecodeError as error:
        raise HistoryFormatError(
            f"{path}: not a UTF-8 text file (byte {error.start}: {error.reason}); a history "
            f"is JSON text. Check that you passed the right file. {_REDO}"
        ) from None
    except OSError as error:
        raise HistoryFormatError(
            f"cannot read history file {path}: {error.strerror or error}. Check the path."
        ) from None


def _parse(text: str, label: str) -> Any:
    if not text.strip():
        raise HistoryFormatError(
            f"{label}: the file is empty (an interrupted write?). {_REDO}"
        )
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        # An unterminated string runs to the end of the text: cut short, like an error at
        # the very end.
        cut = error.pos >= len(text.rstrip()) or error.msg.startswith("Unterminated string")
        raise HistoryFormatError(
            f"{label}: not valid JSON ({error.msg} at line {error.lineno} column "
            f"{error.colno})"
            + ("; the document ends early: the file looks truncated" if cut else "")
            + f". {_REDO}"
        ) from None
    except RecursionError:
        raise HistoryFormatError(f"{label}: JSON nested too deeply to be a history. {_REDO}") from None


def load_history(source: str | os.PathLike[str] | Mapping[str, Any]) -> History:
    """Load and validate a history (a path, a JSON string or an already-parsed dict).

    Anything that is not a well-formed ``pynenc-wf-history`` document of a supported version
    raises ``HistoryFormatError`` saying what is wrong and what to do."""
    label = "<dict>"
    if isinstance(source, Mapping):
        doc: Any = dict(source)
    elif isinstance(source, (str, os.PathLike)):
        text = os.fspath(source)
        if not isinstance(text, str):
            text = os.fsdecode(text)
        if not text.strip():
            raise HistoryFormatError(
                "load_history() got an empty string: pass the path of a history file, its "
                "JSON text or the parsed dict."
            )
        if isinstance(source, os.PathLike) or not text.lstrip().startswith("{"):
            label = text
            text = _read_text(text)
        else:
            label = "<json>"
        doc = _parse(text, label)
    else:
        raise HistoryFormatError(
            f"load_history() expects a path, JSON text or a dict, got {type(source).__name__}."
        )
    if not isinstance(doc, dict) or doc.get("format") != FORMAT_NAME:
        raise HistoryFormatError(
            f"{label}: not a pynenc-wf history (expected \"format\": \"{FORMAT_NAME}\"). "
            "Produce one with wf_env.history_json(), --wf-record or `pynenc-wf export`."
        )
    version = doc.get("version")
    if version != HISTORY_FORMAT_VERSION or isinstance(version, bool):
        raise HistoryFormatError(
            f"{label}: history format version {version!r} is not supported (this "
            f"pynenc-wf-testing reads version {HISTORY_FORMAT_VERSION}). Replay it with the "
            "pynenc-wf-testing release that wrote it, or record it again with this one."
        )
    steps_raw = doc.get("steps", [])
    if not isinstance(steps_raw, list):
        raise HistoryFormatError(
            f"{label}: 'steps' should be a list, got {_json_type(steps_raw)}. {_REDO}"
        )
    steps: list[Step] = []
    for index, raw in enumerate(steps_raw):
        where = f"steps[{index}]"
        if not isinstance(raw, dict):
            raise HistoryFormatError(
                f"{label}: {where} is malformed: it should be an object, got "
                f"{_json_type(raw)}. {_REDO}"
            )
        unknown = sorted(set(raw) - set(_STEP_FIELDS) - set(_STEP_OPTIONAL))
        if unknown:
            raise HistoryFormatError(
                f"{label}: {where} is malformed: unknown field(s) {', '.join(unknown)}. {_REDO}"
            )
        _require(raw, _STEP_FIELDS, where, label, _STEP_OPTIONAL)
        steps.append(Step(**raw))
    workflows = doc.get("workflows", [])
    if not isinstance(workflows, list):
        raise HistoryFormatError(
            f"{label}: 'workflows' should be a list, got {_json_type(workflows)}. {_REDO}"
        )
    for index, record in enumerate(workflows):
        where = f"workflows[{index}]"
        if not isinstance(record, dict):
            raise HistoryFormatError(
                f"{label}: {where} should be an object, got {_json_type(record)}. {_REDO}"
            )
        _require(record, _WORKFLOW_FIELDS, where, label, _WORKFLOW_OPTIONAL)
        if not record["workflow_id"].strip():
            raise HistoryFormatError(f"{label}: {where}.workflow_id is empty. {_REDO}")
        if "." not in record["task"]:
            raise HistoryFormatError(
                f"{label}: {where}.task should name the workflow as module.function, got "
                f"{record['task']!r}. {_REDO}"
            )
        _require_strings(record["arguments"], f"{where}.arguments", label)
        _require_strings(record["data"], f"{where}.data", label)
        for c_index, child in enumerate([*record["children"], *record.get("awaited", [])]):
            c_where = f"{where}.children[{c_index}]"
            if not isinstance(child, dict):
                raise HistoryFormatError(
                    f"{label}: {c_where} should be an object, got {_json_type(child)}. {_REDO}"
                )
            _require(child, _CHILD_FIELDS, c_where, label, _CHILD_OPTIONAL)
            _require_strings(child["arguments"], f"{c_where}.arguments", label)
    seed = doc.get("seed")
    return History(steps=steps, workflows=workflows,
                   seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
                   source=label)


def shorten(text: str | None, limit: int = 200) -> str:
    """``text`` cut to ``limit`` characters for a message (``None`` for none)."""
    text = "None" if text is None else str(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."
