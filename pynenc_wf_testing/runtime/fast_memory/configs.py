"""The memory backend's component selections: the fast classes of this package, or pynenc's
own memory classes with the simulator's observation hooks (``backend="memory-stock"``)."""

from __future__ import annotations

__all__ = ["FAST_MEMORY_CONFIG", "STOCK_MEMORY_CONFIG"]

#: Component classes of the default memory backend (fast, observed).
FAST_MEMORY_CONFIG: dict[str, str] = {
    "orchestrator_cls": "SimMemOrchestrator",
    "state_backend_cls": "SimMemStateBackend",
    "broker_cls": "SimMemBroker",
    "trigger_cls": "SimMemTrigger",
    "client_data_store_cls": "SimMemClientDataStore",
}

#: pynenc's own memory classes with the simulator's observation hooks ("memory-stock").
STOCK_MEMORY_CONFIG: dict[str, str] = {
    "orchestrator_cls": "SimStockMemOrchestrator",
    "state_backend_cls": "SimStockMemStateBackend",
    "broker_cls": "MemBroker",
    "trigger_cls": "MemTrigger",
    "client_data_store_cls": "MemClientDataStore",
}
