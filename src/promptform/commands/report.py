"""`promptform report`: the gallery (HTML folder) or the "images generated" comment (markdown)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from promptform.core.config import Config, load_config
from promptform.core.error_handler import EXIT_OK
from promptform.core.errors import PromptformError, display_path
from promptform.core.output import Output
from promptform.gitops import gitrepo
from promptform.review.report import (
    DirectorySnapshot,
    GitSnapshot,
    Snapshot,
    collect,
    default_base_or_hint,
    write_report,
)
from promptform.review.report_html import render_html
from promptform.review.report_markdown import Links, check_links, render_markdown


@dataclass(frozen=True)
class ReportRequest:
    out: Path | None = None
    base: str | None = None  # a commit-ish; None: the default (merge base with main on a branch)
    no_base: bool = False
    base_dir: Path | None = None  # compare with another checkout instead of git history
    markdown: bool = False
    repo: str | None = None
    commit: str | None = None
    artifact_url: str | None = None


def report(config: Config, output: Output, request: ReportRequest) -> int:
    base = _base(config, request, output)
    if request.markdown:
        output.result(_markdown(config, base, request))
        return EXIT_OK
    out = request.out or config.state_dir / "report"
    gallery = write_report(config, out, base, render_html)
    images = sum(len(card.pictures) for card in gallery.cards)
    compared = f", {len(gallery.changed)} changed since {gallery.base_label}" if base else ""
    output.info(f"Gallery of {len(gallery.cards)} targets, {images} images{compared}:")
    output.result(str((out / "index.html").resolve()))
    return EXIT_OK


def _base(config: Config, request: ReportRequest, output: Output) -> Snapshot | None:
    if request.no_base:
        return None
    if request.base_dir is not None:
        other = load_config(request.base_dir)
        return DirectorySnapshot(other, display_path(request.base_dir, config.root))
    if request.base is not None:
        return GitSnapshot(config, request.base)
    base, hint = default_base_or_hint(config)
    if hint:
        output.info(f"note: {hint}")
    return base


def _markdown(config: Config, base: Snapshot | None, request: ReportRequest) -> str:
    links = None
    prefix = None
    if request.repo is not None:
        commit = request.commit or gitrepo.resolve_commit(config.root, "HEAD")
        check_links(request.repo, commit)
        base_commit = base.commit if isinstance(base, GitSnapshot) else None
        links = Links(request.repo, commit, base_commit=base_commit)
        prefix = gitrepo.repo_path(config.root, config.outputs_dir)
    elif request.commit is not None:
        raise PromptformError("--commit needs --repo OWNER/NAME to link the images")
    return render_markdown(collect(config, base, prefix), links, request.artifact_url)
