"""Previews before merge: apply the changed targets in a scratch copy of the project, never in it.

The copy gets the config, manifests, templates, lockfile, outputs and reference images; apply runs there
(optionally at a cheaper quality), and the gallery compares the copy with the original. Nothing under
the project is written: not the lockfile, not an output, not .promptform/.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from promptform.core.config import Config, load_config
from promptform.core.errors import PromptformError
from promptform.core.fingerprint import fingerprint
from promptform.core.model_rules import KNOWN_MODELS
from promptform.core.pricing import request_cost
from promptform.engine.apply import check_budget, run_apply
from promptform.engine.apply_model import ApplyOptions, ApplyReport
from promptform.engine.apply_progress import LineProgress
from promptform.engine.plan import compute_plan, lock_shards
from promptform.engine.plan_model import Change, Plan, PlanOptions
from promptform.engine.project import load_project
from promptform.gitops.gitrepo import source_state
from promptform.manifests.targets import Target
from promptform.review.report import DirectorySnapshot, Gallery, write_report
from promptform.review.report_html import render_html
from promptform.state.apply_lock import apply_lock
from promptform.state.lockfile import backup_path
from promptform.state.lockfile_writer import LockfileWriter

MARKER = ".promptform-preview"
KEPT_DIRS = ("trash", "rescued")  # under the state directory: images kept by apply and gc


@dataclass(frozen=True)
class PreviewOptions:
    quality: str | None = None  # e.g. low: cheaper pixels, same composition
    targets: tuple[str, ...] = ()
    provider: str | None = None
    max_images: int | None = None
    max_cost: float | None = None
    concurrency: int | None = None


@dataclass(frozen=True)
class PreviewResult:
    project: Path  # the scratch copy, applied
    gallery_dir: Path
    plan: Plan
    report: ApplyReport
    gallery: Gallery


def preview(
    config: Config,
    scratch: Path,
    options: PreviewOptions,
    stderr: TextIO,
    environ: Mapping[str, str] | None = None,
) -> PreviewResult:
    scratch = _prepare(config, scratch)
    copy_root = scratch / "project"
    copy_project(config, copy_root)
    copied = load_config(copy_root, copy_root / config.source.name if config.source else None)
    project, lockfile, plan = compute_plan(
        copied, PlanOptions(options.targets, provider=options.provider)
    )
    plan = with_quality(plan, options.quality, copied)
    copied = copied.with_provider(plan.options.provider)
    apply_options = ApplyOptions(
        concurrency=options.concurrency,
        max_images=options.max_images,
        max_cost=options.max_cost,
        source_commit=_source_commit(config),
    )
    check_budget(plan, copied, apply_options)
    with apply_lock(copied.state_dir):
        writer = LockfileWriter(copied.lockfile, lockfile, lock_shards(project))
        report = run_apply(
            copied, plan, writer, LineProgress(stderr), apply_options, environ or os.environ
        )
    gallery_dir = scratch / "gallery"
    gallery = write_report(
        copied, gallery_dir, DirectorySnapshot(config, "the current images"), render_html
    )
    return PreviewResult(copy_root, gallery_dir, plan, report, gallery)


def _prepare(config: Config, scratch: Path) -> Path:
    """An empty scratch directory (a previous preview there is replaced), outside the project."""
    scratch = scratch.resolve()
    root = config.root.resolve()
    state = config.state_dir.resolve()
    if scratch.is_relative_to(root) and not scratch.is_relative_to(state):
        raise PromptformError(
            f"the preview directory {scratch} is inside the project; use a directory outside it "
            "(e.g. $RUNNER_TEMP/preview) or under .promptform/"
        )
    # A previous preview's directory is deleted whole: never the one holding trash and rescues.
    if scratch == state or any(scratch.is_relative_to(state / kept) for kept in KEPT_DIRS):
        raise PromptformError(
            f"the preview directory {scratch} holds promptform's own state (trash, rescued "
            "images); give the preview a folder of its own, e.g. .promptform/preview"
        )
    if scratch.is_dir() and any(scratch.iterdir()):
        if not (scratch / MARKER).is_file():
            raise PromptformError(
                f"{scratch} is not empty and holds no previous preview; choose an empty directory"
            )
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    (scratch / MARKER).write_text("made by `promptform preview`; safe to delete\n", "utf-8")
    return scratch


def copy_project(config: Config, destination: Path) -> None:
    """Copy what a plan and apply read: config, manifests, templates, lockfile, outputs, inputs."""
    root = config.root
    project = load_project(config)
    destination.mkdir(parents=True)
    if config.source is not None:
        shutil.copy2(config.source, destination / config.source.name)
    for directory in (config.prompts_dir, config.templates_dir):
        if directory.is_dir():
            shutil.copytree(directory, destination / directory.relative_to(root), symlinks=True)
    _copy_lock(config, destination / config.project.lockfile)
    if config.outputs_dir.is_dir():
        # Hard links, not copies: apply only ever replaces an output by renaming a new file over
        # it, so the original's inode is never written, and a large outputs folder costs nothing.
        shutil.copytree(
            config.outputs_dir,
            destination / config.project.outputs_dir,
            copy_function=_link_or_copy,
        )
    for target in project.targets:
        for item in target.inputs:
            source, copy = root / item.path, destination / item.path
            if source.is_file() and not copy.exists():
                _place(source, copy)


def _copy_lock(config: Config, destination: Path) -> None:
    """The lock in whichever layout it is; a migration cut short leaves only the backup."""
    source = config.lockfile
    if source.is_dir():
        shutil.copytree(source, destination, symlinks=True)
    elif source.is_file():
        _place(source, destination)
    elif backup_path(source).is_file():
        _place(backup_path(source), backup_path(destination))


def _place(source: Path, destination: Path) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, destination)


def _link_or_copy(source: str, destination: str) -> None:
    try:
        os.link(source, destination)
    except OSError:  # another file system
        shutil.copy2(source, destination)


def with_quality(plan: Plan, quality: str | None, config: Config) -> Plan:
    """The plan with every generation asked at `quality` (where the model has it), re-priced."""
    if quality is None:
        return plan
    changes = tuple(_at_quality(change, quality, config) for change in plan.changes)
    return dataclasses.replace(plan, changes=changes)


def _at_quality(change: Change, quality: str, config: Config) -> Change:
    target = change.target
    if not change.generates or target is None:
        return change
    rules = KNOWN_MODELS.get(target.model)
    if rules is None or quality not in rules.qualities:
        return change  # an unknown model might reject it; preview at the manifest's quality
    body = {**target.body, "quality": quality}
    cheaper: Target = dataclasses.replace(
        target,
        body=body,
        fingerprint=fingerprint(
            target.provider_kind,
            target.endpoint,
            body,
            ((item.role, item.sha256 or f"pending:{item.path}") for item in target.inputs),
        ),
    )
    cost = 0.0 if target.provider_kind == "offline" else request_cost(body, config.pricing)
    return dataclasses.replace(change, target=cheaper, cost_usd=cost)


def _source_commit(config: Config) -> str | None:
    return source_state(config.root, [config.project.prompts_dir]).commit
