"""Rarer cyclic garbage collections while a simulation is open.

A simulation allocates a lot and frees little until it ends (the durable store and the history
only grow): with CPython's default thresholds (700, 10, 10) the collector rescans the growing
heap over and over, ~40% of the time at 10,000 workflows. Young collections stay, every 100,000
allocations; full ones become rare. Unreachable cycles are still collected, later.
(``gc.freeze()`` of the heap at start was measured too: nothing to gain, the heap a simulation
scans is the one it builds.)

Undone by the :class:`PatchSet`: the previous thresholds come back, unless someone changed them
meanwhile.
"""

from __future__ import annotations

import gc

from pynenc_wf_testing.runtime.monkeypatches.registry import PatchSet

__all__ = ["GC_THRESHOLDS", "tune_gc"]

GC_THRESHOLDS = (100_000, 50, 100)


def tune_gc(patches: PatchSet) -> None:
    thresholds = gc.get_threshold()
    if not thresholds[0] or thresholds[0] >= GC_THRESHOLDS[0]:
        return  # collection disabled, or already as rare: leave it alone
    gc.set_threshold(*GC_THRESHOLDS)

    def undo_gc() -> None:
        if gc.get_threshold() == GC_THRESHOLDS:
            gc.set_threshold(*thresholds)

    patches.on_undo(undo_gc)
