"""`promptform cost`: spend and token usage from the lockfile and its history."""

from __future__ import annotations

import json

from promptform.core.config import Config
from promptform.core.error_handler import EXIT_OK
from promptform.core.errors import PromptformError
from promptform.core.output import Output
from promptform.review.cost import (
    By,
    format_table,
    generated_since,
    manifest_groups,
    spend_as_dict,
    summarize,
)


def cost(config: Config, output: Output, since: str | None, by: By, as_json: bool) -> int:
    generated = generated_since(config, since)
    groups: dict[str, str] | None = None
    if by == "manifest":
        try:
            groups = manifest_groups(config)
        except PromptformError as exc:
            output.info(f"warning: manifests could not be loaded ({exc}); grouping by name")
    spend = summarize(generated, by, groups, since)
    if as_json:
        output.result(json.dumps(spend_as_dict(spend), indent=2))
    else:
        output.result(format_table(spend))
    return EXIT_OK
