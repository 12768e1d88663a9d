"""Seeded ids and randomness: pynenc's invocation ids, ``uuid.uuid4`` and the ``random`` module.

- ``generate_invocation_id`` is imported by name into two pynenc modules
  (``invocation/dist_invocation.py`` and ``invocation/base_invocation.py``): no config key
  selects it, so both names are replaced with a generator seeded by the environment.
- ``uuid.uuid4`` and the ``random`` module are seeded so that activities using them reproduce
  by seed.

Undone by the :class:`PatchSet`: the original functions and the ``random`` module's state from
before the environment come back.
"""

from __future__ import annotations

import random
import uuid
from typing import Any

import pynenc.invocation.base_invocation as _base_inv
import pynenc.invocation.dist_invocation as _dist_inv
from pynenc.identifiers.invocation_id import InvocationId

from pynenc_wf_testing.runtime.monkeypatches.registry import PatchSet
from pynenc_wf_testing.runtime.seeding import derive_rng

__all__ = ["SeededIds", "uuid4_text"]

_UUID4_CLEAR = ~((0xC000 << 48) | (0xF000 << 64))
_UUID4_SET = (0x8000 << 48) | (4 << 76)


def uuid4_text(bits: int) -> str:
    """``str(uuid.UUID(int=bits, version=4))`` without building the UUID object."""
    text = "%032x" % ((bits & _UUID4_CLEAR) | _UUID4_SET)
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


class SeededIds:
    """The id streams of one environment, restartable from a seed (each fault run of a crash
    check starts from the same one)."""

    def __init__(self, patches: PatchSet) -> None:
        self._patches = patches
        self._inv_rng: random.Random | None = None
        self._uuid_rng: random.Random | None = None

    def install(self, seed: int) -> None:
        random_state = random.getstate()
        self._patches.on_undo(lambda: random.setstate(random_state))
        self.reseed(seed)

    def reseed(self, seed: int) -> None:
        inv_rng = self._inv_rng = derive_rng(seed, "invocation-ids")
        uuid_rng = self._uuid_rng = derive_rng(seed, "uuid4")

        def gen_invocation_id() -> InvocationId:
            return InvocationId(uuid4_text(inv_rng.getrandbits(128)))

        def seeded_uuid4() -> uuid.UUID:
            return uuid.UUID(int=uuid_rng.getrandbits(128), version=4)

        self._patches.set_attr(_dist_inv, "generate_invocation_id", gen_invocation_id)
        self._patches.set_attr(_base_inv, "generate_invocation_id", gen_invocation_id)
        self._patches.set_attr(uuid, "uuid4", seeded_uuid4)
        random.seed(derive_rng(seed, "random-module").getrandbits(64))

    def save(self) -> tuple[Any, Any, Any]:
        assert self._inv_rng is not None and self._uuid_rng is not None
        return (self._inv_rng.getstate(), self._uuid_rng.getstate(), random.getstate())

    def restore(self, state: tuple[Any, Any, Any]) -> None:
        assert self._inv_rng is not None and self._uuid_rng is not None
        self._inv_rng.setstate(state[0])
        self._uuid_rng.setstate(state[1])
        random.setstate(state[2])
