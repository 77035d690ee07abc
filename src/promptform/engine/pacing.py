"""How fast apply sends: an AIMD concurrency limit and retry delays with backoff and jitter.

A rate-limited account should finish at close to its limit without failing targets: every 429 halves
the number of requests in flight (never below one), every success adds back a fraction of one, and a
server's retry-after is honoured by every sender, not only the one that was told.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time


class LimiterClosed(Exception):
    """The run is stopping: no new request may start."""


class AdaptiveLimiter:
    """An asyncio semaphore whose size follows additive-increase / multiplicative-decrease."""

    def __init__(self, maximum: int) -> None:
        self.maximum = max(1, maximum)
        self.limit = float(self.maximum)
        self.in_flight = 0
        self.closed = False
        self._changed = asyncio.Condition()
        self._paused_until = 0.0
        self._last_decrease = 0.0

    async def close(self) -> None:
        """Make every waiting and future `acquire` raise LimiterClosed; requests in flight go on."""
        async with self._changed:
            self.closed = True
            self._changed.notify_all()

    async def acquire(self) -> None:
        async with self._changed:
            while True:
                if self.closed:
                    raise LimiterClosed
                pause = self._paused_until - time.monotonic()
                if pause > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._changed.wait(), pause)
                    continue
                if self.in_flight < int(self.limit):
                    self.in_flight += 1
                    return
                await self._changed.wait()

    async def release(
        self, *, rate_limited: bool = False, retry_after: float | None = None
    ) -> None:
        async with self._changed:
            self.in_flight -= 1
            now = time.monotonic()
            if rate_limited:
                # One halving per burst: the requests already in flight hit the same limit.
                if now - self._last_decrease > 0.5:
                    self.limit = max(1.0, self.limit / 2)
                    self._last_decrease = now
                if retry_after:
                    self._paused_until = max(self._paused_until, now + min(retry_after, 60.0))
            else:
                self.limit = min(float(self.maximum), self.limit + 1.0 / max(self.limit, 1.0))
            self._changed.notify_all()


def backoff_delay(
    attempt: int,
    retry_after: float | None,
    *,
    base: float = 0.5,
    cap: float = 30.0,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before retry number `attempt` (1-based): the server's word, else full jitter."""
    if retry_after is not None and retry_after >= 0:
        return min(retry_after, 120.0)
    ceiling = min(cap, base * (2 ** (attempt - 1)))
    return (rng or random).uniform(ceiling / 2, ceiling)
