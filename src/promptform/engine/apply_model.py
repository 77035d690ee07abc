"""The values an apply is described by: its options, its report and the observer it tells.

apply.py and its helpers (moves.py, sending.py, storing.py) fill the report; apply_progress.py
prints it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from promptform.engine.plan_model import Change, Plan

if TYPE_CHECKING:
    from promptform.core.config import Budget


@dataclass(frozen=True)
class ApplyOptions:
    concurrency: int | None = None  # overrides every provider's `concurrency`
    max_images: int | None = None
    max_cost: float | None = None
    source_commit: str | None = None

    def budget(self, config: Budget) -> tuple[int | None, float | None]:
        """(max images, max cost): --max-images/--max-cost, else the config's [budget]."""
        max_images = self.max_images if self.max_images is not None else config.max_images
        max_cost = self.max_cost if self.max_cost is not None else config.max_cost
        return max_images, max_cost


@dataclass(frozen=True)
class Failure:
    address: str
    message: str


@dataclass
class ApplyReport:
    generated: list[str] = field(default_factory=list)
    moved: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # not started because of Ctrl-C
    # Sent, then abandoned by a second Ctrl-C before an answer was recorded: possibly billed.
    abandoned: list[str] = field(default_factory=list)
    rescued: list[str] = field(default_factory=list)
    images: int = 0
    cost_usd: float = 0.0
    interrupted: bool = False


class ApplyObserver(Protocol):
    def started(self, plan: Plan) -> None: ...
    def finished_target(self, change: Change, report: ApplyReport) -> None: ...
    def failed_target(self, change: Change, message: str, report: ApplyReport) -> None: ...
    def retrying(self, change: Change, attempt: int, delay: float, message: str) -> None: ...
    def stopping(self, in_flight: int) -> None: ...
