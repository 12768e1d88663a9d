"""Tools on top of the library: report rendering and the ``pynenc-wf`` command line.
They call public functions of the layers below (docs/architecture.md)."""

__all__: list[str] = []
