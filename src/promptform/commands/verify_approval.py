"""`promptform verify-approval`: refuse to apply a commit whose pull request nobody else approved."""

from __future__ import annotations

import os
from dataclasses import dataclass

import httpx

from promptform.core.config import Config
from promptform.core.error_handler import EXIT_OK
from promptform.core.output import Output
from promptform.gitops.approval import ApprovalRefused, judge, merged_pull
from promptform.gitops.github_api import GitHub, GitHubError, settings_from_env
from promptform.gitops.gitrepo import commits_since_last_apply


@dataclass(frozen=True)
class VerifyRequest:
    sha: str | None = None  # default: GITHUB_SHA
    repository: str | None = None  # default: GITHUB_REPOSITORY
    require_head: bool = False
    allow_direct_push: bool = False
    since_last_apply: bool = False  # every commit since the last apply's source, not only one


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
    with GitHub(settings, transport) as github:
        for sha in commits:
            output.result(_verify(github, sha, request))
    return EXIT_OK


def _verify(github: GitHub, sha: str, request: VerifyRequest) -> str:
    """The line saying why `sha` may be applied; ApprovalRefused when it may not."""
    pull = merged_pull(github.pulls_for_commit(sha), sha)
    if pull is None:
        if request.allow_direct_push:
            return f"ok: {sha[:12]} has no merged pull request; allowed by --allow-direct-push"
        raise ApprovalRefused(
            f"{sha[:12]} did not come from a merged pull request (a direct push); refusing to "
            "apply it (--allow-direct-push allows that)"
        )
    approval = judge(pull, github.reviews(int(pull["number"])), request.require_head)
    return f"ok: {sha[:12]}: {approval.describe()}"
