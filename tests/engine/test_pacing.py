from __future__ import annotations

import asyncio
import random

from promptform.engine.pacing import AdaptiveLimiter, backoff_delay
from tests.support.waiting import run_within


def test_backoff_honours_the_servers_retry_after() -> None:
    assert backoff_delay(3, 2.5) == 2.5


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    rng = random.Random(7)
    first = [backoff_delay(1, None, rng=rng) for _ in range(50)]
    fifth = [backoff_delay(5, None, rng=rng) for _ in range(50)]
    late = [backoff_delay(30, None, rng=rng) for _ in range(50)]
    assert all(0.25 <= delay <= 0.5 for delay in first)
    assert all(4.0 <= delay <= 8.0 for delay in fifth)
    assert all(delay <= 30.0 for delay in late)
    assert len(set(first)) > 1  # jitter: senders do not retry in lockstep


def test_rate_limit_halves_concurrency_and_success_restores_it() -> None:
    async def scenario() -> list[float]:
        limiter = AdaptiveLimiter(8)
        seen = [limiter.limit]
        await limiter.acquire()
        await limiter.release(rate_limited=True)
        seen.append(limiter.limit)
        for _ in range(200):
            await limiter.acquire()
            await limiter.release()
        seen.append(limiter.limit)
        return seen

    assert run_within(scenario(), "201 acquire/release rounds") == [8.0, 4.0, 8.0]


def test_limiter_never_lets_more_than_the_limit_in_flight() -> None:
    async def scenario() -> int:
        limiter = AdaptiveLimiter(3)
        peak = 0

        async def worker() -> None:
            nonlocal peak
            await limiter.acquire()
            peak = max(peak, limiter.in_flight)
            await asyncio.sleep(0.001)
            await limiter.release()

        await asyncio.gather(*(worker() for _ in range(30)))
        return peak

    assert run_within(scenario(), "30 workers through a limit of 3") == 3


def test_retry_after_pauses_every_sender() -> None:
    async def scenario() -> float:
        limiter = AdaptiveLimiter(4)
        await limiter.acquire()
        await limiter.release(rate_limited=True, retry_after=0.2)
        loop = asyncio.get_running_loop()
        start = loop.time()
        await limiter.acquire()
        await limiter.release()
        return loop.time() - start

    assert run_within(scenario(), "an acquire after a 0.2 s Retry-After") >= 0.15
