"""Whether a commit on main may be applied: its merged pull request's reviews, judged as GitHub does.

The pull request must have been merged into the branch being applied and contain the commit (as
its merge commit or one of its own commits). Each reviewer counts with their latest deciding review
(APPROVED, CHANGES_REQUESTED, DISMISSED; a plain comment changes nothing). An approval counts only
from someone who can write to the repository (on a public one anybody can review) and who is
neither the pull request's author nor the author or committer of one of its commits: GitHub does
not say who pushed a commit, so the commits' GitHub logins stand in for who pushed them. Pure
functions over the REST API's JSON, so every rule is a plain test.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from promptform.core.errors import PromptformError

_DECIDING = {"APPROVED", "CHANGES_REQUESTED", "DISMISSED"}
WRITE_ROLES = frozenset({"admin", "maintain", "write"})
# GitHub lists at most 250 commits of a pull request: with more, who pushed is not fully known.
MAX_PULL_COMMITS = 250


class ApprovalRefused(PromptformError):
    pass


@dataclass(frozen=True)
class Approval:
    number: int
    approvers: tuple[str, ...]

    def describe(self) -> str:
        return f"pull request #{self.number} was approved by {', '.join(self.approvers)}"


def merged_pulls(
    pulls: Sequence[Mapping[str, Any]], sha: str, branch: str
) -> list[Mapping[str, Any]]:
    """The pull requests `sha` may have come from: merged into `branch`, the one merged as `sha`
    first (a fast-forward merge keeps the branch's own commits, so the others follow)."""
    merged = [
        pull
        for pull in pulls
        if pull.get("merged_at")
        and isinstance(pull.get("number"), int)
        and (pull.get("base") or {}).get("ref") == branch
    ]
    return sorted(merged, key=lambda pull: pull.get("merge_commit_sha") != sha)


def contains_commit(
    pull: Mapping[str, Any], commits: Sequence[Mapping[str, Any]], sha: str
) -> bool:
    """Whether `sha` is the pull request's merge commit or one of its own commits."""
    return pull.get("merge_commit_sha") == sha or any(
        commit.get("sha") == sha for commit in commits
    )


def commit_logins(commits: Sequence[Mapping[str, Any]]) -> frozenset[str]:
    """The GitHub logins that authored or committed the pull request's commits."""
    return frozenset(
        login
        for commit in commits
        for role in ("author", "committer")
        if (login := _login(commit, role))
    )


def own_work(
    login: str, pull: Mapping[str, Any], commits: Sequence[Mapping[str, Any]]
) -> str | None:
    """How `login` had a hand in `pull`, which keeps them from vouching for it, or None.

    The rule approvals are judged by, shared with who may have a pull request's images generated:
    its author, and the GitHub authors and committers of its commits (who pushed is not recorded,
    so they stand in for it). `commits` must be all of them (fewer than MAX_PULL_COMMITS).
    """
    if login == _login(pull):
        return f"opened #{pull.get('number')}"
    if login in commit_logins(commits):
        return f"authored or committed one of the commits of #{pull.get('number')}"
    return None


def can_write(permission: Mapping[str, Any]) -> bool:
    """Whether a collaborator-permission answer grants write, maintain or admin.

    `role_name` names maintain (and custom roles); `permission` maps them onto admin/write/read.
    """
    return permission.get("role_name") in WRITE_ROLES or permission.get("permission") in {
        "admin",
        "write",
    }


def latest_reviews(reviews: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """Each reviewer's latest deciding review, by login (the API lists reviews oldest first)."""
    latest: dict[str, Mapping[str, Any]] = {}
    ordered = sorted(
        enumerate(reviews), key=lambda item: (item[1].get("submitted_at") or "", item[0])
    )
    for _, review in ordered:
        login = _login(review)
        if login and review.get("state") in _DECIDING:
            latest[login] = review
    return latest


def approving_reviewers(pull: Mapping[str, Any], reviews: Sequence[Mapping[str, Any]]) -> list[str]:
    """Who, besides the author, approves in their latest review: whose permission to look up."""
    author = _login(pull)
    return sorted(
        login
        for login, review in latest_reviews(reviews).items()
        if login != author and review.get("state") == "APPROVED"
    )


def judge(
    pull: Mapping[str, Any],
    reviews: Sequence[Mapping[str, Any]],
    require_head: bool,
    commits: Sequence[Mapping[str, Any]],
    writers: Collection[str],
) -> Approval:
    """The approval of `pull`, or ApprovalRefused saying why there is none.

    `commits` are the pull request's own commits; `writers` are the reviewers known to have write,
    maintain or admin permission.
    """
    number = int(pull.get("number", 0))
    author = _login(pull)
    head = str((pull.get("head") or {}).get("sha") or "")
    if len(commits) >= MAX_PULL_COMMITS:
        raise ApprovalRefused(
            f"pull request #{number} has {MAX_PULL_COMMITS} or more commits, more than GitHub "
            "lists, so who pushed to it is unknown; verify it another way"
        )
    latest = {login: review for login, review in latest_reviews(reviews).items() if login != author}
    blocking = sorted(login for login, r in latest.items() if r.get("state") == "CHANGES_REQUESTED")
    if blocking:
        raise ApprovalRefused(
            f"pull request #{number}: changes requested by {', '.join(blocking)} "
            "and not since approved"
        )
    approvals = {login: r for login, r in latest.items() if r.get("state") == "APPROVED"}
    independent = {
        login: r for login, r in approvals.items() if own_work(login, pull, commits) is None
    }
    trusted = {login: r for login, r in independent.items() if login in writers}
    if approvals and not trusted:
        if independent:
            raise ApprovalRefused(
                f"pull request #{number}: approved only by {', '.join(sorted(independent))}, who "
                "cannot write to the repository; it needs an approval from someone with write, "
                "maintain or admin permission"
            )
        raise ApprovalRefused(
            f"pull request #{number}: approved only by {', '.join(sorted(approvals))}, who pushed "
            f"commits to it; it needs an approval from someone other than its author "
            f"({author or 'unknown'}) and the authors of its commits"
        )
    approvals = trusted
    if not approvals:
        own = any(_login(r) == author and r.get("state") == "APPROVED" for r in reviews)
        reason = "only its author approved it" if own else "no approving review"
        raise ApprovalRefused(
            f"pull request #{number}: {reason}; it needs an approval from someone other "
            f"than its author ({author or 'unknown'})"
        )
    if require_head:
        of_head = {login: r for login, r in approvals.items() if r.get("commit_id") == head}
        if not of_head:
            seen = sorted({str(r.get("commit_id") or "")[:12] for r in approvals.values()})
            raise ApprovalRefused(
                f"pull request #{number}: approved at {', '.join(seen)}, not at its final head "
                f"{head[:12]} (--require-approval-of-head); ask for a review of the last push"
            )
        approvals = of_head
    return Approval(number, tuple(sorted(approvals)))


def _login(item: Mapping[str, Any], role: str = "user") -> str:
    user = item.get(role) or {}
    return str(user.get("login") or "") if isinstance(user, Mapping) else ""
