"""A plan as text (terminal), markdown (pull-request comment) or JSON (machines). Pure functions.

JSON format 1.0, keys always in this order:
    {"format_version": "1.0",
     "changes": [{"address", "action", "reasons", "moved_from", "renames": [{"from", "to"}],
                  "model", "outputs", "images", "estimated_cost_usd", "prompt_diff",
                  "paid_provider", "paid_estimated_cost_usd"}],
     "drift": [{"address", "path", "kind", "message"}],
     "summary": {"create", "replace", "move", "delete", "unchanged", "images", "estimated_cost_usd",
                 "paid_provider", "paid_estimated_cost_usd", "pending"},
`paid_*` (added in 1.0, null unless offline previews are planned): the provider they stand in for
and the estimate with it.
     "targets": {"total", "planned", "patterns"},
     "lock_hash": "...",
     "pending": [{"address", "batch_id", "fingerprint", "submitted_at", "stale"}]}
`changes` lists actionable changes only (no-ops are counted in summary.unchanged).
`pending` (added in 1.0): batch requests not collected yet; `batch_id` is null while the batch is
being created. Not stale ones are not changes (summary.pending counts them); a stale one (manifest
changed since submission) is also a change that generates the target again.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from promptform.engine.plan_model import Change, PendingTarget, Plan, Summary, UnstartedBatch
from promptform.state.drift import Drift, OutputsDirChange

JSON_FORMAT_VERSION = "1.0"
GITHUB_COMMENT_LIMIT = 65_536
_SYMBOLS = {"create": "+", "replace": "~", "move": ">", "delete": "-", "no-op": " "}
_COLORS = {"create": "32", "replace": "33", "move": "36", "delete": "31"}
_RESET = "\x1b[0m"
_PENDING_SYMBOL = "…"
_PENDING_LISTED = 50  # text and markdown list this many pending targets; JSON lists all

Paint = Callable[[str, str], str]


# ---------------------------------------------------------------- shared pieces


def format_usd(value: float | None, precise: bool = False) -> str:
    """`$0.34` (`$0.053` when `precise`); sub-cent amounts keep a third decimal, never `$0.00`."""
    if value is None:
        return "unknown"
    if precise or 0 < value < 0.01:
        return f"${value:.3f}"
    return f"${value:.2f}"


def summary_line(plan: Plan) -> str:
    """`Plan: 2 to create, 1 to replace, 1 to move, 0 to delete. 4 images, estimated $0.34.`"""
    summary = plan.summary()
    waiting = f", {summary.pending} pending in batches" if summary.pending else ""
    if not plan.has_changes and plan.outputs_dir_change is not None:
        return f"No targets to generate; outputs_dir changed: {count_text(summary.unchanged, 'target')} wait for their files."
    if not plan.has_changes:
        return f"No changes. {count_text(summary.unchanged, 'target')} up to date{waiting}."
    cost = (
        f"estimated {format_usd(summary.estimated_cost_usd)}"
        if summary.estimated_cost_usd is not None
        else "estimated cost unknown"
    )
    if plan.options.batch and summary.estimated_cost_usd is not None:
        cost += " at the batch price"
    if summary.paid_provider:
        cost += (
            f" (offline; with {summary.paid_provider}: "
            f"{format_usd(summary.paid_estimated_cost_usd)})"
        )
    return (
        f"Plan: {summary.create} to create, {summary.replace} to replace, {summary.move} to move, "
        f"{summary.delete} to delete{waiting}. {count_text(summary.images, 'image')}, {cost}."
    )


def age_text(timestamp: str, now: datetime) -> str:
    """`2 h ago` for an ISO-8601 UTC `timestamp` (the timestamp itself when it does not parse)."""
    try:
        then = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return timestamp
    seconds = max(0, int((now - then).total_seconds()))
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return "just now"


def pending_line(item: PendingTarget, now: datetime) -> str:
    """`ADDRESS pending in batch batch_abc (submitted 2 h ago)`."""
    batch = item.batch_id or f"being created (submission {item.submission_id})"
    return f"{item.address} pending in batch {batch} (submitted {age_text(item.submitted_at, now)})"


def unstarted_line(item: UnstartedBatch) -> str:
    """A submission without a batch, and what creating it would spend: shown whatever its
    targets, since the batch runs the uploaded file, not the manifests."""
    return (
        f"submission {item.submission_id}: no batch yet, {count_text(item.requests, 'request')} "
        f"({count_text(item.images, 'image')}, {format_usd(item.cost_usd)} at the batch price); "
        "`promptform apply --batch` creates it only if its input was uploaded from this machine"
    )


def _pending_more_note(plan: Plan) -> str | None:
    more = len(plan.waiting) - _PENDING_LISTED
    if more <= 0:
        return None
    return f"and {more} more pending (`promptform batch status` lists the batches)"


def prompt_diff(change: Change) -> list[str]:
    """Unified diff of the rendered prompt (the whole prompt as added lines for a new target)."""
    if change.target is None or change.action not in ("create", "replace"):
        return []
    new = str(change.target.body.get("prompt", "")).split("\n")
    if change.entry is None:
        return ["--- /dev/null", "+++ prompt", f"@@ -0,0 +1,{len(new)} @@"] + [
            f"+{line}" for line in new
        ]
    old = str(change.entry.request.get("prompt", "")).split("\n")
    if old == new:
        return []
    import difflib  # only for a changed prompt: a no-op plan prints none

    return [
        line.rstrip("\n")
        for line in difflib.unified_diff(old, new, "prompt (locked)", "prompt", lineterm="")
    ]


def targeting_note(plan: Plan) -> str | None:
    """Says when --target limited the plan: what was left out is not checked."""
    if not plan.options.targets:
        return None
    planned = sum(1 for change in plan.changes if change.target is not None)
    total = len(plan.fingerprints)
    patterns = ", ".join(plan.options.targets)
    return (
        f"Note: --target {patterns} limited this plan to {planned} of "
        f"{count_text(total, 'target')}; the others were not checked."
    )


def unknown_price_note(plan: Plan) -> str | None:
    unpriced = sorted(
        {
            f"{change.target.model} (quality {change.target.body.get('quality', 'unset')}, "
            f"size {change.target.body.get('size', 'unset')})"
            for change in plan.changes
            if change.target is not None and change.generates and change.cost_usd is None
        }
    )
    if not unpriced:
        return None
    return (
        "No known price for " + "; ".join(unpriced) + ". Add a [pricing.MODEL] table "
        "(per-quality prices or `default`) to the config for an estimate."
    )


def assumed_quality_note(plan: Plan) -> str | None:
    """Says which estimates assumed the highest quality because the manifest sets none."""
    assumed = [
        change.address
        for change in plan.changes
        if change.generates and change.assumed_quality is not None
    ]
    if not assumed:
        return None
    quality = next(change.assumed_quality for change in plan.changes if change.assumed_quality)
    shown = ", ".join(assumed[:3]) + (f" and {len(assumed) - 3} more" if len(assumed) > 3 else "")
    return (
        f"Note: {shown} set{'s' if len(assumed) == 1 else ''} no quality (the API then picks, "
        f"`auto`), so {'it is' if len(assumed) == 1 else 'they are'} priced at {quality}, the most "
        "an image can cost; set `quality: low`, `medium` or `high` in the manifest (or [defaults] in "
        "the config) for an exact estimate."
    )


def is_offline_preview(change: Change) -> bool:
    """A replacement whose only reason is that its images are offline previews.

    Switching from the offline provider to a real one replaces every preview; listing each of them
    would bury the changes someone actually made, so the formats group them in one line.
    """
    return (
        change.action == "replace"
        and change.entry is not None
        and change.target is not None
        and change.entry.provider.kind == "offline"
        and change.reasons == (f"provider kind: offline -> {change.target.provider_kind}",)
    )


def offline_previews_note(plan: Plan) -> str | None:
    """One line for every target replaced only because it was previewed offline."""
    previews = [change for change in plan.actionable if is_offline_preview(change)]
    if not previews:
        return None
    providers = ", ".join(
        sorted({str(change.target.provider) for change in previews if change.target})
    )
    costs = [change.cost_usd for change in previews]
    cost = None if None in costs else sum(cost or 0.0 for cost in costs)
    images = sum(change.images for change in previews)
    was = "target was" if len(previews) == 1 else "targets were"
    return (
        f"{len(previews)} {was} previewed offline and will be generated for real with "
        f"{providers}: {count_text(images, 'image')}, estimated {format_usd(cost)} "
        "(`--format json` lists them)."
    )


def _listed(plan: Plan) -> tuple[Change, ...]:
    """The changes shown one by one: all but the offline previews that offline_previews_note counts."""
    return tuple(change for change in plan.actionable if not is_offline_preview(change))


def count_text(number: int, noun: str) -> str:
    """`1 image`, `3 images`."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _change_heading(change: Change) -> str:
    if change.moved_from:
        return f"{change.moved_from} -> {change.address}"
    return change.address


def _detail_lines(change: Change) -> list[str]:
    """Reasons, renames and cost: what a reviewer reads under a change's heading."""
    lines = list(change.reasons)
    lines += [f"output {old} -> {new}" for old, new in change.renames]
    if change.action == "delete" and change.entry is not None:
        lines += [f"removes {output.path}" for output in change.entry.outputs]
    if change.generates:
        estimate = f"estimated {format_usd(change.cost_usd, precise=True)}"
        if change.paid_provider:
            paid = format_usd(change.paid_cost_usd, precise=True)
            estimate += f" (offline; with {change.paid_provider}: {paid})"
        if change.assumed_quality:
            estimate += f", priced at {change.assumed_quality} quality (none set)"
        lines.append(f"{count_text(change.images, 'image')}, {estimate}")
    return lines


# ---------------------------------------------------------------- text


def format_text(plan: Plan, color: bool = False, now: datetime | None = None) -> str:
    """Terraform-like terminal output; ANSI colour only when `color` is true. `now` dates the
    pending batches (`submitted 2 h ago`)."""
    paint = _painter(color)
    lines: list[str] = []
    note = targeting_note(plan)
    if note:
        lines += [paint(note, "1"), ""]
    if plan.has_changes:
        lines += ["promptform will perform the following actions:", ""]
    for change in _listed(plan):
        symbol = _SYMBOLS[change.action]
        code = _COLORS[change.action]
        lines.append(
            f"  {paint(symbol + ' ' + change.action, code)}  {paint(_change_heading(change), '1')}"
        )
        lines += [f"      {line}" for line in _detail_lines(change)]
        for line in prompt_diff(change):
            lines.append("      " + _paint_diff_line(line, paint))
        lines.append("")
    previews = offline_previews_note(plan)
    if previews:
        lines += [f"  {paint('~', _COLORS['replace'])} {previews}", ""]
    lines += _text_pending(plan, paint, now or datetime.now(UTC))
    if plan.unstarted:
        lines += [
            f"  {paint(_PENDING_SYMBOL, '33')} {unstarted_line(item)}" for item in plan.unstarted
        ]
        lines.append("")
    if plan.outputs_dir_change is not None:
        lines += [paint(outputs_dir_note(plan.outputs_dir_change), "33"), ""]
    elif plan.drift:
        lines += _text_drift(plan.drift, paint)
    for price_note in (unknown_price_note(plan), assumed_quality_note(plan)):
        if price_note:
            lines += [price_note, ""]
    lines.append(paint(summary_line(plan), "1"))
    return "\n".join(lines) + "\n"


def outputs_dir_note(change: OutputsDirChange) -> str:
    """What a changed outputs_dir means, and how to move the files instead of paying again."""
    count = count_text(change.outputs, "output")
    where = (
        f"they are under {change.previous}/. Move them instead of paying again: "
        f"`git mv {change.previous} {change.current}` (or `mv`), then plan again"
        if change.previous
        else f"move the folder that holds them to {change.current}/ instead of paying again"
    )
    return (
        f"outputs_dir is now {change.current}/, and none of the {count} promptform.lock records "
        f"is there: {where}. (`apply --repair` would regenerate all of them.)"
    )


def _text_pending(plan: Plan, paint: Paint, now: datetime) -> list[str]:
    if not plan.waiting:
        return []
    lines = [
        f"  {paint(_PENDING_SYMBOL, '36')} {pending_line(item, now)}"
        for item in plan.waiting[:_PENDING_LISTED]
    ]
    more = _pending_more_note(plan)
    if more:
        lines.append(f"  {paint(_PENDING_SYMBOL, '36')} {more}")
    return [*lines, ""]


def _text_drift(drift: Iterable[Drift], paint: Paint) -> list[str]:
    lines = ["Drift: outputs that no longer match promptform.lock (reported, not regenerated):", ""]
    for item in drift:
        lines.append(f"  {paint('! ' + item.kind, '35')}  {item.address}")
        lines.append(f"      {item.message}")
    lines.append("")
    return lines


def _painter(color: bool) -> Paint:
    def paint(text: str, code: str) -> str:
        return f"\x1b[{code}m{text}{_RESET}" if color else text

    return paint


def _paint_diff_line(line: str, paint: Paint) -> str:
    if line.startswith(("+++", "---")):
        return paint(line, "1")
    if line.startswith("@@"):
        return paint(line, "36")
    if line.startswith("+"):
        return paint(line, "32")
    if line.startswith("-"):
        return paint(line, "31")
    return line


# ---------------------------------------------------------------- markdown


def format_markdown(
    plan: Plan, limit: int = GITHUB_COMMENT_LIMIT, now: datetime | None = None
) -> str:
    """A pull-request comment: summary, table of changes, one collapsed section per change.

    Kept under `limit` characters (GitHub's comment limit): the summary and table stay, and the
    details that do not fit are left out with a note saying how many.
    """
    head = ["### promptform plan", "", f"**{summary_line(plan)}**", ""]
    for note in (
        targeting_note(plan),
        offline_previews_note(plan),
        unknown_price_note(plan),
        assumed_quality_note(plan),
    ):
        if note:
            head += [f"> {_md_text(note)}", ""]
    if plan.outputs_dir_change is not None:
        # Every output is "missing" then; the one note says why and how to move them, as in text.
        head += [f"> {_md_text(outputs_dir_note(plan.outputs_dir_change))}", ""]
        drift: list[str] = []
    else:
        drift = _md_drift(plan.drift)
    pending = _md_pending(plan, now or datetime.now(UTC)) + _md_unstarted(plan)
    drift = pending + ([""] if pending and drift else []) + drift
    table = _md_table(_listed(plan))
    details = [_md_details(change) for change in _listed(plan)]
    return _fit(head, table, drift, details, limit)


def _fit(
    head: list[str], table: list[str], drift: list[str], details: list[str], limit: int
) -> str:
    reserve = 400  # room for the truncation notes
    text = "\n".join(head)
    kept_rows = 0
    rows = table[2:]
    body = "\n".join(table[:2]) + "\n" if table else ""
    for row in rows:
        if len(text) + len(body) + len(row) + 1 + reserve > limit:
            break
        body += row + "\n"
        kept_rows += 1
    text += "\n" + body if body else ""
    if kept_rows < len(rows):
        text += (
            f"\n_{len(rows) - kept_rows} more changes left out of this table to fit GitHub's "
            "comment limit; run `promptform plan` for the full plan._\n"
        )
    drift_text = "\n".join(drift)
    if drift_text and len(text) + len(drift_text) + reserve <= limit:
        text += "\n" + drift_text + "\n"
    elif drift_text:
        text += "\n_Drift left out to fit GitHub's comment limit; run `promptform plan`._\n"
    shown = 0
    for section in details:
        if len(text) + len(section) + 1 + reserve > limit:
            break
        text += "\n" + section
        shown += 1
    left_out = len(details) - shown
    if left_out:
        text += (
            f"\n_{left_out} of {len(details)} change details left out to fit GitHub's "
            f"{GITHUB_COMMENT_LIMIT:,}-character comment limit; the full plan is in the workflow "
            "artifact, or run `promptform plan` locally._\n"
        )
    return text


def _md_table(changes: Iterable[Change]) -> list[str]:
    rows = [
        "| | Address | Action | Images | Est. cost | Why |",
        "|---|---|---|---:|---:|---|",
    ]
    for change in changes:
        images = str(change.images) if change.generates else ""
        cost = format_usd(change.cost_usd, precise=True) if change.generates else ""
        why = "; ".join(change.reasons)
        rows.append(
            f"| {_SYMBOLS[change.action]} | {_md_code(_change_heading(change))} | {change.action} "
            f"| {images} | {cost} | {_md_text(why)} |"
        )
    return rows if len(rows) > 2 else []


def _md_details(change: Change) -> str:
    summary = f"<code>{_SYMBOLS[change.action]} {change.action}</code> {_md_code(_change_heading(change))}"
    lines = ["<details>", f"<summary>{summary}</summary>", ""]
    lines += [f"- {_md_text(line)}" for line in _detail_lines(change)]
    diff = prompt_diff(change)
    if diff:
        fence = _fence_for(diff)
        lines += ["", f"{fence}diff", *diff, fence]
    lines += ["", "</details>", ""]
    return "\n".join(lines)


def _md_pending(plan: Plan, now: datetime) -> list[str]:
    if not plan.waiting:
        return []
    rows = [
        "#### Pending in batches (collected by `promptform batch collect`)",
        "",
        "| Address | Batch | Submitted |",
        "|---|---|---|",
    ]
    rows += [
        f"| {_md_code(item.address)} | {_md_code(item.batch_id or 'being created')} | "
        f"{age_text(item.submitted_at, now)} |"
        for item in plan.waiting[:_PENDING_LISTED]
    ]
    more = _pending_more_note(plan)
    if more:
        rows += ["", f"_{_md_text(more)}_"]
    return rows


def _md_unstarted(plan: Plan) -> list[str]:
    if not plan.unstarted:
        return []
    rows = [
        "#### Batches not created yet (`promptform apply --batch` creates them)",
        "",
        "| Submission | Requests | Images | Estimated cost |",
        "|---|---|---|---|",
    ]
    rows += [
        f"| {_md_code(item.submission_id)} | {item.requests} | {item.images} | "
        f"{format_usd(item.cost_usd)} |"
        for item in plan.unstarted
    ]
    return ["", *rows] if plan.waiting else rows


def _md_drift(drift: Iterable[Drift]) -> list[str]:
    rows = [
        "#### Drift (reported, not regenerated)",
        "",
        "| Kind | Address | What to do |",
        "|---|---|---|",
    ]
    rows += [
        f"| {item.kind} | {_md_code(item.address)} | {_md_text(item.message)} |" for item in drift
    ]
    return rows if len(rows) > 4 else []


def _md_code(text: str) -> str:
    """Inline code that survives backticks and pipes in addresses."""
    import html  # markdown only: a plan printed to a terminal never needs it

    return "<code>" + html.escape(text).replace("|", "&#124;") + "</code>"


def _md_text(text: str) -> str:
    import html

    return html.escape(text, quote=False).replace("|", "\\|").replace("\n", " ")


def _fence_for(lines: list[str]) -> str:
    """A code fence longer than any backtick run inside, so a prompt cannot close it early."""
    longest = max((len(run) for line in lines for run in re.findall(r"`+", line)), default=0)
    return "`" * max(3, longest + 1)


# ---------------------------------------------------------------- json


def plan_as_dict(plan: Plan) -> dict[str, Any]:
    summary = plan.summary()
    data: dict[str, Any] = {
        "format_version": JSON_FORMAT_VERSION,
        "changes": [_change_as_dict(change) for change in plan.actionable],
        "drift": [
            {"address": item.address, "path": item.path, "kind": item.kind, "message": item.message}
            for item in plan.drift
        ],
        "summary": _summary_as_dict(summary),
        "targets": {
            "total": len(plan.fingerprints),
            "planned": sum(1 for change in plan.changes if change.target is not None),
            "patterns": list(plan.options.targets),
        },
        "lock_hash": plan.lock_hash,
        "pending": [
            {
                "address": item.address,
                "batch_id": item.batch_id,
                "fingerprint": item.fingerprint,
                "submitted_at": item.submitted_at,
                "stale": item.stale,
            }
            for item in plan.pending
        ],
        # Submissions whose batch `apply --batch` would still create (and pay for).
        "unstarted": [dataclasses.asdict(item) for item in plan.unstarted],
    }
    if plan.outputs_dir_change is not None:
        data["outputs_dir_change"] = dataclasses.asdict(plan.outputs_dir_change)
    return data


def format_json(plan: Plan) -> str:
    return json.dumps(plan_as_dict(plan), indent=2, ensure_ascii=False) + "\n"


def _change_as_dict(change: Change) -> dict[str, Any]:
    if change.target is not None:
        model: str | None = change.target.model
        outputs = list(change.target.outputs)
    else:
        model = change.entry.model if change.entry else None
        outputs = [output.path for output in change.entry.outputs] if change.entry else []
    diff = prompt_diff(change)
    return {
        "address": change.address,
        "action": change.action,
        "reasons": list(change.reasons),
        "moved_from": change.moved_from,
        "renames": [{"from": old, "to": new} for old, new in change.renames],
        "model": model,
        "outputs": outputs,
        "images": change.images,
        "estimated_cost_usd": change.cost_usd if change.generates else 0.0,
        "prompt_diff": "\n".join(diff) if diff else None,
        "paid_provider": change.paid_provider,
        "paid_estimated_cost_usd": change.paid_cost_usd if change.paid_provider else None,
    }


def _summary_as_dict(summary: Summary) -> dict[str, Any]:
    return {
        "create": summary.create,
        "replace": summary.replace,
        "move": summary.move,
        "delete": summary.delete,
        "unchanged": summary.unchanged,
        "images": summary.images,
        "estimated_cost_usd": summary.estimated_cost_usd,
        "paid_provider": summary.paid_provider,
        "paid_estimated_cost_usd": summary.paid_estimated_cost_usd,
        "pending": summary.pending,
    }
