"""`promptform verify-approval`: refuse to apply a commit whose pull request nobody else approved."""

from __future__ import annotations

import os
from dataclasses import dataclass

import httpx

from promptform.core.config import Config
from promptform.core.error_handler import EXIT_OK
from promptform.core.output import Output
from promptform.gitops.approval import (
    ApprovalRefused,
    approving_reviewers,
    can_write,
    contains_commit,
    judge,
    merged_pulls,
)
from promptform.gitops.github_api import GitHub, GitHubError, settings_from_env
from promptform.gitops.gitrepo import commits_since_last_apply, current_branch


@dataclass(frozen=True)
class VerifyRequest:
    sha: str | None = None  # default: GITHUB_SHA
    repository: str | None = None  # default: GITHUB_REPOSITORY
    require_head: bool = False
    allow_direct_push: bool = False
    since_last_apply: bool = False  # every commit since the last apply's source, not only one
    branch: str | None = None  # the branch being applied; default: GITHUB_REF, else the checkout's


def verify_approval(
    output: Output,
    request: VerifyRequest,
    transport: httpx.BaseTransport | None = None,
    config: Config | None = None,
) -> int:
    if request.since_last_apply:
        assert config is not None
        commits = commits_since_last_apply(config.root, [config.outputs_dir, config.lockfile])
    else:
        sha = request.sha or os.environ.get("GITHUB_SHA", "")
        if not sha:
            raise GitHubError(
                "no commit to verify: set GITHUB_SHA (GitHub Actions sets it) or pass --sha"
            )
        commits = [sha]
    settings = settings_from_env(repository=request.repository)
    branch = _branch(request, config)
    with GitHub(settings, transport) as github:
        for sha in commits:
            output.result(_verify(github, sha, branch, request))
    return EXIT_OK


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


def _verify(github: GitHub, sha: str, branch: str, request: VerifyRequest) -> str:
    """The line saying why `sha` may be applied; ApprovalRefused when it may not."""
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
    raise ApprovalRefused(
        f"{sha[:12]} did not come from a pull request merged into {branch} (a direct push); "
        "refusing to apply it (--allow-direct-push allows that)"
    )
