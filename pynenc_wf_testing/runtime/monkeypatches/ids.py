"""Seeded values by identity: pynenc's invocation ids, ``uuid.uuid4`` and the ``random`` module.

Every seeded value is derived from the environment's seed and the stable identity of who draws
it, never from one stream shared by the whole environment: a crash, a retry or one more
workflow in the test then shifts nothing else, and a run with faults draws, at every point not
yet recorded, what the golden run drew there.

- **Invocation ids.** ``generate_invocation_id`` is imported by name into two pynenc modules
  (``invocation/dist_invocation.py`` and ``invocation/base_invocation.py``): no config key
  selects it, so both names are replaced. ``TaskInvocation.from_parent`` and
  ``WorkflowInvocation.from_parent`` (the only callers that make new invocations) are wrapped
  to tell it who asks: the id is ``blake2b(seed | owner | call id | k)`` shaped as a uuid4,
  where the owner is the parent invocation's id, ``top`` for a start from outside any
  invocation, ``core`` for pynenc's own core tasks (recovery), and ``k`` counts that owner's
  invocations of that call (the k-th ``charge_payment("o-1")`` of that workflow, the k-th start
  of that call in the environment). ``k`` skips the ids that may already be in the store: after
  a crash, an id drawn but never stored (the crash came before pynenc wrote the invocation) is
  drawn again, an id that was stored is not (the child routed twice in the fine-grained window
  gets a new id). A workflow's id is its root invocation's id: ``wf.root.uuid()/random()``,
  which pynenc derives from the workflow id and a per-operation counter, follow.
- **Inside a simulated invocation** (the scheduler's current thread) ``uuid.uuid4()`` and the
  ``random`` module's functions draw from the invocation itself: the k-th ``uuid4`` is
  ``blake2b(seed | invocation id | attempt | k)``; ``random.*`` use one ``random.Random``
  seeded the same way. For a task the attempt is pynenc's retry number, so a re-execution after
  a crash draws again what the crashed one drew and a retry draws afresh; for a workflow body
  it counts the executions of the body that drew, so ``uuid4``/``random`` in a workflow body
  (a bug: the body replays) give a replay other values, which the determinism check catches.
- **Outside any invocation** (the test body, the scheduler): one stream per environment, as
  before (``uuid4`` from its own seeded generator, ``random`` from the module's own instance
  seeded on open); an invocation made there without its identity (pynenc's sync mode) takes
  its id from an environment stream too.

Names bound by ``from random import randint`` / ``from uuid import uuid4`` in the modules of the
simulated tasks are replaced as well (:meth:`SeededIds.patch_imported`, with the imported
``sleep``). Derivation uses ``blake2b`` over text: the same bytes in every process and under any
``PYTHONHASHSEED``. Undone by the :class:`PatchSet`: the original functions and the ``random``
module's state from before the environment come back.
"""

from __future__ import annotations

import heapq
import random
import sys
import types
import uuid
from hashlib import blake2b
from typing import Any

import pynenc.invocation.base_invocation as _base_inv
import pynenc.invocation.dist_invocation as _dist_inv
from pynenc.identifiers.invocation_id import InvocationId

from pynenc_wf_testing.runtime.monkeypatches.registry import PatchSet
from pynenc_wf_testing.runtime.seeding import derive_rng

__all__ = ["SeededIds", "derive_bits", "uuid4_text"]

_UUID4_CLEAR = ~((0xC000 << 48) | (0xF000 << 64))
_UUID4_SET = (0x8000 << 48) | (4 << 76)
_ORIG_UUID4 = uuid.uuid4
_RANDOM_INST: random.Random = random._inst
# The ``random`` module's functions: bound methods of its hidden instance.
_RANDOM_NAMES = tuple(
    name
    for name in random.__all__
    if getattr(getattr(random, name, None), "__self__", None) is _RANDOM_INST
)
_METHOD_TYPES = (types.BuiltinMethodType, types.MethodType)


def uuid4_text(bits: int) -> str:
    """``str(uuid.UUID(int=bits, version=4))`` without building the UUID object."""
    text = "%032x" % ((bits & _UUID4_CLEAR) | _UUID4_SET)
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def derive_bits(text: str) -> int:
    """128 bits from ``text`` (``blake2b``): the same in every process and hash seed."""
    return int.from_bytes(blake2b(text.encode(), digest_size=16).digest(), "big")


class _Draws:
    """What one execution of one invocation drew so far (kept on its scheduler thread)."""

    __slots__ = ("base", "rng", "uuids")

    def __init__(self, base: str) -> None:
        self.base = base  # "seed|invocation id|attempt"
        self.uuids = 0
        self.rng: random.Random | None = None

    def next_uuid_bits(self) -> int:
        self.uuids += 1
        return derive_bits(f"{self.base}|uuid4|{self.uuids}")

    def random(self) -> random.Random:
        rng = self.rng
        if rng is None:
            rng = self.rng = random.Random(derive_bits(f"{self.base}|random") >> 64)
        return rng


class _WorldIds:
    """The id state of one simulated world: restarted by a reseed, captured and put back with
    the world (``save``/``restore``)."""

    __slots__ = (
        "crashes_seen", "executions", "free", "inv_rng", "issued_ids", "issued_keys",
        "issued_ks", "seed", "sim", "taken", "uuid_rng",
    )

    def __init__(self, seed: int, sim: Any) -> None:
        self.seed = seed
        #: The simulation whose current invocation draws (``current``, ``crashes``, ``apps``).
        self.sim = sim
        self.crashes_seen = sim.crashes if sim is not None else 0
        #: owner|call key -> the highest k drawn; k released by a crash before it was stored.
        self.taken: dict[str, int] = {}
        self.free: dict[str, list[int]] = {}
        # Ids drawn since the last crash (parallel lists: no tuple per invocation for the gc).
        self.issued_ids: list[str] = []
        self.issued_keys: list[str] = []
        self.issued_ks: list[int] = []
        #: workflow invocation id -> executions of its body that drew a value.
        self.executions: dict[str, int] = {}
        # Outside any identity: one stream each, per environment.
        self.inv_rng = derive_rng(seed, "invocation-ids")
        self.uuid_rng = derive_rng(seed, "uuid4")


class SeededIds:
    """The seeded values of one environment (see the module docstring); each fault run of a
    crash check starts from the same seed (:meth:`reseed`)."""

    def __init__(self, patches: PatchSet) -> None:
        self._patches = patches
        self._state: _WorldIds | None = None
        #: (call, parent invocation) of the ``from_parent`` in progress.
        self._pending: tuple[Any, Any] | None = None
        self._random_dispatch: dict[str, Any] = {}

    # ------------------------------------------------------------------ lifecycle

    def install(self, seed: int) -> None:
        random_state = _RANDOM_INST.getstate()

        def undo() -> None:
            _RANDOM_INST.setstate(random_state)
            self._state = None  # no simulation stays referenced once the patches are gone

        self._patches.on_undo(undo)
        patches = self._patches
        gen = self._generate_invocation_id
        patches.set_attr(_dist_inv, "generate_invocation_id", gen)
        patches.set_attr(_base_inv, "generate_invocation_id", gen)
        for cls in (_dist_inv.TaskInvocation, _dist_inv.WorkflowInvocation):
            patches.set_attr(cls, "from_parent", self._wrap_from_parent(cls))
        patches.set_attr(uuid, "uuid4", self._uuid4)
        for name in _RANDOM_NAMES:
            dispatch = self._random_dispatch[name] = self._dispatcher(name)
            patches.set_attr(random, name, dispatch)
        self.reseed(seed)

    def reseed(self, seed: int) -> None:
        """Restart every derivation from ``seed`` (a new world, or a replay's own seed); the
        bound simulation stays."""
        sim = self._state.sim if self._state is not None else None
        self._state = _WorldIds(seed, sim)
        _RANDOM_INST.seed(derive_rng(seed, "random-module").getrandbits(64))

    def bind(self, sim: Any) -> None:
        """Draw for the invocations of ``sim`` (a new world's simulation)."""
        state = self._world()
        state.sim = sim
        state.crashes_seen = sim.crashes

    def save(self) -> tuple[Any, Any]:
        return (self._world(), _RANDOM_INST.getstate())

    def restore(self, saved: tuple[Any, Any]) -> None:
        self._state = saved[0]
        _RANDOM_INST.setstate(saved[1])

    def patch_imported(self, module_names: list[str]) -> None:
        """``from uuid import uuid4`` / ``from random import randint`` in these modules (the
        simulated tasks' own) hold the real functions: replace those names too."""
        dispatch = self._random_dispatch
        for name in module_names:
            module = sys.modules.get(name)
            if module is None:
                continue
            for attribute, value in list(vars(module).items()):
                if value is _ORIG_UUID4:
                    self._patches.set_attr(module, attribute, self._uuid4)
                elif (
                    isinstance(value, _METHOD_TYPES)
                    and value.__self__ is _RANDOM_INST
                    and value.__name__ in dispatch
                ):
                    self._patches.set_attr(module, attribute, dispatch[value.__name__])

    # ------------------------------------------------------------------ invocation ids

    def _world(self) -> _WorldIds:
        state = self._state
        assert state is not None, "SeededIds used before install()"
        return state

    def _wrap_from_parent(self, cls: type) -> classmethod[Any, Any, Any]:
        original = cls.__dict__["from_parent"].__func__

        def from_parent(
            klass: type, call: Any, parent_invocation: Any = None, parent_event_id: Any = None
        ) -> Any:
            outer = self._pending
            self._pending = (call, parent_invocation)
            try:
                return original(klass, call, parent_invocation, parent_event_id)
            finally:
                self._pending = outer

        from_parent.__doc__ = original.__doc__
        return classmethod(from_parent)

    def _generate_invocation_id(self) -> InvocationId:
        state = self._state
        assert state is not None, "SeededIds used before install()"
        pending = self._pending
        if pending is None:
            return InvocationId(uuid4_text(state.inv_rng.getrandbits(128)))
        self._pending = None  # one id per from_parent
        call, parent = pending
        sim = state.sim
        if sim is not None and sim.crashes != state.crashes_seen:
            self._settle(state, sim)
        if call.task.func.__module__.startswith("pynenc."):
            owner = "core"
        elif parent is None:
            owner = "top"
        else:
            owner = parent.invocation_id
        key = f"{owner}|{call.call_id.key}"
        free = state.free.get(key)
        if free:
            k = heapq.heappop(free)
        else:
            k = state.taken.get(key, 0) + 1
            state.taken[key] = k
        # uuid4_text(derive_bits(...)) inlined (one id per invocation, on the hot path): the
        # version and variant bits set on the digest's bytes, no int in between.
        digest = bytearray(blake2b(f"{state.seed}|{key}|{k}".encode(), digest_size=16).digest())
        digest[6] = (digest[6] & 0x0F) | 0x40
        digest[8] = (digest[8] & 0x3F) | 0x80
        text = digest.hex()
        inv_id = f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
        state.issued_ids.append(inv_id)
        state.issued_keys.append(key)
        state.issued_ks.append(k)
        return InvocationId(inv_id)

    @staticmethod
    def _settle(state: _WorldIds, sim: Any) -> None:
        """The worker crashed since the last draw: the ids drawn since the previous crash that
        never reached the store are free again (the golden run drew them at points this run
        has not recorded yet)."""
        apps = list(sim.apps)
        is_stored = sim.is_stored
        for inv_id, key, k in zip(
            state.issued_ids, state.issued_keys, state.issued_ks, strict=True
        ):
            if not any(is_stored(app, inv_id) for app in apps):
                heapq.heappush(state.free.setdefault(key, []), k)
        state.issued_ids.clear()
        state.issued_keys.clear()
        state.issued_ks.clear()
        state.crashes_seen = sim.crashes

    # ------------------------------------------------------------------ uuid4 and random

    def _draws(self) -> _Draws | None:
        """The draws of the invocation running now, or None outside any."""
        state = self._state
        sim = state.sim if state is not None else None
        thread = sim.current if sim is not None else None
        if thread is None:
            return None
        draws: _Draws | None = thread.draws
        if draws is None:
            assert state is not None
            invocation = thread.invocation
            inv_id = thread.invocation_id
            if invocation.task.is_workflow_root_task:
                n = state.executions[inv_id] = state.executions.get(inv_id, 0) + 1
                attempt = f"execution-{n}"
            else:
                attempt = f"retry-{invocation.num_retries}"
            draws = thread.draws = _Draws(f"{state.seed}|{inv_id}|{attempt}")
        return draws

    def _uuid4(self) -> uuid.UUID:
        draws = self._draws()
        if draws is None:
            return uuid.UUID(int=self._world().uuid_rng.getrandbits(128), version=4)
        return uuid.UUID(int=draws.next_uuid_bits(), version=4)

    def _dispatcher(self, name: str) -> Any:
        default = getattr(_RANDOM_INST, name)
        draws_of = self._draws

        def dispatch(*args: Any, **kwargs: Any) -> Any:
            draws = draws_of()
            if draws is None:
                return default(*args, **kwargs)
            return getattr(draws.random(), name)(*args, **kwargs)

        dispatch.__name__ = dispatch.__qualname__ = name
        dispatch.__doc__ = default.__doc__
        return dispatch
