"""Retry policies for child calls: which errors, how many attempts, which backoff."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import timedelta

from pynenc_wf_testing.engine.exceptions import InvalidWorkflowArgument

__all__ = ["RetryPolicy"]

_MAX_SECONDS = timedelta.max.total_seconds() - 1.0


@dataclass(frozen=True)
class RetryPolicy:
    """How a child call is retried by ``wf.root.execute_task_with_retry``.

    - ``retry_on``: exception types that are retried (others fail at once);
    - ``max_attempts``: attempts in all, first one included; ``None`` retries forever;
    - backoff: ``initial_delay`` before the 2nd attempt, multiplied by ``multiplier`` for
      each later one (``1.0`` gives a fixed delay), capped at ``max_delay``;
    - ``jitter``: a fraction (0..1) of the delay drawn at random, seeded by the workflow id,
      call position and attempt, so a replay waits exactly as the first run did.

    Delays are durable timers: a crash during one waits only for what remains, and in the
    simulator they elapse in virtual time.
    """

    retry_on: tuple[type[BaseException], ...] = (Exception,)
    max_attempts: int | None = 3
    initial_delay: timedelta = timedelta(seconds=1)
    multiplier: float = 2.0
    max_delay: timedelta = timedelta(minutes=10)
    jitter: float = 0.0
    non_retryable: tuple[type[BaseException], ...] = field(default=())

    def __post_init__(self) -> None:
        if self.max_attempts is not None and (
            isinstance(self.max_attempts, bool)
            or not isinstance(self.max_attempts, int)
            or self.max_attempts < 1
        ):
            raise InvalidWorkflowArgument(
                f"max_attempts must be an int >= 1 or None (retry forever), got "
                f"{self.max_attempts!r}."
            )
        for name in ("multiplier", "jitter"):
            number = getattr(self, name)
            if (
                isinstance(number, bool)
                or not isinstance(number, int | float)
                or not math.isfinite(number)
            ):
                raise InvalidWorkflowArgument(f"{name} must be a number (finite), got {number!r}.")
        if self.multiplier < 1:
            raise InvalidWorkflowArgument(f"multiplier must be >= 1, got {self.multiplier!r}.")
        if not 0 <= self.jitter <= 1:
            raise InvalidWorkflowArgument(f"jitter must be between 0 and 1, got {self.jitter!r}.")
        for name in ("initial_delay", "max_delay"):
            if not isinstance(getattr(self, name), timedelta):
                raise InvalidWorkflowArgument(
                    f"{name} must be a datetime.timedelta, got {getattr(self, name)!r}; e.g. "
                    "RetryPolicy.fixed(timedelta(minutes=1))."
                )
        if self.initial_delay < timedelta(0) or self.max_delay < timedelta(0):
            raise InvalidWorkflowArgument("delays must not be negative.")
        for name in ("retry_on", "non_retryable"):
            kinds = getattr(self, name)
            listed = kinds if isinstance(kinds, tuple) else (kinds,)
            if not all(isinstance(k, type) and issubclass(k, BaseException) for k in listed):
                # isinstance(error, (int,)) would never match: the policy would silently
                # retry nothing (retry_on) or everything (non_retryable)
                raise InvalidWorkflowArgument(
                    f"{name} must be exception classes, e.g. {name}=(TimeoutError,), got "
                    f"{kinds!r}."
                )

    @classmethod
    def fixed(cls, delay: timedelta, *, max_attempts: int | None = 3, **kw: object) -> RetryPolicy:
        """The same delay before every retry."""
        return cls(initial_delay=delay, multiplier=1.0, max_delay=delay,
                   max_attempts=max_attempts, **kw)  # type: ignore[arg-type]

    @classmethod
    def exponential(
        cls,
        initial: timedelta = timedelta(seconds=1),
        *,
        multiplier: float = 2.0,
        cap: timedelta = timedelta(minutes=10),
        max_attempts: int | None = 3,
        **kw: object,
    ) -> RetryPolicy:
        """``initial``, ``initial * multiplier``, ... capped at ``cap``."""
        return cls(initial_delay=initial, multiplier=multiplier, max_delay=cap,
                   max_attempts=max_attempts, **kw)  # type: ignore[arg-type]

    def should_retry(self, error: BaseException, attempt: int) -> bool:
        """Whether ``attempt`` (1 = the first) failing with ``error`` gets another attempt."""
        if isinstance(error, self.non_retryable) or not isinstance(error, self.retry_on):
            return False
        return self.max_attempts is None or attempt < self.max_attempts

    def delay(self, attempt: int, seed: str) -> timedelta:
        """The wait after failed ``attempt`` (1-based); deterministic for a given ``seed``."""
        initial, cap = self.initial_delay.total_seconds(), self.max_delay.total_seconds()
        if (attempt - 1) * math.log(self.multiplier) > 700:
            # multiplier ** (attempt - 1) would overflow a float (a policy retrying forever,
            # past ~1,000 attempts): the cap was reached long ago
            base = min(initial, cap) if initial == 0 else cap
        else:
            base = min(initial * self.multiplier ** (attempt - 1), cap)
        if self.jitter:
            # random.Random(str) is seeded from the string's SHA-512: stable across processes.
            base *= 1 - self.jitter * random.Random(f"{seed}:{attempt}").random()
        # timedelta(seconds=float) of timedelta.max's own seconds rounds past it
        return timedelta(seconds=min(base, _MAX_SECONDS))
