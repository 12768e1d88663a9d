"""Every monkeypatch of the harness: one module per thing patched, one undo mechanism.

A monkeypatch here is any name of a module or class that is not ours replaced while a
simulation runs (pynenc, freezegun, the stdlib), or process-wide state changed (the ``random``
module's state, gc thresholds). Each goes through a :class:`~.registry.PatchSet`, which records
what was there and puts it back, newest first, even when an earlier undo fails. Subclasses of
pynenc, pynenc-redis and fakeredis classes (the simulated components, the redis compatibility
layer, the direct fakeredis client) are extension points, not patches: they live with their
backends. The engine's own ``task.wf`` swap is in ``engine/task_wf.py``, reversible with
``uninstall_task_wf``: the engine is production code and imports nothing of the simulator.

Installed by :class:`ProcessPatches` when an environment opens, in this order:

- :mod:`.ids`: pynenc's ``generate_invocation_id`` (two modules) and
  ``TaskInvocation/WorkflowInvocation.from_parent`` (who asks for the id), ``uuid.uuid4``, the
  ``random`` module's functions (dispatched to the current invocation's generator) and seed;
  ``from uuid import uuid4`` / ``from random import ...`` names in the simulated tasks' modules.
- :mod:`.clock`: freezegun started at the environment's start time, its ignore list emptied,
  the real monotonic clocks put back, and (speed-ups) memos of ``FakeDatetime.now`` and
  ``fake_time``.
- :mod:`.pynenc_speedups` (speed-ups): ``Arguments.from_call``,
  ``pynenc.call.compute_args_id``, ``pynenc.util.import_app.extract_module_info``,
  ``DistributedInvocation.status``.
- :mod:`.croniter_cache` (speed-ups): ``croniter._expand`` parses a plain cron expression
  once (pynenc's cron condition builds a new ``croniter`` at every evaluation);
  ``croniter._calc_next``, ``croniter.match_range`` and pynenc's
  ``CronCondition._is_satisfied_by`` keep their recent answers for plain expressions (pure
  functions of the expression, the settings, the instants and their zones).
- :mod:`.gc_thresholds`: rarer full garbage collections.
- :mod:`.sleep`: ``time.sleep``, ``asyncio.sleep``, and ``from time import sleep`` names in
  the modules of the simulated tasks.
- :mod:`.deterministic_executor`: ``DeterministicExecutor.execute_task`` (the simulator's
  hook; with speed-ups, one ``Call`` per child).
- :mod:`.pynenc_logging`: ``pynenc.app.create_logger`` keeps one context filter per logger.
- :mod:`.direct_calls`: ``Task._call`` and ``Task.parallelize`` hand the task's app to the
  environment before pynenc routes the call (a task called directly joins the simulation).
- :mod:`.config_priority` (on the first ``use(app)``): ``ConfigPynencBase.__init__`` assigns
  the harness's keys after pynenc resolved its sources (``[tool.pynenc]`` of pyproject.toml,
  config files, ``PYNENC__...`` variables), so the simulated components win.

Installed by the sqlite backend while a store is open: :mod:`.sqlite` (pynenc's
``sqlite_conn`` names). :mod:`.compat` checks the versions of pynenc and freezegun before any of
the above, and of pynenc-redis and fakeredis when a redis backend is built.
"""

from __future__ import annotations

from pynenc_wf_testing.runtime.monkeypatches.process import ProcessPatches
from pynenc_wf_testing.runtime.monkeypatches.registry import PatchSet

__all__ = ["PatchSet", "ProcessPatches"]
