"""`promptform preview`: apply the changed targets in a scratch copy and build its gallery."""

from __future__ import annotations

from pathlib import Path

from promptform.core.config import Config
from promptform.core.error_handler import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK
from promptform.core.output import Output
from promptform.engine.plan_format import count_text, format_text
from promptform.review.preview import PreviewOptions
from promptform.review.preview import preview as run_preview


def preview(config: Config, output: Output, scratch: Path, options: PreviewOptions) -> int:
    result = run_preview(config, scratch, options, output.stderr)
    output.info(format_text(result.plan, color=False).rstrip())
    report = result.report
    output.info(
        f"Preview: {len(report.generated)} generated, {count_text(report.images, 'image')}, "
        f"${report.cost_usd:.2f}; the project itself was not changed."
    )
    for failure in report.failures:
        output.info(f"  {failure.address}: {failure.message}")
    output.info(f"Scratch project: {result.project}")
    output.result(str(result.gallery_dir / "index.html"))
    if report.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_ERROR if report.failures else EXIT_OK
