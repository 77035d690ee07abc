"""Offering rescued images back: before paying for a target, say where its paid bytes already are."""

from __future__ import annotations

from promptform.core.config import Config
from promptform.core.errors import display_path
from promptform.core.output import Output
from promptform.engine.plan_model import Plan
from promptform.state.rescued import rescues_for


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
