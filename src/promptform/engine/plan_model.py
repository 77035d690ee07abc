"""The values a plan is made of: changes and the plan itself (drift is state.drift's). No logic beyond sums.

plan.py computes them, plan_format.py prints them, apply.py carries them out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from promptform.manifests.targets import Target
from promptform.state.drift import Drift, OutputsDirChange
from promptform.state.lockfile import LockEntry

Action = Literal["create", "replace", "move", "delete", "no-op"]


@dataclass(frozen=True)
class PlanOptions:
    targets: tuple[str, ...] = ()  # --target patterns; empty: everything
    replace: tuple[str, ...] = ()  # --replace addresses
    repair: bool = False  # regenerate missing outputs
    verify: bool = False  # hash every output instead of trusting size + mtime
    provider: str | None = None  # --provider: send every target to this provider
    batch: bool = False  # --batch: price generations at the Batch API's discount


@dataclass(frozen=True)
class Change:
    """What apply will do for one address, and why."""

    address: str
    action: Action
    reasons: tuple[str, ...]
    target: Target | None  # None for delete
    entry: LockEntry | None  # the current lock entry; None for create
    moved_from: str | None = None  # old address when a manifest was renamed
    renames: tuple[tuple[str, str], ...] = ()  # (old, new) output paths under outputs_dir
    images: int = 0  # images apply will pay for
    cost_usd: float | None = 0.0  # None: a price is unknown
    # For an offline preview: the paid provider it stands in for, and what that would cost.
    paid_provider: str | None = None
    paid_cost_usd: float | None = None
    assumed_quality: str | None = None  # the quality priced when the request sets none

    @property
    def cost_if_paid(self) -> float | None:
        """What this change costs with the paid provider (its own cost unless offline)."""
        return self.paid_cost_usd if self.paid_provider else self.cost_usd

    @property
    def generates(self) -> bool:
        return self.action in ("create", "replace")


@dataclass(frozen=True)
class PendingTarget:
    """A target submitted in a batch and not collected yet.

    Not stale: its manifest still asks for what was submitted, so the plan neither creates nor
    replaces it. Stale: the manifest changed since; the plan generates it again and the batch's
    result goes to the trash when collected.
    """

    address: str
    batch_id: str | None  # None while the submission's batch is being created
    submission_id: str
    fingerprint: str
    submitted_at: str
    stale: bool


@dataclass(frozen=True)
class UnstartedBatch:
    """A submission whose input file was uploaded and whose batch was never created.

    `apply --batch` creates it, paid, after its plan is approved and within its budget, and only
    when this machine wrote its input: a submission file can come from someone else's branch.
    """

    submission_id: str
    provider: str
    endpoint: str
    submitted_at: str
    requests: int  # the submission's request lines
    images: int
    cost_usd: float | None  # at the batch price; None when a price is unknown


@dataclass(frozen=True)
class Summary:
    create: int
    replace: int
    move: int
    delete: int
    unchanged: int
    images: int
    estimated_cost_usd: float | None  # None when some price is unknown
    # When offline previews are planned: the paid provider and the whole plan's cost with it.
    paid_provider: str | None = None
    paid_estimated_cost_usd: float | None = None
    pending: int = 0  # targets waiting in a batch for what their manifest still asks


@dataclass(frozen=True)
class Plan:
    changes: tuple[Change, ...]  # every address, no-ops included, in apply order
    drift: tuple[Drift, ...]
    options: PlanOptions
    lock_hash: str
    fingerprints: dict[str, str] = field(
        default_factory=dict
    )  # address -> fingerprint, all targets
    # `path_key`s of every current target's outputs, whatever --target selects: apply never
    # trashes one as another's old output.
    target_paths: frozenset[str] = frozenset()
    # Not one recorded output is under outputs_dir (it was changed): reported, never regenerated.
    outputs_dir_change: OutputsDirChange | None = None
    # Targets submitted in a batch and not collected (stale ones too), in address order.
    pending: tuple[PendingTarget, ...] = ()
    # Submissions with no batch yet, which `apply --batch` would create (and pay for).
    unstarted: tuple[UnstartedBatch, ...] = ()

    @property
    def waiting(self) -> tuple[PendingTarget, ...]:
        """The pending targets that are not stale: the plan leaves them to their batch."""
        return tuple(item for item in self.pending if not item.stale)

    @property
    def actionable(self) -> tuple[Change, ...]:
        return tuple(change for change in self.changes if change.action != "no-op")

    def generating_fingerprints(self) -> dict[str, str]:
        """address -> fingerprint of every change that would pay for images."""
        return {
            change.address: change.target.fingerprint
            for change in self.changes
            if change.generates and change.target is not None
        }

    @property
    def has_changes(self) -> bool:
        return bool(self.actionable)

    @property
    def needs_attention(self) -> bool:
        """Changes to apply, or an outputs_dir change to resolve: what --detailed-exitcode reports."""
        return self.has_changes or self.outputs_dir_change is not None

    def summary(self) -> Summary:
        # Counted once: a plan is immutable, and a run asks several times (10,000 changes each).
        # In __dict__ directly, as functools.cached_property does on a frozen instance.
        cached: Summary | None = self.__dict__.get("_summary")
        if cached is None:
            cached = self.__dict__["_summary"] = self._counted()
        return cached

    def _counted(self) -> Summary:
        counts = dict.fromkeys(("create", "replace", "move", "delete", "no-op"), 0)
        images = 0
        cost: float | None = 0.0
        paid_cost: float | None = 0.0
        paid_provider = None
        for change in self.changes:
            counts[change.action] += 1
            images += change.images
            if change.cost_usd is None:
                cost = None
            elif cost is not None:
                cost += change.cost_usd
            paid_provider = paid_provider or change.paid_provider
            if change.cost_if_paid is None:
                paid_cost = None
            elif paid_cost is not None:
                paid_cost += change.cost_if_paid
        return Summary(
            create=counts["create"],
            replace=counts["replace"],
            move=counts["move"],
            delete=counts["delete"],
            unchanged=counts["no-op"],
            images=images,
            estimated_cost_usd=round(cost, 4) if cost is not None else None,
            paid_provider=paid_provider,
            paid_estimated_cost_usd=(
                round(paid_cost, 4) if paid_provider and paid_cost is not None else None
            ),
            pending=len(self.waiting),
        )
