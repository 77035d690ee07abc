"""`promptform plan`: what apply would generate, why, and what it would cost."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from promptform.core.config import Config
from promptform.core.error_handler import EXIT_CHANGES, EXIT_OK
from promptform.core.gc_pause import gc_paused
from promptform.core.output import Output
from promptform.engine.plan import check_budget, compute_plan
from promptform.engine.plan_format import format_json, format_markdown, format_text
from promptform.engine.plan_model import PlanOptions

if TYPE_CHECKING:
    from promptform.engine.base_config import BaseConfig


def plan(
    config: Config,
    output: Output,
    options: PlanOptions,
    plan_format: str = "text",
    out: Path | None = None,
    detailed_exitcode: bool = False,
    base_config: str | None = None,
) -> int:
    """With `base_config` (a git ref), refuses as `apply --base-config` would."""
    base = None
    if base_config is not None:
        # Only here: it reads git, which plan otherwise never needs.
        from promptform.engine.base_config import pin_to_base

        base = pin_to_base(config, base_config)
    # Every object a plan builds lives until it is printed. Once loading had the collector paused,
    # the collections that followed walked all of those objects again (a sixth of a no-op plan
    # on 10,000 targets); the plan's own garbage is freed by reference counting when it returns.
    with gc_paused():
        return _plan(config, output, options, plan_format, out, detailed_exitcode, base)


def _plan(
    config: Config,
    output: Output,
    options: PlanOptions,
    plan_format: str,
    out: Path | None,
    detailed_exitcode: bool,
    base: BaseConfig | None,
) -> int:
    project, _, result = compute_plan(config, options)
    for warning in project.warnings:
        output.warning(warning)
    if plan_format == "json":
        output.result(format_json(result))
    elif plan_format == "markdown":
        output.result(format_markdown(result))
    else:
        output.result(format_text(result, color=output.color))
    # Rescued images and missing keys matter only to what apply would pay for: a no-op plan (the
    # pre-commit hook's usual run) imports neither check.
    generates = bool(result.generating_fingerprints())
    if generates:
        from promptform.commands.rescued import offer_rescued

        offer_rescued(config, output, result)
    # The plan is printed first so that a refusal can be read next to what caused it.
    check_budget(result.summary(), config.budget.max_images, config.budget.max_cost)
    if base is not None:
        from promptform.engine.pull_request_budget import (
            check_pull_request_budget,
            describe_spent,
        )

        spent = check_pull_request_budget(config, base, result.summary(), "this plan")
        if spent is not None:
            output.info(describe_spent(config, base, spent, result.summary()))
    if out is not None:
        from promptform.engine.saved_plan import save_plan

        save_plan(result, out)
        output.info(f"Saved the plan to {out}; apply exactly it with `promptform apply {out}`.")
    # plan never needs a key; saying now which one apply will need saves a failed apply.
    if generates:
        from promptform.engine.credentials import key_notes

        for note in key_notes(config, result, os.environ):
            output.info(note)
    return EXIT_CHANGES if detailed_exitcode and result.needs_attention else EXIT_OK
