"""Sending one target's request: build it, then retry under the provider's pacing.

Rate limits (429) are pacing, not failure, so they get a retry budget of their own; other retryable
errors use the provider's `max_retries`. Images a failed response still carried are rescued.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from promptform.core.config import Config
from promptform.core.errors import PromptformError
from promptform.core.fingerprint import fingerprint, hash_file
from promptform.engine.apply_model import ApplyObserver
from promptform.engine.pacing import AdaptiveLimiter, LimiterClosed, backoff_delay
from promptform.engine.plan_model import Change
from promptform.manifests.targets import Target
from promptform.providers.base import Generation, ImageRequest, InputFile, Provider, ProviderError

RATE_LIMIT_RETRIES = 30  # 429s are pacing, not failure: they get a budget of their own

ProviderFactory = Callable[[str], Provider]
Rescue = Callable[[ImageRequest, list[bytes], str], str]


class Stopped(Exception):
    """Ctrl-C came before this target's request could start: it is skipped, not failed."""


def build_request(config: Config, target: Target) -> ImageRequest:
    """The request for `target`, with reference images hashed now, not at plan time: an upstream
    may just have replaced them."""
    inputs = tuple(
        InputFile(item.role, config.root / item.path, hash_file(config.root / item.path))
        for item in target.inputs
    )
    return ImageRequest(
        address=target.address,
        endpoint=target.endpoint,
        body=target.body,
        inputs=inputs,
        fingerprint=fingerprint(
            target.provider_kind,
            target.endpoint,
            target.body,
            ((item.role, item.sha256) for item in inputs),
        ),
    )


class RequestSender:
    """Sends requests through providers, with retries, until they succeed, fail or are stopped."""

    def __init__(
        self,
        providers: ProviderFactory,
        observer: ApplyObserver,
        stop: asyncio.Event,
        rescue: Rescue,
    ) -> None:
        self.providers = providers
        self.observer = observer
        self.stop = stop
        self.rescue = rescue
        # Addresses a request was sent for: abandoning one of them may leave a bill behind.
        self.sent: set[str] = set()

    async def send(
        self, change: Change, request: ImageRequest, limiter: AdaptiveLimiter, max_retries: int
    ) -> Generation:
        """The generation, returned holding a slot of `limiter` (on success only)."""
        provider = self.providers(change.target.provider if change.target else "")
        failures = rate_limits = 0
        while True:
            await self._acquire(limiter)
            self.sent.add(request.address)
            try:
                generation = await provider.generate(request)
            except ProviderError as exc:
                await limiter.release(rate_limited=exc.rate_limited, retry_after=exc.retry_after)
                kept = self.rescue(request, list(exc.paid), str(exc)) if exc.paid else None
                if exc.rate_limited and exc.retryable:
                    rate_limits += 1
                    attempt, budget = rate_limits, RATE_LIMIT_RETRIES
                else:
                    failures += 1
                    attempt, budget = failures, max_retries
                if not exc.retryable or attempt > budget:
                    if kept is None:
                        raise
                    raise PromptformError(f"{exc}; the images were kept in {kept}") from None
                if self.stop.is_set():
                    raise Stopped from None
                delay = backoff_delay(attempt, exc.retry_after)
                self.observer.retrying(change, attempt, delay, str(exc))
                await _sleep_unless(self.stop, delay)
                if self.stop.is_set():
                    raise Stopped from None
                continue
            except BaseException:
                await limiter.release()
                raise
            return generation  # still holding the slot: the caller releases it once stored

    async def _acquire(self, limiter: AdaptiveLimiter) -> None:
        try:
            await limiter.acquire()
        except LimiterClosed:
            raise Stopped from None
        if self.stop.is_set():  # stopped while this task was being woken for a free slot
            await limiter.release()
            raise Stopped


async def _sleep_unless(stop: asyncio.Event, delay: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), delay)
