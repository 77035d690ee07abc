"""Command-line interface: parses arguments and dispatches to promptform.commands.

The only module that imports click. Callbacks stay a few lines: load context, call a command.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from promptform import __version__
from promptform.core.error_handler import EXIT_ERROR, EXIT_INTERRUPTED, run_guarded
from promptform.core.errors import PromptformError
from promptform.core.output import Output

if TYPE_CHECKING:
    # Loading the config imports its parser and types; --version and --help must not pay for that.
    from promptform.core.config import Config
    from promptform.review.empty_trash import Duration


@dataclass
class AppContext:
    directory: Path
    config_path: Path | None
    output: Output

    def config(self) -> Config:
        from promptform.core.config import load_config

        return load_config(self.directory, self.config_path, require_project=True)

    def run(self, action: Callable[[], int]) -> int:
        return run_guarded(action, self.output)


pass_app = click.make_pass_decorator(AppContext)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="promptform")
@click.option(
    "-C",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=".",
    help="Run as if promptform was started in DIR.",
    metavar="DIR",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Use this config file instead of looking for promptform.toml / pyproject.toml.",
)
@click.option("-v", "--verbose", count=True, help="Say more (repeatable).")
@click.option("-q", "--quiet", is_flag=True, help="Only print results and errors.")
@click.pass_context
def cli(
    ctx: click.Context, directory: Path, config_path: Path | None, verbose: int, quiet: bool
) -> None:
    """Terraform-style plan/apply for image prompts.

    Prompts live in git as Jinja-templated YAML manifests under prompts/. `plan` renders them into
    the exact API requests and shows what would be generated, why and at what cost; `apply`
    generates exactly that and records it in promptform.lock. Configuration is read from
    promptform.toml (or [tool.promptform] in pyproject.toml), found from the working directory up.

    Exit codes: 0 ok, 1 error, 2 changes (plan --detailed-exitcode), 3 internal error, 130
    interrupted.
    """
    if not directory.is_dir():
        raise click.BadParameter(f"directory '{directory}' does not exist", param_hint="-C")
    base = directory.resolve()
    if config_path is not None and not config_path.is_absolute():
        config_path = Path.cwd() / config_path
    ctx.obj = AppContext(base, config_path, Output(-1 if quiet else verbose))


@cli.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default=".")
@pass_app
def init(app: AppContext, directory: Path) -> int:
    """Scaffold a promptform project in DIRECTORY (default: here).

    Writes promptform.toml, an example manifest, a template partial, the manifest JSON Schema,
    .gitattributes (with the lockfile merge driver) and the GitHub workflows (plan on pull
    requests, apply on merge). Existing files are kept as they are.
    """
    from promptform.commands.init import init as run_init

    target = directory if directory.is_absolute() else app.directory / directory
    return app.run(lambda: run_init(target, app.output))


@cli.command()
@pass_app
def validate(app: AppContext) -> int:
    """Check every manifest: YAML, fields, templates, per-model limits, duplicate addresses/outputs.

    Reports every problem as `file:line:col: message` and exits 1 if there is any. Under GitHub
    Actions the problems are also annotations on the pull request.
    """
    from promptform.commands.validate import validate as run_validate

    return app.run(lambda: run_validate(app.config(), app.output))


@cli.command()
@click.argument("addresses", nargs=-1, metavar="[ADDRESS]...")
@click.option("--json", "as_json", is_flag=True, help="Print the requests as a JSON array.")
@pass_app
def render(app: AppContext, addresses: tuple[str, ...], as_json: bool) -> int:
    """Print the exact requests apply would send, for every target or the ADDRESSes given.

    An ADDRESS is a target's address (`name` or `name[axis=value,...]`, axes in any order), a
    manifest's name or file (all its targets), an output file, or a glob with * and ?. Quote
    addresses with axes in single quotes:

    \b
        promptform render 'marketing/hero[time=dawn,product=mug]'
    """
    from promptform.commands.render import render as run_render

    return app.run(lambda: run_render(app.config(), app.output, addresses, as_json))


@cli.command()
@pass_app
def schema(app: AppContext) -> int:
    """Print the JSON Schema of a manifest (for editors: yaml-language-server)."""
    from promptform.commands.schema import schema as run_schema

    return app.run(lambda: run_schema(app.output))


@cli.command()
@click.argument(
    "plan_file", required=False, type=click.Path(dir_okay=False, exists=True, path_type=Path)
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--target",
    "targets",
    multiple=True,
    metavar="PATTERN",
    help="Only these addresses, manifest or output files (glob; repeatable).",
)
@click.option(
    "--replace",
    "replace",
    multiple=True,
    metavar="ADDRESS",
    help="Regenerate even if unchanged (repeatable).",
)
@click.option("--repair", is_flag=True, help="Also regenerate outputs missing from disk.")
@click.option(
    "--concurrency",
    type=click.IntRange(1, 256),
    help="Requests in flight (default: provider's, 4).",
)
@click.option("--max-images", type=click.IntRange(0), help="Refuse a plan generating more images.")
@click.option(
    "--max-cost",
    type=click.FloatRange(0),
    metavar="USD",
    help="Refuse a plan estimated to cost more.",
)
@click.option(
    "--provider", metavar="NAME", help="Send every target to this provider (e.g. offline)."
)
@click.option(
    "--commit", is_flag=True, help="Commit the changed outputs and lockfile (nothing else)."
)
@click.option(
    "--push",
    is_flag=True,
    help="Commit and push to the branch's upstream; rebase and retry if rejected, never force.",
)
@click.option(
    "--base-config",
    metavar="REF",
    help=(
        "Take providers, [pricing], [budget] and [limits] from the config at git ref REF (e.g. "
        "refs/remotes/origin/main): refuse if this checkout's config changes them (a budget may be "
        "lowered), and enforce the per-pull-request budget for everything generated since REF. A "
        "name that more than one ref answers to (a tag and a branch) is refused: pass the full ref "
        "name or a commit hash."
    ),
)
@click.option(
    "--batch",
    is_flag=True,
    help=(
        "Submit the generations to the provider's Batch API (cheaper, done within 24 h) instead "
        "of sending them now; needs `batch = true` in [providers.NAME]. Exits once submitted."
    ),
)
@pass_app
def apply(
    app: AppContext,
    plan_file: Path | None,
    yes: bool,
    targets: tuple[str, ...],
    replace: tuple[str, ...],
    repair: bool,
    concurrency: int | None,
    max_images: int | None,
    max_cost: float | None,
    provider: str | None,
    commit: bool,
    push: bool,
    base_config: str | None,
    batch: bool,
) -> int:
    """Generate what the plan says: only new and changed targets, then update the lockfile.

    Without PLAN_FILE it plans first, shows the plan and asks for confirmation (--yes skips it;
    without a terminal it refuses). A PLAN_FILE saved by `plan --out` is applied as reviewed, and
    refused if anything changed since. Each finished target is recorded at once, so an interrupted
    apply resumes where it stopped. Finished batches (see `promptform batch`) are collected first.
    Exit 1 when a target failed, 130 when interrupted.

    With --batch, moves and deletes happen now and the generations are submitted as batches,
    recorded in promptform.batches/ (commit it); `promptform batch collect` records the images.
    """
    from promptform.commands.apply import ApplyRequest, terminal_confirm
    from promptform.commands.apply import apply as run_apply
    from promptform.engine.apply_model import ApplyOptions
    from promptform.engine.plan_model import PlanOptions

    request = ApplyRequest(
        plan_file=plan_file,
        plan_options=PlanOptions(
            targets=targets, replace=replace, repair=repair, provider=provider
        ),
        options=ApplyOptions(concurrency=concurrency, max_images=max_images, max_cost=max_cost),
        yes=yes,
        commit=commit or push,
        push=push,
        base_config=base_config,
    )
    if batch:
        from promptform.commands.batch import apply_batch

        return app.run(lambda: apply_batch(app.config(), app.output, request, terminal_confirm()))
    return app.run(lambda: run_apply(app.config(), app.output, request, terminal_confirm()))


@cli.command()
@click.option(
    "--target",
    "targets",
    multiple=True,
    metavar="PATTERN",
    help=(
        "Plan only addresses matching PATTERN (an address, manifest or output file, or a glob "
        "with * and ?; repeatable) and their upstreams. Quote it: --target 'name[axis=value]'."
    ),
)
@click.option(
    "--replace", multiple=True, metavar="ADDRESS", help="Regenerate ADDRESS even if unchanged."
)
@click.option("--repair", is_flag=True, help="Regenerate outputs that are missing on disk.")
@click.option("--verify", is_flag=True, help="Hash every output instead of trusting size + mtime.")
@click.option(
    "--format",
    "plan_format",
    type=click.Choice(["text", "markdown", "json"]),
    default="text",
    show_default=True,
    help="text for terminals, markdown for pull-request comments, json for tools.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Save the plan to FILE for `promptform apply FILE`.",
    metavar="FILE",
)
@click.option(
    "--detailed-exitcode", is_flag=True, help="Exit 2 when there are changes (0: none, 1: error)."
)
@click.option(
    "--provider", metavar="NAME", help="Plan every target for this provider (e.g. offline)."
)
@click.option(
    "--base-config",
    metavar="REF",
    help="Refuse as `apply --base-config REF` would (see apply --help).",
)
@click.option(
    "--batch",
    is_flag=True,
    help="Estimate at the Batch API's price ([pricing.MODEL] batch_discount, default half off).",
)
@pass_app
def plan(
    app: AppContext,
    targets: tuple[str, ...],
    replace: tuple[str, ...],
    repair: bool,
    verify: bool,
    plan_format: str,
    out: Path | None,
    detailed_exitcode: bool,
    provider: str | None,
    base_config: str | None,
    batch: bool,
) -> int:
    """Show what apply would generate, replace, move or delete, why, and what it would cost.

    Compares the rendered manifests with promptform.lock, and reports drift (outputs missing or
    changed on disk) without regenerating it. Targets submitted in a batch and not collected yet
    are shown as pending, not created again. Fails when the plan is over the [budget].
    """
    from promptform.commands.plan import plan as run_plan
    from promptform.engine.plan_model import PlanOptions

    options = PlanOptions(targets, replace, repair, verify, provider, batch)
    return app.run(
        lambda: run_plan(
            app.config(), app.output, options, plan_format, out, detailed_exitcode, base_config
        )
    )


@cli.command()
@click.argument("addresses", nargs=-1, metavar="[ADDRESS]...")
@click.option("--json", "as_json", is_flag=True, help="Print the entries as a JSON array.")
@pass_app
def status(app: AppContext, addresses: tuple[str, ...], as_json: bool) -> int:
    """List what promptform.lock records: address, outputs, model, generated_at, cost."""
    from promptform.commands.status import status as run_status

    return app.run(lambda: run_status(app.config(), app.output, addresses, as_json))


@cli.command()
@click.argument("address")
@click.option("--json", "as_json", is_flag=True, help="Print the lock entry as JSON.")
@pass_app
def show(app: AppContext, address: str, as_json: bool) -> int:
    """Print one lock entry: its outputs, the request that produced them, and provenance."""
    from promptform.commands.status import show as run_show

    return app.run(lambda: run_show(app.config(), app.output, address, as_json))


@cli.group()
def lock() -> None:
    """Work with promptform.lock."""


@lock.command("merge")
@click.argument("base", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("ours", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("theirs", type=click.Path(dir_okay=False, path_type=Path))
@pass_app
def lock_merge(app: AppContext, base: Path, ours: Path, theirs: Path) -> int:
    """Git merge driver for promptform.lock: merge entry by entry, write the result into OURS.

    Git calls it for one shard at a time (promptform.lock/PATH.yaml.json, or the single file of a
    lock not converted yet); only two branches changing the same manifest file's shard need it.
    Changes to different addresses always combine; an address changed differently on both sides
    is a conflict (exit 1, the addresses named). Enable it once per clone with
    `git config merge.promptform.driver "promptform lock merge %O %A %B"` and the
    .gitattributes lines `promptform.lock/** merge=promptform` and `promptform.lock
    merge=promptform` (both set up by `promptform init`).
    """
    from promptform.commands.lock import merge

    return app.run(lambda: merge(app.output, base, ours, theirs))


@cli.command("verify-approval")
@click.option("--sha", metavar="SHA", help="The commit to verify (default: $GITHUB_SHA).")
@click.option("--repo", metavar="OWNER/NAME", help="The repository (default: $GITHUB_REPOSITORY).")
@click.option(
    "--require-approval-of-head",
    "require_head",
    is_flag=True,
    help="The approval must be of the pull request's final head commit.",
)
@click.option(
    "--allow-direct-push", is_flag=True, help="Accept a commit that came from no pull request."
)
@click.option(
    "--since-last-apply",
    is_flag=True,
    help="Verify every commit on the branch's first-parent line since the commit of the last "
    "successful apply run on that line (GitHub Actions' record; what an apply of the tip acts on), "
    "not only --sha. Commits that change only outputs and lock entries the way an apply would pass.",
)
@click.option(
    "--since",
    metavar="SHA",
    help="Like --since-last-apply, but start after SHA instead of the last apply run (for a first "
    "apply or a manual run; noted in the job summary).",
)
@click.option(
    "--branch",
    metavar="NAME",
    help="The branch being applied: only pull requests merged into it count (default: the "
    "branch $GITHUB_REF names, else the checked-out one).",
)
@pass_app
def verify_approval(
    app: AppContext,
    sha: str | None,
    repo: str | None,
    require_head: bool,
    allow_direct_push: bool,
    since_last_apply: bool,
    branch: str | None,
    since: str | None,
) -> int:
    """Exit 0 only if the commit came from a pull request merged into the branch and approved by
    someone with write access who is neither its author nor the author of one of its commits.

    Each reviewer counts with their latest review; an outstanding "changes requested" refuses.
    Uses the GitHub REST API at $GITHUB_API_URL with $GITHUB_TOKEN (needs pull-requests: read,
    and actions: read for --since-last-apply).
    """
    from promptform.commands.verify_approval import VerifyRequest
    from promptform.commands.verify_approval import verify_approval as run_verify

    request = VerifyRequest(
        sha, repo, require_head, allow_direct_push, since_last_apply, branch, since
    )
    walk = since_last_apply or since is not None
    return app.run(lambda: run_verify(app.output, request, config=app.config() if walk else None))


@cli.group()
def github() -> None:
    """GitHub helpers for the promptform workflows."""


@github.command("comment")
@click.option(
    "--body-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Read the comment from FILE (default: stdin).",
    metavar="FILE",
)
@click.option(
    "--marker",
    default="promptform:plan",
    show_default=True,
    help="Hidden marker that identifies the comment to update.",
)
@click.option(
    "--pr",
    "number",
    type=click.IntRange(1),
    metavar="NUMBER",
    help="PR number (default: the event's).",
)
@click.option("--repo", metavar="OWNER/NAME", help="The repository (default: $GITHUB_REPOSITORY).")
@pass_app
def github_comment(
    app: AppContext, body_file: Path | None, marker: str, number: int | None, repo: str | None
) -> int:
    """Create or update the pull request's one promptform comment, never a second one.

    Also appends the text to $GITHUB_STEP_SUMMARY when it is set. Needs $GITHUB_TOKEN with
    pull-requests: write.
    """
    from promptform.commands.github import CommentRequest, comment

    request = CommentRequest(body_file, marker, number, repo)
    return app.run(lambda: comment(app.output, request))


@github.command("authorize-generation")
@click.option(
    "--targets-file",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Where to write the addresses of `/promptform regenerate`, one a line "
    "(default: $RUNNER_TEMP/promptform-targets.txt).",
)
@click.option("--repo", metavar="OWNER/NAME", help="The repository (default: $GITHUB_REPOSITORY).")
@pass_app
def github_authorize_generation(
    app: AppContext, targets_file: Path | None, repo: str | None
) -> int:
    """Decide whether a label or comment may generate a pull request's images before merge.

    For the generate workflow, on pull_request_target (labeled promptform:generate) or
    issue_comment (`/promptform generate SHA`, `/promptform regenerate SHA ADDRESS...`, SHA
    being the full SHA of the head that was reviewed). Allowed only for someone with write,
    maintain or admin permission who is not the pull request's author nor an author or committer
    of one of its commits, on an open pull request from a branch of this repository into
    the default branch, still at the head that was labelled or named. Writes generate=true|false, reason, and when
    true pr, head-ref, head-sha, base-ref, command and targets-file to $GITHUB_OUTPUT. A refusal
    exits 0 with generate=false (and a reply comment when a person asked); exit 1 only when
    something is broken. Needs $GITHUB_TOKEN with pull-requests: write.
    """
    from promptform.commands.authorize_generation import AuthorizeRequest, authorize_generation

    request = AuthorizeRequest(targets_file, repo)
    return app.run(lambda: authorize_generation(app.output, request))


@cli.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Write the gallery here (default: .promptform/report).",
)
@click.option(
    "--base",
    metavar="REF",
    help="Show before/after for targets changed since this commit-ish "
    "(default: the merge base with main when on another branch).",
)
@click.option("--no-base", is_flag=True, help="No before/after comparison.")
@click.option(
    "--base-dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    metavar="DIR",
    help="Compare with the project in DIR instead of git history (e.g. the checkout a preview "
    "copied).",
)
@click.option(
    "--format",
    "report_format",
    type=click.Choice(["html", "markdown"]),
    default="html",
    show_default=True,
    help="html: the gallery folder; markdown: the 'images generated' comment on stdout.",
)
@click.option(
    "--repo",
    metavar="OWNER/NAME",
    envvar="GITHUB_REPOSITORY",
    help="markdown: show images inline from this GitHub repository (default: $GITHUB_REPOSITORY).",
)
@click.option(
    "--commit", metavar="SHA", help="markdown: link the files at this commit (default: HEAD)."
)
@click.option("--artifact-url", metavar="URL", help="markdown: link to the uploaded gallery.")
@pass_app
def report(
    app: AppContext,
    out: Path | None,
    base: str | None,
    no_base: bool,
    base_dir: Path | None,
    report_format: str,
    repo: str | None,
    commit: str | None,
    artifact_url: str | None,
) -> int:
    """Build a static HTML gallery of every target's images, or the markdown of a PR comment.

    One card per target (images, address, prompt, model, size, quality, cost, when, commit),
    grouped by manifest, with a filter box and a lightbox; open DIR/index.html from disk or upload
    DIR as a CI artifact. Targets whose images changed since the base show before and after.
    """
    from promptform.commands.report import ReportRequest
    from promptform.commands.report import report as run_report

    request = ReportRequest(
        out=out,
        base=base,
        no_base=no_base,
        base_dir=base_dir,
        markdown=report_format == "markdown",
        repo=repo,
        commit=commit,
        artifact_url=artifact_url,
    )
    return app.run(lambda: run_report(app.config(), app.output, request))


@cli.command()
@click.argument("scratch", type=click.Path(file_okay=False, path_type=Path), metavar="DIR")
@click.option(
    "--quality",
    type=click.Choice(["low", "medium", "high", "auto"]),
    help="Generate at this quality instead of the manifests' (low: cheap drafts).",
)
@click.option("--target", "targets", multiple=True, metavar="PATTERN", help="Only these addresses.")
@click.option("--provider", metavar="NAME", help="Send every target to this provider.")
@click.option(
    "--max-images", type=click.IntRange(0), help="Refuse a preview generating more images."
)
@click.option(
    "--max-cost", type=click.FloatRange(0), metavar="USD", help="Refuse a costlier preview."
)
@click.option("--concurrency", type=click.IntRange(1, 256), help="Requests in flight.")
@pass_app
def preview(
    app: AppContext,
    scratch: Path,
    targets: tuple[str, ...],
    quality: str | None,
    provider: str | None,
    max_images: int | None,
    max_cost: float | None,
    concurrency: int | None,
) -> int:
    """Apply what changed into a scratch copy in DIR and build a gallery comparing it with now.

    The project is never written: DIR/project is the applied copy, DIR/gallery/index.html the
    before/after gallery. Budget guards apply as for apply.
    """
    from promptform.commands.preview import preview as run_preview
    from promptform.review.preview import PreviewOptions

    options = PreviewOptions(quality, targets, provider, max_images, max_cost, concurrency)
    return app.run(lambda: run_preview(app.config(), app.output, scratch, options))


@cli.command()
@click.argument("address")
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--rescued",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="FOLDER",
    help="Adopt the images apply kept in this .promptform/rescued/ folder instead of FILES.",
)
@click.option(
    "--source",
    default="external",
    show_default=True,
    metavar="NAME",
    help="Where the images came from (recorded as the provider name, e.g. wisgate-studio).",
)
@click.option("--cost", "cost_usd", type=click.FloatRange(0), metavar="USD", help="What they cost.")
@pass_app
def adopt(
    app: AppContext,
    address: str,
    files: tuple[Path, ...],
    rescued: Path | None,
    source: str,
    cost_usd: float | None,
) -> int:
    """Record images made elsewhere as ADDRESS's outputs, so apply does not regenerate them.

    Give one FILE per output (the target's n), each an image of its output_format. They are copied
    into place and recorded with provider kind `adopted` against the target's current fingerprint.
    With --rescued, the images come from a folder apply kept paid-for images in, and are adopted
    only if they were paid for the target's current request.
    """
    from promptform.commands.adopt import adopt as run_adopt

    return app.run(
        lambda: run_adopt(app.config(), app.output, address, files, source, cost_usd, rescued)
    )


@cli.command(
    "import-curl",
    # The curl command's own options (-H, -d, -X...) are its words, not this command's options.
    context_settings={"ignore_unknown_options": True},
)
@click.argument("source", nargs=-1, type=click.UNPROCESSED, metavar="[FILE|-|curl ...]")
@click.option("--name", metavar="NAME", help="The manifest's name (default: from the prompt).")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="PATH",
    help="Write the manifest here, a .yaml path under prompts/ (default: prompts/NAME.yaml).",
)
@pass_app
def import_curl(
    app: AppContext, source: tuple[str, ...], name: str | None, out: Path | None
) -> int:
    """Write a manifest from a curl command or JSON request body.

    Give the curl command as arguments (after --), a FILE holding it, or paste it on stdin (- or
    nothing). The prompt is kept byte for byte; API keys and auth headers are never written.

    \b
        promptform import-curl --name otter -- curl https://api.wisgate.ai/v1/images/generations ...
        promptform import-curl request.txt --out animals/otter.yaml
        pbpaste | promptform import-curl
    """
    from promptform.commands.import_curl import import_curl as run_import

    return app.run(lambda: run_import(app.config(), app.output, source, name, out))


def _parse_duration(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> Duration | None:
    from promptform.review.empty_trash import parse_duration

    if value is None:
        return None
    try:
        return parse_duration(value)
    except PromptformError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


@cli.command()
@click.option(
    "--yes",
    "-y",
    is_flag=True,
    help="Move them to .promptform/trash/ (with --empty-trash: delete without asking).",
)
@click.option(
    "--empty-trash",
    is_flag=True,
    help="Only empty .promptform/trash/: delete its folders for good, after asking.",
)
@click.option(
    "--older-than",
    metavar="DURATION",
    callback=_parse_duration,
    help="With --empty-trash: only folders older than this (h, d or w; e.g. 12h, 30d, 2w).",
)
@pass_app
def gc(app: AppContext, yes: bool, empty_trash: bool, older_than: Duration | None) -> int:
    """List files under outputs_dir that no lock entry refers to; --yes moves them to the trash.

    apply and gc --yes keep every file they replace, delete or collect in a folder of
    .promptform/trash/ named after the time the run started, so the trash only grows.

    --empty-trash only empties the trash (it does not look for unreferenced outputs): it lists the
    folders with their files and size, asks, then deletes them for good (--yes skips the question;
    without a terminal it refuses). With --older-than, only folders whose run started longer ago
    than DURATION. .promptform/rescued/ is never touched.
    """
    if older_than is not None and not empty_trash:
        raise click.UsageError("--older-than only applies to --empty-trash: add --empty-trash")
    from promptform.commands.gc import empty_trash as run_empty_trash
    from promptform.commands.gc import gc as run_gc

    if empty_trash:
        from promptform.commands.apply import terminal_confirm

        return app.run(
            lambda: run_empty_trash(app.config(), app.output, older_than, yes, terminal_confirm())
        )
    return app.run(lambda: run_gc(app.config(), app.output, yes))


@cli.command()
@click.option(
    "--since", metavar="REF|DATE", help="Only what was generated after a commit-ish or YYYY-MM-DD."
)
@click.option(
    "--by",
    type=click.Choice(["model", "manifest"]),
    default="model",
    show_default=True,
    help="Group by model or by manifest file.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def cost(app: AppContext, since: str | None, by: str, as_json: bool) -> int:
    """Spend and token usage recorded in promptform.lock (and its git history for --since)."""
    from promptform.commands.cost import cost as run_cost

    return app.run(
        lambda: run_cost(
            app.config(), app.output, since, "manifest" if by == "manifest" else "model", as_json
        )
    )


@cli.group()
def batch() -> None:
    """Batches submitted by `apply --batch`: their state, collecting their images, cancelling.

    Each submission is a file in promptform.batches/ beside the lockfile; commit it, so a run on
    another machine (a scheduled workflow) can collect it. Collecting records the images as apply
    does and removes the file.
    """


@batch.command("status")
@click.option("--json", "as_json", is_flag=True, help='Print JSON: {"batches": [...]}.')
@pass_app
def batch_status(app: AppContext, as_json: bool) -> int:
    """Each pending batch with its state and request counts (asks the provider's API)."""
    from promptform.commands.batch import status as run_status

    return app.run(lambda: run_status(app.config(), app.output, as_json))


def _parse_wait(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    from promptform.commands.batch import parse_wait

    if value is None:
        return None
    try:
        return parse_wait(value)
    except PromptformError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


@batch.command("collect")
@click.option(
    "--wait", is_flag=True, help="Wait for unfinished batches (polling) instead of leaving them."
)
@click.option(
    "--timeout",
    "timeout_s",
    metavar="DURATION",
    callback=_parse_wait,
    help="With --wait: give up after DURATION (s, m or h; e.g. 90s, 30m, 12h) and exit 1.",
)
@click.option(
    "--commit", is_flag=True, help="Commit the new images, lockfile and collected submissions."
)
@click.option(
    "--push",
    is_flag=True,
    help="Commit and push to the branch's upstream; rebase and retry if rejected, never force.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Also print JSON: per batch the targets recorded, stale, failed and returned.",
)
@pass_app
def batch_collect(
    app: AppContext, wait: bool, timeout_s: float | None, commit: bool, push: bool, as_json: bool
) -> int:
    """Record the images of every finished batch, and forget the batch.

    Streams each output file, checks and writes every image atomically with its lock entry (with
    the batch id, usage and the batch price), exactly as apply does. A result whose manifest changed
    since submission goes to .promptform/trash/. Failed lines (moderation, invalid request) are
    reported with the API's message; they, and the requests an expired, cancelled or invalid batch
    never ran, go back to create. Exit 1 when a line failed or --timeout passed.
    """
    if timeout_s is not None and not wait:
        raise click.UsageError("--timeout only applies to --wait: add --wait")
    from promptform.commands.batch import collect as run_collect
    from promptform.engine.batch_collect import CollectOptions

    options = CollectOptions(wait=wait, timeout_s=timeout_s)
    return app.run(
        lambda: run_collect(app.config(), app.output, options, commit or push, push, as_json)
    )


@batch.command("cancel")
@click.argument("batch_id", required=False)
@click.option("--all", "everything", is_flag=True, help="Cancel every pending batch.")
@pass_app
def batch_cancel(app: AppContext, batch_id: str | None, everything: bool) -> int:
    """Cancel BATCH_ID (or --all). What finished before is still collected by `batch collect`;
    the rest goes back to create."""
    from promptform.commands.batch import cancel as run_cancel

    return app.run(lambda: run_cancel(app.config(), app.output, batch_id, everything))


def help_markdown() -> str:
    """Every command's --help as one Markdown page (docs/cli.md), at a fixed width."""
    pages = ["# promptform command reference", "", "Generated from `--help`; do not edit.", ""]

    def add(command: click.Command, name: str, parent: click.Context | None) -> None:
        # A child context inherits the group's settings (-h, width), as on the command line.
        settings = {} if parent else {**cli.context_settings, "terminal_width": 100}
        ctx = click.Context(command, info_name=name, parent=parent, **settings)
        pages.extend(
            [f"## `{ctx.command_path}`", "", "```", command.get_help(ctx).rstrip(), "```", ""]
        )
        if isinstance(command, click.Group):
            for sub in sorted(command.list_commands(ctx)):
                child = command.get_command(ctx, sub)
                if child is not None and not child.hidden:
                    add(child, sub, ctx)

    add(cli, "promptform", None)
    return "\n".join(pages)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code instead of exiting, so tests can call it."""
    try:
        result = cli.main(
            args=list(argv) if argv is not None else None,
            prog_name="promptform",
            standalone_mode=False,
        )
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.Abort:
        return EXIT_INTERRUPTED
    except click.ClickException as exc:
        # Usage errors exit 1 (not click's 2), since 2 means "changes" with --detailed-exitcode.
        click.echo(f"error: {exc.format_message()}", err=True)
        if isinstance(exc, click.UsageError):
            # Some parse errors (an option given a value it does not take) carry no context.
            command = exc.ctx.command_path if exc.ctx is not None else "promptform"
            click.echo(f"Try '{command} --help' for help.", err=True)
        return EXIT_ERROR
    except PromptformError as exc:  # raised while parsing options, before a command runs
        Output().error(exc)
        return EXIT_ERROR
    return result if isinstance(result, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
