"""Seed derivation that never depends on ``hash()`` or ``PYTHONHASHSEED``."""

from __future__ import annotations

import hashlib
import random

__all__ = ["derive_rng", "derive_seed", "seed_from_text"]

def derive_seed(seed: int, label: str) -> int:
    """A 64-bit seed for one purpose (``label``) of a simulation seeded with ``seed``."""
    digest = hashlib.sha256(f"{seed}:{label}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def derive_rng(seed: int, label: str) -> random.Random:
    return random.Random(derive_seed(seed, label))


def seed_from_text(text: str) -> int:
    """A stable seed from a string (a pytest node id), the same in every process."""
    return derive_seed(0, text) % 2**32
