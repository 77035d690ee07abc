"""`promptform apply`: plan (or load a saved plan), confirm, then generate what changed."""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from promptform.commands.rescued import offer_rescued, record_rescued
from promptform.core.config import Config
from promptform.core.error_handler import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK
from promptform.core.errors import PromptformError, display_path
from promptform.core.output import Output
from promptform.engine.apply import check_budget, run_apply
from promptform.engine.apply_model import ApplyOptions, ApplyReport
from promptform.engine.apply_progress import BarProgress, LineProgress
from promptform.engine.base_config import BaseConfig, pin_to_base
from promptform.engine.credentials import require_keys
from promptform.engine.plan import compute_plan, lock_shards
from promptform.engine.plan_format import count_text, format_text
from promptform.engine.plan_model import Plan, PlanOptions, Summary
from promptform.engine.project import Project
from promptform.engine.pull_request_budget import check_pull_request_budget, describe_spent
from promptform.engine.saved_plan import check_fresh, load_saved_plan
from promptform.gitops.gitrepo import source_state
from promptform.state.apply_lock import apply_lock
from promptform.state.lockfile import Lockfile
from promptform.state.lockfile_writer import LockfileWriter
from promptform.state.outputs import recover_stepped_aside

Confirm = Callable[[str], bool]


@dataclass(frozen=True)
class ApplyRequest:
    plan_file: Path | None
    plan_options: PlanOptions
    options: ApplyOptions
    yes: bool
    commit: bool = False  # --commit: commit the changed outputs and lockfile
    push: bool = False  # --push: also push, rebasing on a rejection (implies --commit)
    # --base-config REF: providers, pricing and budgets must be REF's (a pull request's config is
    # untrusted), and the per-pull-request budget counts what the branch generated since REF.
    base_config: str | None = None


def apply(config: Config, output: Output, request: ApplyRequest, confirm: Confirm | None) -> int:
    """`confirm` asks the user (None: no terminal to ask on)."""
    # First of all: nothing, not even adopting rescued images, runs on a config that fails this.
    base = pin_to_base(config, request.base_config) if request.base_config else None
    with apply_lock(config.state_dir):
        if request.plan_file is not None:
            saved = load_saved_plan(request.plan_file)
            project, lockfile, plan = compute_plan(config, saved.options)
            check_fresh(saved, plan)
            require_keys(config, plan, os.environ)
            writer = _tidy_lock(config, project, lockfile, output)
        else:
            # Finished batches first: their images are recorded, not planned again.
            from promptform.commands.batch import collect_before_apply

            collect_before_apply(config, output)
            project, lockfile, plan = compute_plan(config, request.plan_options)
            writer = _tidy_lock(config, project, lockfile, output)
            # An image an interrupted apply left aside is put back before it is planned again.
            if _recover_stepped_aside(config, plan, writer, output):
                project, lockfile, plan = compute_plan(config, request.plan_options)
                writer = LockfileWriter(config.lockfile, lockfile, lock_shards(project))
            # Images already paid for one of these exact requests are recorded, not bought again;
            # the plan is made again only then. (A saved plan is applied as it was reviewed: there
            # they are only offered.)
            if record_rescued(config, output, plan):
                project, lockfile, plan = compute_plan(config, request.plan_options)
                writer = LockfileWriter(config.lockfile, lockfile, lock_shards(project))
            # Before the plan is shown and approved: a missing key found after is a wasted review.
            require_keys(config, plan, os.environ)
            output.result(format_text(plan, color=output.color))
            offer_rescued(config, output, plan)
            if not plan.has_changes:
                return _publish_layout(config, output, request, writer)
            if not request.yes:
                if confirm is None:
                    raise PromptformError(
                        "apply needs confirmation and there is no terminal to ask on: pass --yes, "
                        "or save a reviewed plan with `plan --out FILE` and `apply FILE`"
                    )
                if not confirm("Apply these changes? Only 'yes' is accepted"):
                    output.info("Apply cancelled.")
                    return EXIT_OK
        plan = _without_waiting_on_batches(plan, output)
        if not plan.has_changes:
            output.info("No changes.")
            return _publish_layout(config, output, request, writer)
        config = config.with_provider(plan.options.provider)
        check_budget(plan, config, request.options)
        if base is not None:
            enforce_pull_request_budget(config, base, plan, output)
        options = with_source_commit(config, request.options, output)
        progress = (
            BarProgress(output.stderr) if is_tty(output.stderr) else LineProgress(output.stderr)
        )
        try:
            report = run_apply(config, plan, writer, progress, options, os.environ)
        finally:
            progress.close()
        code = summarise_report(report, config, output)
        # Still under the lock: a rebase rewrites the lockfile that another apply would write.
        return publish_results(config, output, request, report, code)


def _tidy_lock(
    config: Config, project: Project, lockfile: Lockfile, output: Output
) -> LockfileWriter:
    """Before apply writes anything: convert a version 1 lockfile into shards, and move the
    entries of renamed or moved manifest files to their new shards. Neither changes an entry."""
    writer = LockfileWriter(config.lockfile, lockfile, lock_shards(project))
    writer.relocate()
    if writer.migrated:
        shown = display_path(config.lockfile, config.root)
        output.info(
            f"{shown} is now a directory with one lock file per manifest (lock version 2); "
            f"commit it whole (`git add --all {shown}`)"
        )
    return writer


def _recover_stepped_aside(
    config: Config, plan: Plan, writer: LockfileWriter, output: Output
) -> bool:
    """Whether images a killed apply left at `<output>.promptform-moving` names were found for
    outputs the plan sees missing (and put back, or recorded where they are)."""
    missing = {item.address for item in plan.drift if item.kind == "missing"}
    if not missing or not recover_stepped_aside(config.outputs_dir, writer, missing):
        return False
    output.info("Put back images an interrupted apply had left aside.")
    return True


def _publish_layout(
    config: Config, output: Output, request: ApplyRequest, writer: LockfileWriter
) -> int:
    """Nothing to generate, yet the lock was converted or re-sharded: commit that when asked, or a
    CI checkout would convert it again on every run and never keep it."""
    if (writer.migrated or writer.relocated) and (request.commit or request.push):
        from promptform.gitops.publish import publish

        publish(config, output, push_too=request.push)
    return EXIT_OK


def _without_waiting_on_batches(plan: Plan, output: Output) -> Plan:
    from promptform.engine.batch_submit import waiting_on_batches

    waiting = waiting_on_batches(plan)
    if not waiting:
        return plan
    output.info(
        f"{count_text(len(waiting), 'target')} left for later: a reference image is pending in a "
        f"batch (`promptform batch collect`, then apply again): {', '.join(waiting[:5])}"
        + (f" and {len(waiting) - 5} more" if len(waiting) > 5 else "")
    )
    skipped = set(waiting)
    changes = tuple(change for change in plan.changes if change.address not in skipped)
    return dataclasses.replace(plan, changes=changes)


def enforce_pull_request_budget(
    config: Config, base: BaseConfig, plan: Plan, output: Output, summary: Summary | None = None
) -> None:
    """`summary`: what the run spends, when more than the plan's changes (batch mode)."""
    summary = summary or plan.summary()
    spent = check_pull_request_budget(config, base, summary)
    if spent is not None:
        output.info(describe_spent(config, base, spent, summary))


def publish_results(
    config: Config, output: Output, request: ApplyRequest, report: ApplyReport, code: int
) -> int:
    # What completed is committed even when other targets failed: it was paid for, and a CI
    # checkout that is thrown away would lose it. An interrupted run is left for the user.
    if not (request.commit or request.push) or report.interrupted:
        return code
    from promptform.gitops.publish import publish

    publish(config, output, push_too=request.push)
    return code


def with_source_commit(config: Config, options: ApplyOptions, output: Output) -> ApplyOptions:
    watched = [config.project.prompts_dir, config.project.templates_dir]
    if config.source is not None:
        watched.append(config.source.name)
    state = source_state(config.root, watched)
    if state.dirty_paths:
        output.info(
            f"warning: {len(state.dirty_paths)} manifest/template/config file(s) have uncommitted "
            f"changes (e.g. {state.dirty_paths[0]}); source_commit will not describe them exactly"
        )
    return dataclasses.replace(options, source_commit=state.commit)


def summarise_report(report: ApplyReport, config: Config, output: Output) -> int:
    done = (
        f"Apply complete: {len(report.generated)} generated, {len(report.moved)} moved, "
        f"{len(report.deleted)} deleted; {count_text(report.images, 'image')}, ${report.cost_usd:.2f}."
    )
    if report.interrupted:
        done = done.replace("Apply complete", "Apply interrupted")
    output.info(done)
    for path in report.rescued:
        output.info(
            f"paid-for images that could not be recorded were kept in {path} (see promptform adopt --rescued)"
        )
    if report.abandoned:
        shown = ", ".join(sorted(report.abandoned)[:10]) + (
            ", ..." if len(report.abandoned) > 10 else ""
        )
        output.info(
            f"{len(report.abandoned)} request(s) were sent and abandoned before an answer came "
            f"back ({shown}): the provider may have billed them; run apply again to generate them"
        )
    if report.skipped:
        output.info(f"{len(report.skipped)} target(s) not started; run apply again to finish them")
    if report.failures:
        output.info(f"{len(report.failures)} target(s) failed:")
        for failure in report.failures:
            output.info(f"  {failure.address}: {failure.message}")
    output.info(f"lockfile: {config.lockfile}; images under {config.outputs_dir}/")
    if report.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_ERROR if report.failures else EXIT_OK


def is_tty(stream: object) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and os.environ.get("TERM") != "dumb"


def terminal_confirm() -> Confirm | None:
    """A yes/no prompt on the terminal, or None when stdin is not one."""
    if not sys.stdin.isatty():
        return None

    def ask(question: str) -> bool:
        print(f"\n{question}: ", end="", file=sys.stderr, flush=True)
        return sys.stdin.readline().strip() == "yes"

    return ask
