"""`promptform adopt`: record images made elsewhere as a target's current outputs."""

from __future__ import annotations

from pathlib import Path

from promptform.core.config import Config
from promptform.core.error_handler import EXIT_OK
from promptform.core.errors import PromptformError
from promptform.core.output import Output
from promptform.review.adopt import adopt as run_adopt
from promptform.review.adopt import adopt_rescued


def adopt(
    config: Config,
    output: Output,
    address: str,
    files: tuple[Path, ...],
    source: str,
    cost_usd: float | None,
    rescued: Path | None = None,
) -> int:
    if rescued is not None:
        if files:
            raise PromptformError("give either FILES or --rescued FOLDER to adopt, not both")
        adopted = adopt_rescued(config, address, rescued)
        source = "rescued"
    elif not files:
        raise PromptformError(
            "adopt needs the image files (one per output), or --rescued FOLDER "
            "for images apply kept in .promptform/rescued/"
        )
    else:
        adopted = run_adopt(config, address, files, source, cost_usd)
    for warning in adopted.warnings:
        output.info(f"warning: {warning}")
    prefix = config.project.outputs_dir.strip("/")
    for item in adopted.entry.outputs:
        output.info(f"  {prefix}/{item.path}  {item.format} {item.width}x{item.height}")
    output.result(
        f"Adopted {len(adopted.entry.outputs)} image(s) as '{adopted.address}' "
        f"(provider: adopted/{source}); `promptform plan` now shows it unchanged."
    )
    return EXIT_OK
