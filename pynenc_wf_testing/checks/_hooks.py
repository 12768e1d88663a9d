"""The user's hooks of the checks (``compare``, ``invariant``, ``before_each``, ...), checked
at the call: a hook that is not callable, or cannot take the arguments the check will pass,
would otherwise fail only inside the first run, as a violation of every schedule."""

from __future__ import annotations

import inspect

from pynenc_wf_testing.errors import InvalidArgument

__all__ = ["check_hook"]


def check_hook(value: object, name: str, shape: str, example: str) -> None:
    """Refuse ``value`` unless it is None or a callable that can be called as ``shape`` says
    (``"(golden, got) -> bool"``: two positional arguments).

    ``example``: a hook of that shape, for the message (``lambda golden, got: ...``).
    """
    if value is None:
        return
    inside = shape[shape.index("(") + 1 : shape.index(")")]
    params = tuple(p.strip() for p in inside.split(",") if p.strip())
    if not callable(value):
        raise InvalidArgument(f"{name} must be a function {shape}, got {value!r}.")
    try:
        signature = inspect.signature(value)
    except (TypeError, ValueError):  # a builtin without a signature: trust it
        return
    try:
        signature.bind(*params)
    except TypeError as error:
        label = getattr(value, "__name__", type(value).__name__)
        raise InvalidArgument(
            f"{name}={label}{signature} cannot be called as {name}({inside}) ({error}): the check "
            f"calls it with {len(params)} argument(s), {', '.join(params) or 'none'}. Write e.g. "
            f"{name}={example}."
        ) from None
