"""Rescued images back: before paying for a target, record or offer the paid bytes already kept."""

from __future__ import annotations

from promptform.core.config import Config
from promptform.core.errors import PromptformError, display_path
from promptform.core.output import Output
from promptform.engine.plan_model import Plan
from promptform.state.rescued import rescues_for


def record_rescued(config: Config, output: Output, plan: Plan) -> bool:
    """Record the rescued images of every planned generation whose exact request (fingerprint)
    they were paid for, so apply does not pay for it again; whether any was recorded (the plan is
    then out of date). Images that no longer pass adopt's checks are left where they are, and the
    target is generated as planned. The caller holds the apply lock."""
    rescues = rescues_for(config.state_dir, plan.generating_fingerprints())
    if not rescues:
        return False
    # Only when there is something to adopt: adopt brings git, which plan never needs.
    from promptform.review.adopt import adopt_rescued

    recorded = False
    for address, rescue in sorted(rescues.items()):
        shown = display_path(rescue.folder, config.root)
        try:
            adopt_rescued(config, address, rescue.folder, lock_held=True)
        except PromptformError as exc:
            output.info(
                f"{address}: could not record the images kept in {shown}/ ({exc}); generating it"
            )
            continue
        recorded = True
        output.info(
            f"{address}: recorded the images paid for this exact request from {shown}/ "
            "instead of paying again"
        )
    return recorded


def offer_rescued(config: Config, output: Output, plan: Plan) -> None:
    """One line per planned generation whose exact request was already paid for and rescued."""
    for address, rescue in sorted(
        rescues_for(config.state_dir, plan.generating_fingerprints()).items()
    ):
        shown = display_path(rescue.folder, config.root)
        output.info(
            f"{address}: images paid for this exact request were kept in {shown}/; "
            f"`promptform adopt {address} --rescued {shown}` records them instead of paying again"
        )
