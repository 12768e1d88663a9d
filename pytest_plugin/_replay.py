"""``--wf-replay=DIR``: every recorded workflow history in DIR becomes a test item.

Imported only when the option is given. Each item replays one workflow with
:class:`pynenc_wf_testing.Replayer` against the code under test and fails with the
``NondeterminismError`` naming the first divergent step.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from typing import Any

import pytest


class ReplayError(Exception):
    """A recorded history does not replay against the current code."""


def _task_app(task_key: str) -> Any:
    module_name, _, func_name = task_key.rpartition(".")
    module = importlib.import_module(module_name)
    task = getattr(module, func_name, None)
    app = getattr(task, "app", None)
    if app is None:
        raise ReplayError(
            f"{task_key} is not a pynenc task of an importable module: the workflow was "
            "renamed or removed (its recorded runs cannot replay)."
        )
    return app


class ReplayItem(pytest.Item):
    """Replays one workflow of one recorded history file."""

    def __init__(self, *, path_str: str, workflow_id: str, task_key: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.path_str = path_str
        self.workflow_id = workflow_id
        self.task_key = task_key

    def runtest(self) -> None:
        from pynenc_wf_testing.checks.replay import Replayer, load_history

        from ._isolation import RegistrySnapshot

        registries = RegistrySnapshot()
        try:
            history = load_history(self.path_str)
            app = _task_app(self.task_key)
            Replayer(app, seed=history.seed or 0).replay(history, workflow_id=self.workflow_id)
        finally:
            registries.restore()

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        from pynenc_wf_testing.errors import HistoryFormatError, NondeterminismError

        if isinstance(excinfo.value, (NondeterminismError, HistoryFormatError, ReplayError)):
            return (
                f"{type(excinfo.value).__name__}: {excinfo.value}\n"
                f"history: {self.path_str} (workflow {self.workflow_id})"
            )
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[str, int, str]:
        return self.path_str, 0, f"replay {self.task_key} [{self.workflow_id[:8]}]"


class ReplayPlugin:
    """Adds a ReplayItem per workflow of every ``*.json`` history in the replay directory."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def _files(self) -> Iterator[str]:
        if not os.path.isdir(self.directory):
            raise pytest.UsageError(
                f"--wf-replay={self.directory}: no such directory. Record histories first with "
                "--wf-record=DIR."
            )
        for name in sorted(os.listdir(self.directory)):
            if name.endswith(".json"):
                yield os.path.join(self.directory, name)

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        import json

        for path in self._files():
            name = os.path.basename(path)
            try:
                with open(path, encoding="utf-8") as handle:
                    doc = json.load(handle)
                workflows = doc.get("workflows", [])
            except (OSError, ValueError, AttributeError):
                workflows = [{"workflow_id": "?", "task": "?"}]  # the item reports the error
            for record in workflows:
                workflow_id = str(record.get("workflow_id", "?"))
                task_key = str(record.get("task", "?"))
                items.append(
                    ReplayItem.from_parent(
                        session,
                        name=f"replay[{name}::{task_key.rsplit('.', 1)[-1]}:{workflow_id[:8]}]",
                        path_str=path,
                        workflow_id=workflow_id,
                        task_key=task_key,
                    )
                )
