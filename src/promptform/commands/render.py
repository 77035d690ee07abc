"""`promptform render`: the exact requests that apply would send."""

from __future__ import annotations

import json
from typing import Any

from promptform.core.config import Config
from promptform.core.error_handler import EXIT_OK
from promptform.core.output import Output
from promptform.engine.project import load_project
from promptform.manifests.addresses import matching_addresses, path_aliases
from promptform.manifests.rendered import describe_request
from promptform.manifests.targets import Target


def render(config: Config, output: Output, addresses: tuple[str, ...], as_json: bool) -> int:
    project = load_project(config)
    for warning in project.warnings:
        output.warning(warning)
    chosen = select_targets(project.targets, addresses, config)
    requests = [describe_request(target, config) for target in chosen]
    if as_json:
        output.result(json.dumps(requests, indent=2, ensure_ascii=False))
    else:
        output.result("\n".join(_as_text(request) for request in requests) or "no targets")
    return EXIT_OK


def select_targets(
    targets: list[Target], patterns: tuple[str, ...], config: Config
) -> list[Target]:
    """Targets matched by one of `patterns` (all when none given); a pattern matching none is an error."""
    if not patterns:
        return targets
    prompts_dir, outputs_dir = config.project.prompts_dir, config.project.outputs_dir
    chosen = set(
        matching_addresses(
            [target.address for target in targets],
            patterns,
            lambda pattern, suggestion: (
                f"no target matches '{pattern}'; "
                + (f"did you mean '{suggestion}'? " if suggestion else "")
                + "`promptform render` with no argument lists them all"
            ),
            {
                target.address: path_aliases(target.file, target.outputs, prompts_dir, outputs_dir)
                for target in targets
            },
        )
    )
    return [target for target in targets if target.address in chosen]


def _as_text(request: dict[str, Any]) -> str:
    lines = [
        f"# {request['address']}  ({request['source']})",
        f"POST {request['url']}  [{request['provider']}, {request['content_type']}]",
    ]
    lines += [
        f"  {key}: {json.dumps(value, ensure_ascii=False)}"
        for key, value in request["body"].items()
        if key != "prompt"
    ]
    for item in request["files"]:
        lines.append(f"  {item['field']}: @{item['path']}")
    lines.append("  prompt: |")
    lines += [f"    {line}" if line else "" for line in request["body"]["prompt"].split("\n")]
    lines.append("  outputs: " + ", ".join(request["outputs"]))
    return "\n".join(lines) + "\n"
