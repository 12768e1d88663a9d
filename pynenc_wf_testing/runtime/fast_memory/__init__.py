"""Fast simulated components: pynenc's memory components minus work nobody observes.

Selected only inside the simulator (``MemoryBackend.config``); ``WorkflowEnv(backend=
"memory-stock")`` selects pynenc's own memory classes with the same observation hooks, and
``tests/test_equivalence.py`` checks that both store exactly the same state for the same
workflows and seed. Each module holds one subclass of pynenc's own component (or of our
observed one), and its docstring says what it skips and why the skipped work is unobservable:
``trigger`` (:class:`SimMemTrigger`), ``broker`` (:class:`SimMemBroker`), ``orchestrator``
(:class:`SimMemOrchestrator`), ``state_backend`` (:class:`SimMemStateBackend`) and
``client_data_store`` (:class:`SimMemClientDataStore`, with the plain-JSON codec
:func:`dumps_plain` / :func:`loads_plain`).

docs/benchmarks.md has what each of them buys.
"""

from __future__ import annotations

from pynenc_wf_testing.runtime.fast_memory.broker import SimMemBroker
from pynenc_wf_testing.runtime.fast_memory.client_data_store import (
    SimMemClientDataStore,
    dumps_plain,
    loads_plain,
)
from pynenc_wf_testing.runtime.fast_memory.configs import FAST_MEMORY_CONFIG, STOCK_MEMORY_CONFIG
from pynenc_wf_testing.runtime.fast_memory.orchestrator import SimMemOrchestrator
from pynenc_wf_testing.runtime.fast_memory.state_backend import SimMemStateBackend
from pynenc_wf_testing.runtime.fast_memory.trigger import SimMemTrigger

__all__ = [
    "FAST_MEMORY_CONFIG",
    "STOCK_MEMORY_CONFIG",
    "SimMemBroker",
    "SimMemClientDataStore",
    "SimMemOrchestrator",
    "SimMemStateBackend",
    "SimMemTrigger",
    "dumps_plain",
    "loads_plain",
]
