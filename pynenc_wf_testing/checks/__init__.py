"""Checks on top of the simulator: faults, crash checks, Hypothesis strategies, replay of
recorded histories, idempotency. Internal layer (docs/architecture.md): it imports the runtime,
the engine and pynenc, never the facade or the tools."""

__all__: list[str] = []
