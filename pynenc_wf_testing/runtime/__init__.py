"""The simulator: virtual clock, seeding, scheduler, step recorder, runner, components,
backends and the patches they need. Internal layer (docs/architecture.md): it imports the
engine and pynenc, never the checks, the facade or the tools."""

__all__: list[str] = []
