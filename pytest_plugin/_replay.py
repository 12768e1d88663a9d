"""``--wf-replay=PATH``: every recorded workflow history in PATH (a directory of ``*.json``
files, or one file) becomes a test item.

Imported only when the option is given. Each item replays one workflow with
:class:`pynenc_wf_testing.Replayer` against the code under test and fails with the
``NondeterminismError`` naming the first divergent step. A file that is not a valid history
becomes one failing item with the ``HistoryFormatError`` (never a pytest INTERNALERROR).
"""

from __future__ import annotations

import importlib
import os
from typing import Any

import pytest


class ReplayError(Exception):
    """A recorded history does not replay against the current code."""


def _task_app(task_key: str) -> Any:
    module_name, _, func_name = task_key.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except Exception as error:
        raise ReplayError(
            f"cannot import {module_name!r} ({type(error).__name__}: {error}): the workflow's "
            "module was renamed or removed, or is not on sys.path (run pytest from the "
            "project root)."
        ) from None
    task = getattr(module, func_name, None)
    app = getattr(task, "app", None)
    if app is None:
        raise ReplayError(
            f"{task_key} is not a pynenc task of an importable module: the workflow was "
            "renamed or removed (its recorded runs cannot replay)."
        )
    return app


class ReplayItem(pytest.Item):
    """Replays one workflow of one recorded history file (or reports why the file cannot
    be replayed: ``problem``)."""

    def __init__(
        self,
        *,
        path_str: str,
        workflow_id: str,
        task_key: str,
        problem: Exception | None = None,
        empty: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.empty = empty
        self.path_str = path_str
        self.workflow_id = workflow_id
        self.task_key = task_key
        self.problem = problem

    def runtest(self) -> None:
        if self.problem is not None:
            raise self.problem
        if self.empty:
            pytest.skip(f"{self.path_str} holds no workflow record (its test ran none)")
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
            where = f" (workflow {self.workflow_id})" if self.problem is None else ""
            return f"{type(excinfo.value).__name__}: {excinfo.value}\nhistory: {self.path_str}{where}"
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[str, int, str]:
        if self.problem is not None or self.empty:
            return self.path_str, 0, f"replay {os.path.basename(self.path_str)}"
        return self.path_str, 0, f"replay {self.task_key} [{self.workflow_id[:8]}]"


class ReplayPlugin:
    """Adds a ReplayItem per workflow of every ``*.json`` history in the replay path."""

    def __init__(self, path: str) -> None:
        self.path = path
        # Checked when the plugin is configured: a bad path is a usage error at once, in the
        # controller, rather than an error inside collection (or in every xdist worker).
        self.files = self._files()

    def _files(self) -> list[str]:
        option = f"--wf-replay={self.path}"
        if os.path.isfile(self.path):
            return [self.path]
        if not os.path.isdir(self.path):
            raise pytest.UsageError(
                f"{option}: no such directory or history file. Record histories first with "
                "--wf-record=DIR."
            )
        files = [
            os.path.join(self.path, name)
            for name in sorted(os.listdir(self.path))
            if name.endswith(".json")
        ]
        if not files:
            # Replaying nothing must not look like a clean replay.
            raise pytest.UsageError(
                f"{option}: the directory holds no *.json history, so nothing would be "
                "replayed. Record histories into it with --wf-record=DIR first."
            )
        return files

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        from pynenc_wf_testing.checks.replay import load_history
        from pynenc_wf_testing.errors import HistoryFormatError

        for path in self.files:
            name = os.path.basename(path)
            try:
                workflows = load_history(path).workflows
            except HistoryFormatError as error:
                items.append(
                    ReplayItem.from_parent(
                        session, name=f"replay[{name}]", path_str=path, workflow_id="?",
                        task_key="?", problem=error,
                    )
                )
                continue
            if not workflows:
                # --wf-record writes one file per wf_env test, also for a test whose own world
                # ran no workflow (a crash check runs its runs in worlds of their own): shown
                # as skipped, not hidden.
                items.append(
                    ReplayItem.from_parent(
                        session, name=f"replay[{name}]", path_str=path, workflow_id="?",
                        task_key="?", problem=None, empty=True,
                    )
                )
                continue
            for record in workflows:
                workflow_id = record["workflow_id"]
                task_key = record["task"]
                items.append(
                    ReplayItem.from_parent(
                        session,
                        name=f"replay[{name}::{task_key.rsplit('.', 1)[-1]}:{workflow_id[:8]}]",
                        path_str=path,
                        workflow_id=workflow_id,
                        task_key=task_key,
                    )
                )


# ---------------------------------------------------------------------- after each test


def auto_replay(env: Any) -> tuple[list[Exception], list[str]]:
    """Replay every workflow of ``env``'s (open) world from its recorded history, each in a
    fresh world: returns the divergences (``NondeterminismError``) and the replays that could
    not run (a sentence each). Nothing of the env's own world changes: the Replayer's
    isolation puts it back, whatever happens."""
    from pynenc_wf_testing.checks.replay import Replayer, load_history
    from pynenc_wf_testing.errors import NondeterminismError

    try:
        history = load_history(env.history_json())
    except Exception as error:
        return [], [f"cannot record this test's history ({type(error).__name__}: {error})."]
    sim = env.world.sim
    divergences: list[Exception] = []
    problems: list[str] = []
    for record in history.workflows:
        workflow_id = record["workflow_id"]
        name = f"{record['task']} [{workflow_id[:8]}]"
        try:
            app = sim.app_of(workflow_id)
            result = Replayer(app, seed=env.seed).replay(
                history, workflow_id=workflow_id, raise_on_replay_failure=False
            )
        except NondeterminismError as error:
            divergences.append(error)
            continue
        except Exception as error:
            problems.append(
                f"workflow {name} could not be replayed ({type(error).__name__}: {error}); "
                "was its module or task changed during the test?"
            )
            continue
        if result.error is not None:
            divergences.append(result.error)
    return divergences, problems
