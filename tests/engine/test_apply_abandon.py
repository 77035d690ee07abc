"""A second (or third) Ctrl-C while a target's images are being written: the write finishes and
the target is reported once, as what happened to it.

Unit tests of Applier._generate's cancellation handling: the store is a function that takes its
time on the disk thread, and the task is cancelled as the interrupt handler cancels it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

import pytest

from promptform.core.errors import PromptformError
from promptform.engine import apply as apply_module
from promptform.engine.apply import Applier
from promptform.engine.apply_model import ApplyReport


class _Limiter:
    def __init__(self) -> None:
        self.released = 0

    async def release(self, **_: Any) -> None:
        self.released += 1


def _applier(store: Callable[[], int]) -> tuple[Any, _Limiter]:
    """An Applier with what _generate touches: a sender that answers at once, a store that takes
    its time on the real disk thread pool."""
    limiter = _Limiter()
    applier: Any = Applier.__new__(Applier)
    sent: set[str] = set()

    async def send(change: Any, request: Any, limiter: Any, retries: int) -> str:
        sent.add(change.address)
        return "generation"

    applier.config = SimpleNamespace(
        provider=lambda name: (name, SimpleNamespace(concurrency=1, max_retries=0))
    )
    applier._limiter = lambda name, concurrency: limiter
    applier.sender = SimpleNamespace(send=send, sent=sent)
    applier.report = ApplyReport()
    applier.store = SimpleNamespace(store=lambda *args: store())
    applier._disk = ThreadPoolExecutor(1)
    applier.observer = SimpleNamespace(
        finished_target=lambda *args: None, failed_target=lambda *args: None
    )
    return applier, limiter


def _cancel_during_store(
    applier: Any, cancels: list[float], monkeypatch: pytest.MonkeyPatch
) -> ApplyReport:
    monkeypatch.setattr(apply_module, "build_request", lambda config, target: "request")
    change = SimpleNamespace(address="t", cost_usd=0.1)
    target = SimpleNamespace(address="t", provider="p")

    async def main() -> None:
        task = asyncio.ensure_future(applier._generate(change, target))
        for delay in cancels:
            await asyncio.sleep(delay)
            task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)

    asyncio.run(main())
    applier._disk.shutdown(wait=True)
    report: ApplyReport = applier.report
    return report


@pytest.mark.parametrize("cancels", [[0.1], [0.1, 0.1], [0.05, 0.05, 0.05]])
def test_a_write_under_way_finishes_and_is_reported_generated_once(
    monkeypatch: pytest.MonkeyPatch, cancels: list[float]
) -> None:
    written: list[int] = []

    def store() -> int:
        time.sleep(0.5)
        written.append(1)
        return 1

    applier, limiter = _applier(store)
    report = _cancel_during_store(applier, cancels, monkeypatch)

    assert written == [1]
    assert (report.generated, report.abandoned, report.skipped) == (["t"], [], [])
    assert limiter.released == 1


def test_a_write_failing_under_a_second_ctrl_c_is_reported_failed_not_abandoned(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def store() -> int:
        time.sleep(0.3)
        raise PromptformError("cannot store them: disk full; the images were kept in x")

    applier, limiter = _applier(store)
    report = _cancel_during_store(applier, [0.1], monkeypatch)

    assert [failure.address for failure in report.failures] == ["t"]
    assert report.abandoned == [] and report.generated == []
    assert limiter.released == 1
