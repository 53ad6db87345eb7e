"""One retry policy for everything that waits for a server to come back.

Pure: it computes delays and says when to give up; the caller sleeps (on its
own stop event) and retries. The store retries a transaction with it, and the
listener its reconnects.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True, slots=True)
class RetryPolicy:
    """Capped exponential backoff with "equal jitter".

    Attempt ``n`` (1-based) waits between half and all of
    ``min(max_delay, base_delay * 2**(n-1))``: half fixed, half random, so
    clients that lost the same server do not all come back in the same instant.
    ``max_attempts=None`` retries until the caller stops.
    """

    max_attempts: int | None = 5
    base_delay: float = 0.05
    max_delay: float = 5.0

    def __post_init__(self) -> None:
        if self.base_delay <= 0 or self.max_delay <= 0:
            raise ValueError("retry delays must be positive")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")

    def delay(self, attempt: int, *, rnd: Callable[[], float] = random.random) -> float:
        """Seconds to wait after failed attempt ``attempt`` before the next one."""
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** min(max(attempt - 1, 0), 32))
        return ceiling / 2 + rnd() * ceiling / 2

    def gives_up_after(self, attempt: int) -> bool:
        """Whether ``attempt`` failed attempts exhaust the policy."""
        return self.max_attempts is not None and attempt >= self.max_attempts
