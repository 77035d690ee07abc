"""Batch mode: `apply --batch`, `batch status`, `batch collect` and `batch cancel`.

Submitting records each batch in promptform.batches/ (committed); collecting records the images in
promptform.lock as apply does and removes the submission. Both hold the apply lock.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from promptform.commands.apply import (
    ApplyRequest,
    Confirm,
    is_tty,
    publish_results,
    summarise_report,
    with_source_commit,
)
from promptform.core.config import Config
from promptform.core.error_handler import EXIT_ERROR, EXIT_OK
from promptform.core.errors import PromptformError
from promptform.core.output import Output
from promptform.engine.apply import run_apply
from promptform.engine.apply_model import ApplyOptions, ApplyReport
from promptform.engine.apply_progress import BarProgress, LineProgress
from promptform.engine.base_config import pin_to_base
from promptform.engine.batch_api import (
    BatchClients,
    BatchState,
    ClientSet,
    ProviderClients,
    require_batch_provider,
)
from promptform.engine.batch_collect import (
    BatchOutcome,
    CollectOptions,
    CollectReport,
    collect_batches,
)
from promptform.engine.batch_submit import (
    SubmitReport,
    batch_changes,
    batch_summary,
    check_batch_budget,
    finish_interrupted,
    start_unstarted,
    submit_changes,
)
from promptform.engine.credentials import require_keys
from promptform.engine.plan import compute_plan, lock_shards
from promptform.engine.plan_format import age_text, count_text, format_text, format_usd
from promptform.engine.plan_model import Plan
from promptform.engine.project import load_project
from promptform.state.apply_lock import apply_lock
from promptform.state.lockfile import read_lockfile
from promptform.state.lockfile_writer import LockfileWriter
from promptform.state.pending_batches import Submission, read_submissions

T = TypeVar("T")
ClientsFactory = Callable[[Config, Mapping[str, str]], ClientSet]

# How each command opens its Batch API clients (tests swap in an in-memory API).
open_clients: ClientsFactory = ProviderClients


def _with_clients(config: Config, work: Callable[[ClientSet], Awaitable[T]]) -> T:
    """Run `work` in one event loop with clients that are closed when it ends."""

    done: list[T] = []

    async def run() -> None:
        clients = open_clients(config, os.environ)
        try:
            # Kept out of the task's result: when asyncio.run restores the SIGINT handler (Python
            # 3.11), it formats the main task, result included, with repr; the report of a
            # 50,000-target batch made that a transient string of over 100 MB.
            done.append(await work(clients))
        finally:
            await clients.aclose()

    asyncio.run(run())
    return done[0]


def _has_submissions(config: Config) -> bool:
    return config.batches_dir.is_dir() and any(config.batches_dir.glob("*.json"))


# ---------------------------------------------------------------- apply --batch


def apply_batch(
    config: Config, output: Output, request: ApplyRequest, confirm: Confirm | None
) -> int:
    """Plan at the batch price, confirm, move and delete at once, submit the generations."""
    if request.plan_file is not None:
        raise PromptformError(
            "apply --batch plans and submits in one step and takes no PLAN_FILE; run "
            "`promptform apply --batch` (review its plan first with `promptform plan --batch`)"
        )
    base = pin_to_base(config, request.base_config) if request.base_config else None
    if config.batches_dir.exists() and not config.batches_dir.is_dir():
        # Found before anything is uploaded: the submission could not be recorded there.
        shown = config.batches_dir.relative_to(config.root).as_posix()
        raise PromptformError(f"{shown} is not a folder; move it away, batch submissions go there")
    with apply_lock(config.state_dir):
        if _has_submissions(config):
            _with_clients(config, lambda clients: finish_interrupted(config, clients))
        options = dataclasses.replace(request.plan_options, batch=True)
        project, lockfile, plan = compute_plan(config, options)
        config = config.with_provider(plan.options.provider)
        ready, deferred = batch_changes(plan)
        for name in sorted({str(change.target.provider) for change in ready if change.target}):
            require_batch_provider(config, name)
        # Before the plan is shown and approved: a missing key found after is a wasted review.
        require_keys(config, plan, os.environ)
        output.result(format_text(plan, color=output.color))
        if not plan.has_changes and not plan.unstarted:
            return EXIT_OK
        if not request.yes and not _confirmed(confirm, output):
            return EXIT_OK
        check_batch_budget(plan, config, request.options)
        if base is not None:
            from promptform.commands.apply import enforce_pull_request_budget

            enforce_pull_request_budget(config, base, plan, output, batch_summary(plan))
        apply_options = with_source_commit(config, request.options, output)
        writer = LockfileWriter(config.lockfile, lockfile, lock_shards(project))
        code = _move_and_delete(config, output, plan, writer)

        async def submit(clients: BatchClients) -> SubmitReport:
            # Batches a run left uncreated first: they were approved and priced in this plan.
            report = SubmitReport()
            await start_unstarted(config, plan.unstarted, clients, report)
            rest = await submit_changes(config, ready, clients, apply_options.source_commit)
            report.submitted += rest.submitted
            report.failures += rest.failures
            return report

        report = _with_clients(config, submit)
        report.deferred = deferred
        code = max(code, _summarise_submit(report, output))
        return publish_results(config, output, request, ApplyReport(), code)


def _confirmed(confirm: Confirm | None, output: Output) -> bool:
    if confirm is None:
        raise PromptformError(
            "apply --batch needs confirmation and there is no terminal to ask on: pass --yes"
        )
    if confirm("Submit these generations as batches? Only 'yes' is accepted"):
        return True
    output.info("Apply cancelled.")
    return False


def _move_and_delete(config: Config, output: Output, plan: Plan, writer: LockfileWriter) -> int:
    """Moves and deletes happen now; a replaced target keeps its image until it is collected."""
    immediate = tuple(change for change in plan.changes if change.action in ("move", "delete"))
    if not immediate:
        return EXIT_OK
    progress = BarProgress(output.stderr) if is_tty(output.stderr) else LineProgress(output.stderr)
    try:
        report = run_apply(
            config,
            dataclasses.replace(plan, changes=immediate),
            writer,
            progress,
            with_source_commit(config, ApplyOptions(), output),
            os.environ,
        )
    finally:
        progress.close()
    return summarise_report(report, config, output)


def _summarise_submit(report: SubmitReport, output: Output) -> int:
    if report.submitted:
        cost: float | None = 0.0
        for submission in report.submitted:
            for item in submission.targets:
                cost = None if cost is None or item.cost_usd is None else cost + item.cost_usd
        batches = ", ".join(str(submission.batch_id) for submission in report.submitted)
        output.info(
            f"Submitted {count_text(report.requests, 'request')} in "
            f"{len(report.submitted)} batch{'' if len(report.submitted) == 1 else 'es'} "
            f"({batches}), estimated {format_usd(cost)} at the batch price. "
            "`promptform batch status` shows their progress; `promptform batch collect` records "
            "the images once they finish."
        )
    else:
        output.info("Nothing submitted.")
    if report.deferred:
        output.info(
            f"Not submitted yet ({count_text(len(report.deferred), 'target')}), since a reference "
            "image is still being generated; run `promptform apply --batch` again once it is "
            "collected: "
            + ", ".join(report.deferred[:5])
            + (f" and {len(report.deferred) - 5} more" if len(report.deferred) > 5 else "")
        )
    for address, message in report.failures:
        output.info(f"  {address}: not submitted: {message}")
    for message in report.not_started:
        output.info(message)
    return EXIT_ERROR if report.failures or report.not_started else EXIT_OK


# ---------------------------------------------------------------- status


def status(config: Config, output: Output, as_json: bool, now: datetime | None = None) -> int:
    """Each submitted batch with its state and request counts, as the API reports them now."""
    submissions = read_submissions(config.batches_dir, config.root)

    async def states(clients: BatchClients) -> list[BatchState | None]:
        return [
            await clients(item.provider).retrieve(item.batch_id) if item.batch_id else None
            for item in submissions
        ]

    infos = _with_clients(config, states) if submissions else []
    rows = [_status_row(item, info) for item, info in zip(submissions, infos, strict=True)]
    if as_json:
        output.result(json.dumps({"batches": rows}, indent=2, ensure_ascii=False) + "\n")
    elif not rows:
        output.result("No batches pending.\n")
    else:
        when = now or datetime.now(UTC)
        output.result("".join(_status_text(row, when) + "\n" for row in rows))
    return EXIT_OK


def _status_row(submission: Submission, info: BatchState | None) -> dict[str, Any]:
    counts = info.request_counts if info is not None else None
    return {
        "batch_id": submission.batch_id,
        "submission_id": submission.id,
        "provider": submission.provider,
        "endpoint": submission.endpoint,
        "status": info.status if info is not None else "being created",
        "submitted_at": submission.submitted_at,
        "targets": len(submission.targets),
        "request_counts": (
            {"total": counts.total, "completed": counts.completed, "failed": counts.failed}
            if counts is not None
            else None
        ),
    }


def _status_text(row: dict[str, Any], now: datetime) -> str:
    counts = row["request_counts"]
    progress = (
        f"{counts['completed']}/{counts['total']} completed, {counts['failed']} failed"
        if counts
        else "no counts yet"
    )
    return (
        f"{row['batch_id'] or 'submission ' + row['submission_id']}  {row['status']}  {progress}  "
        f"({count_text(row['targets'], 'target')}, {row['provider']} {row['endpoint']}, "
        f"submitted {age_text(row['submitted_at'], now)})"
    )


# ---------------------------------------------------------------- collect

_WAIT_UNITS = {"s": 1, "m": 60, "h": 3600}


def parse_wait(text: str) -> float:
    """`90s`, `30m`, `12h`: seconds."""
    number, unit = text[:-1], text[-1:]
    if not number.isdigit() or unit not in _WAIT_UNITS:
        raise PromptformError(
            f"'{text}' is not a duration: use a whole number of seconds, minutes or hours, "
            "e.g. 90s, 30m or 12h"
        )
    return float(int(number) * _WAIT_UNITS[unit])


def collect(
    config: Config,
    output: Output,
    options: CollectOptions,
    commit: bool = False,
    push: bool = False,
    as_json: bool = False,
) -> int:
    """Record the images of every finished batch; exit 1 when lines failed or --wait timed out."""
    with apply_lock(config.state_dir):
        report = run_collect(config, options)
        code = _summarise_collect(report, output)
        if as_json:
            text = json.dumps(collect_report_as_dict(report), indent=2, ensure_ascii=False)
            output.result(text + "\n")
        if report.collected and (commit or push):
            from promptform.gitops.publish import publish

            publish(config, output, push_too=push)
        return code


def run_collect(config: Config, options: CollectOptions) -> CollectReport:
    """Collect under a lock the caller holds."""
    if not _has_submissions(config):
        return CollectReport()
    project = load_project(config, use_cache=True)
    targets = project.by_address()
    # Each collected entry goes into the shard of its manifest file, as apply's do. The lock is
    # read straight into the writer, which keeps its entries as text: no models held meanwhile.
    writer = LockfileWriter(
        config.lockfile,
        read_lockfile(config.lockfile, config.project.lockfile),
        lock_shards(project),
    )
    return _with_clients(
        config,
        lambda clients: collect_batches(
            config, targets, writer, clients, clients.parse_line, options
        ),
    )


def collect_before_apply(config: Config, output: Output) -> None:
    """apply collects finished batches first, so it plans against their images; a batch API
    that cannot be reached leaves them pending (never submitted again), it does not stop apply."""
    if not _has_submissions(config):
        return
    try:
        report = run_collect(config, CollectOptions())
    except PromptformError as exc:
        output.info(f"warning: finished batches were not collected ({exc}); they stay pending")
        return
    if report.collected:
        _summarise_collect(report, output)


def collect_report_as_dict(report: CollectReport) -> dict[str, Any]:
    """`batch collect --json`: per batch collected, what happened to each target; then the
    batches still running. A workflow reads it to tell each submission's pull request."""
    return {
        "collected": [
            {
                "batch_id": outcome.submission.batch_id,
                "submission_id": outcome.submission.id,
                "source_commit": outcome.submission.source_commit,
                "status": outcome.status,
                "recorded": outcome.recorded,
                "recorded_before": outcome.already_recorded,
                "stale": outcome.stale,
                "failed": [{"address": a, "message": m} for a, m in outcome.failed],
                "returned": [{"address": a, "reason": r} for a, r in outcome.returned],
                "not_read": [{"address": a, "message": m} for a, m in outcome.deferred],
                "images": outcome.images,
                "cost_usd": round(outcome.cost_usd, 6),
                "rescued": outcome.rescued,
            }
            for outcome in report.collected
        ],
        "unfinished": [
            {"batch_id": submission.batch_id, "status": info.status}
            for submission, info in report.unfinished
        ],
        "unstarted": [{"submission_id": submission.id} for submission in report.unstarted],
        "timed_out": report.timed_out,
    }


def _summarise_collect(report: CollectReport, output: Output) -> int:
    if not report.collected and not report.unfinished and not report.unstarted:
        output.info("No batches pending.")
    for submission in report.unstarted:
        output.info(
            f"{submission.label}: uploaded but never started (no batch); "
            "`promptform apply --batch` starts it on the machine that uploaded it (or delete its "
            "file to give it up)"
        )
    for outcome in report.collected:
        _describe_outcome(outcome, output)
    for submission, info in report.unfinished:
        counts = info.request_counts
        output.info(
            f"{submission.label}: {info.status}, {counts.completed}/{counts.total} done; "
            "not finished yet."
        )
    if report.timed_out:
        output.info("Gave up waiting (--timeout); collect again later.")
    return EXIT_ERROR if report.failed_lines or report.timed_out else EXIT_OK


def _describe_outcome(outcome: BatchOutcome, output: Output) -> None:
    parts = [f"{len(outcome.recorded)} recorded"]
    if outcome.already_recorded:
        parts.append(f"{len(outcome.already_recorded)} recorded before")
    if outcome.stale:
        parts.append(f"{len(outcome.stale)} stale (manifest changed; put in the trash)")
    if outcome.failed:
        parts.append(f"{len(outcome.failed)} failed")
    if outcome.returned:
        parts.append(f"{len(outcome.returned)} not run")
    if outcome.deferred:
        parts.append(f"{len(outcome.deferred)} not read (kept for the next collect)")
    output.info(
        f"Collected {outcome.submission.label} ({outcome.status}): {', '.join(parts)}; "
        f"{count_text(outcome.images, 'image')}, {format_usd(outcome.cost_usd)}."
    )
    for address, message in outcome.failed:
        output.info(f"  failed {address}: {message}")
    for address, why in outcome.returned:
        output.info(f"  back to create {address}: {why}")
    for address, why in outcome.deferred:
        output.info(f"  not read yet {address}: {why}; `promptform batch collect` tries again")
    for problem in outcome.unreadable:
        output.info(f"  skipped a result line: {problem}")
    for path in outcome.rescued:
        output.info(
            f"paid-for images that could not be recorded were kept in {path} "
            "(see promptform adopt --rescued)"
        )


# ---------------------------------------------------------------- cancel


def cancel(config: Config, output: Output, batch_id: str | None, everything: bool) -> int:
    """Ask the API to cancel one batch or all; `batch collect` then keeps what they finished."""
    if (batch_id is None) == (not everything):
        raise PromptformError("name a BATCH_ID to cancel, or pass --all (not both)")
    with apply_lock(config.state_dir):
        submissions = [
            item for item in read_submissions(config.batches_dir, config.root) if item.batch_id
        ]
        chosen = [item for item in submissions if everything or item.batch_id == batch_id]
        if batch_id is not None and not chosen:
            known = ", ".join(str(item.batch_id) for item in submissions) or "none"
            raise PromptformError(
                f"no pending batch {batch_id}; pending batches: {known} "
                "(`promptform batch status` lists them)"
            )

        async def cancel_all(clients: BatchClients) -> list[BatchState]:
            return [await clients(item.provider).cancel(str(item.batch_id)) for item in chosen]

        states = _with_clients(config, cancel_all) if chosen else []
    for info in states:
        output.info(f"{info.id}: {info.status}")
    if states:
        output.info(
            "`promptform batch collect` records what they finished and returns the rest to create."
        )
    else:
        output.info("No batches pending.")
    return EXIT_OK
