"""`promptform verify-approval`: refuse to apply a commit whose pull request nobody else approved.

With --since-last-apply (or --since), every commit an apply of the branch's tip acts on is checked,
starting from GitHub's own record of the last successful apply run: what a commit message says is
never trusted. A commit that changes only outputs and lock entries, the way an apply of its
manifests would, needs no approval; every other commit needs an approved pull request.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import httpx

from promptform.core.config import Config
from promptform.core.error_handler import EXIT_OK
from promptform.core.output import Output
from promptform.engine.lock_audit import touches_only_results, unexplained_changes
from promptform.gitops.actions_files import append_to
from promptform.gitops.approval import (
    ApprovalRefused,
    approving_reviewers,
    can_write,
    contains_commit,
    judge,
    merged_pulls,
)
from promptform.gitops.github_api import GitHub, GitHubError, settings_from_env
from promptform.gitops.gitrepo import (
    changed_paths,
    commits_after,
    current_branch,
    off_first_parent_line,
    refuse_shallow_clone,
    resolve_commit,
)

DEFAULT_APPLY_WORKFLOW = "promptform-apply.yml"
# The events that start an apply of the branch; a run of either that succeeded verified its tip.
APPLY_EVENTS = ("push", "workflow_dispatch")
# Runs of each event looked at for a starting point on the branch's first-parent line.
RUNS_LOOKED_AT = 10


@dataclass(frozen=True)
class VerifyRequest:
    sha: str | None = None  # default: GITHUB_SHA
    repository: str | None = None  # default: GITHUB_REPOSITORY
    require_head: bool = False
    allow_direct_push: bool = False
    since_last_apply: bool = False  # every commit since the last apply's source, not only one
    branch: str | None = None  # the branch being applied; default: GITHUB_REF, else the checkout's
    since: str | None = None  # start the walk here instead of at the last successful apply run


def verify_approval(
    output: Output,
    request: VerifyRequest,
    transport: httpx.BaseTransport | None = None,
    config: Config | None = None,
) -> int:
    walk = request.since_last_apply or request.since is not None
    if walk:
        assert config is not None
        refuse_shallow_clone(config.root)
        since = resolve_commit(config.root, request.since) if request.since else None
    else:
        sha = request.sha or os.environ.get("GITHUB_SHA", "")
        if not sha:
            raise GitHubError(
                "no commit to verify: set GITHUB_SHA (GitHub Actions sets it) or pass --sha"
            )
    settings = settings_from_env(repository=request.repository)
    branch = _branch(request, config)
    with GitHub(settings, transport) as github:
        if not walk:
            output.result(_verify(github, sha, branch, request))
            return EXIT_OK
        assert config is not None
        if since is not None:
            anchor, described = since, "given with --since"
            _summary(
                f"verify-approval checked the commits after {since}, given by hand with "
                "`--since`, not the last successful apply run."
            )
        else:
            anchor = _last_applied(github, branch, config.root)
            described = "the last applied commit"
        commits = commits_after(config.root, anchor, described)
        if not commits:
            output.result(f"ok: nothing was committed since {anchor[:12]}")
        for sha in commits:
            output.result(_verify_walked(github, config, sha, branch, request))
    return EXIT_OK


def _last_applied(github: GitHub, branch: str, root: Path) -> str:
    """The commit of the newest successful apply run on `branch`: GitHub's record, not git's.

    A run whose commit the branch reached only through a merged branch is skipped: anything that
    makes GitHub name `branch` (a tag of that name, say) can start one, and the walk from there
    would leave out the branch's own commits before the merge.
    """
    workflow = _apply_workflow()
    runs = [
        run
        for event in APPLY_EVENTS
        for run in github.successful_runs(workflow, branch, event, RUNS_LOOKED_AT)
    ]
    skipped: list[str] = []
    for run in sorted(runs, key=lambda run: int(run["run_number"]), reverse=True):
        sha = str(run["head_sha"])
        if not off_first_parent_line(root, sha):
            return sha
        if sha[:12] not in skipped:
            skipped.append(sha[:12])
    why = (
        f" (skipped {', '.join(skipped)}: {branch} reached it only through a merged branch, "
        "not on its first-parent line)"
        if skipped
        else ""
    )
    raise GitHubError(
        f"no successful run of {workflow} on {branch} to start from{why}; run the workflow by "
        "hand with the `since` input (verify-approval --since SHA) set to the last commit "
        "known to be approved"
    )


def _apply_workflow() -> str:
    """The running workflow's file (GITHUB_WORKFLOW_REF: owner/repo/.github/workflows/F@ref)."""
    reference = os.environ.get("GITHUB_WORKFLOW_REF", "")
    name = reference.partition("@")[0].rpartition("/")[2]
    return name or DEFAULT_APPLY_WORKFLOW


def _summary(line: str) -> None:
    """Add `line` to the GitHub Actions job summary, where a manual override stays on record."""
    append_to("GITHUB_STEP_SUMMARY", line)


def _branch(request: VerifyRequest, config: Config | None) -> str:
    """The branch being applied: pull requests merged anywhere else do not count."""
    if request.branch:
        return request.branch
    ref = os.environ.get("GITHUB_REF", "")
    if ref.startswith("refs/heads/"):
        return ref.removeprefix("refs/heads/")
    checked_out = current_branch(config.root) if config is not None else None
    if checked_out:
        return checked_out
    raise GitHubError(
        "no branch to verify against: pass --branch (GitHub Actions sets GITHUB_REF on a push)"
    )


def _verify_walked(
    github: GitHub, config: Config, sha: str, branch: str, request: VerifyRequest
) -> str:
    """Like _verify, but a commit an apply could have made passes without an approval."""
    paths = changed_paths(config.root, sha)
    if not touches_only_results(config, paths):
        return _verify(github, sha, branch, request)
    reasons = unexplained_changes(config, sha, paths)
    if not reasons:
        return (
            f"ok: {sha[:12]}: changes only lock entries and outputs, as an apply of its "
            "manifests writes them"
        )
    return _verify(github, sha, branch, request, f"{reasons[0]}, which no apply does")


def _verify(
    github: GitHub, sha: str, branch: str, request: VerifyRequest, why: str | None = None
) -> str:
    """The line saying why `sha` may be applied; ApprovalRefused when it may not.

    `why` says why the commit needs an approval when that is not obvious.
    """
    for pull in merged_pulls(github.pulls_for_commit(sha), sha, branch):
        number = int(pull["number"])
        commits = github.pull_commits(number)
        if not contains_commit(pull, commits, sha):
            continue
        reviews = github.reviews(number)
        writers = {
            login
            for login in approving_reviewers(pull, reviews)
            if can_write(github.collaborator_permission(login))
        }
        approval = judge(pull, reviews, request.require_head, commits, writers)
        return f"ok: {sha[:12]}: {approval.describe()}"
    if request.allow_direct_push:
        return (
            f"ok: {sha[:12]} has no pull request merged into {branch}; "
            "allowed by --allow-direct-push"
        )
    subject = f"{sha[:12]}: {why}, and the commit" if why else sha[:12]
    raise ApprovalRefused(
        f"{subject} did not come from a pull request merged into {branch} (a direct push); "
        "refusing to apply it (--allow-direct-push allows that)"
    )
