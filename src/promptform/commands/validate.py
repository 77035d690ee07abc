"""`promptform validate`: load every manifest and report every problem."""

from __future__ import annotations

from promptform.core.config import Config
from promptform.core.error_handler import EXIT_OK
from promptform.core.output import Output
from promptform.engine.project import load_project


def validate(config: Config, output: Output) -> int:
    # The render cache answers unchanged files: it stores only what expanding them found, warnings
    # included, and a file with problems is never stored, so every problem is still reported.
    project = load_project(config, use_cache=True)
    for warning in project.warnings:
        output.warning(warning)
    files = f"{project.manifest_files} file{'s' if project.manifest_files != 1 else ''}"
    manifests = f"{project.manifests} manifest{'s' if project.manifests != 1 else ''}"
    targets = f"{len(project.targets)} target{'s' if len(project.targets) != 1 else ''}"
    output.info(f"ok: {manifests} in {files}, {targets}")
    return EXIT_OK
