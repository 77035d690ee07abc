"""Whether a commit on main may be applied: its merged pull request's reviews, judged as GitHub does.

Each reviewer counts with their latest deciding review (APPROVED, CHANGES_REQUESTED, DISMISSED; a
plain comment changes nothing); the author's own reviews never count. Pure functions over the
REST API's JSON, so every rule is a plain test.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from promptform.core.errors import PromptformError

_DECIDING = {"APPROVED", "CHANGES_REQUESTED", "DISMISSED"}


class ApprovalRefused(PromptformError):
    pass


@dataclass(frozen=True)
class Approval:
    number: int
    approvers: tuple[str, ...]

    def describe(self) -> str:
        return f"pull request #{self.number} was approved by {', '.join(self.approvers)}"


def merged_pull(pulls: Sequence[Mapping[str, Any]], sha: str) -> Mapping[str, Any] | None:
    """The merged pull request that `sha` came from; None for a direct push.

    GitHub lists every PR containing the commit; the one merged as `sha` is preferred, then any
    merged one (a rebase or fast-forward merge keeps the branch's commits).
    """
    merged = [pull for pull in pulls if pull.get("merged_at")]
    for pull in merged:
        if pull.get("merge_commit_sha") == sha:
            return pull
    return merged[0] if merged else None


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


def judge(
    pull: Mapping[str, Any], reviews: Sequence[Mapping[str, Any]], require_head: bool
) -> Approval:
    """The approval of `pull`, or ApprovalRefused saying why there is none."""
    number = int(pull.get("number", 0))
    author = _login(pull)
    head = str((pull.get("head") or {}).get("sha") or "")
    latest = {login: review for login, review in latest_reviews(reviews).items() if login != author}
    blocking = sorted(login for login, r in latest.items() if r.get("state") == "CHANGES_REQUESTED")
    if blocking:
        raise ApprovalRefused(
            f"pull request #{number}: changes requested by {', '.join(blocking)} "
            "and not since approved"
        )
    approvals = {login: r for login, r in latest.items() if r.get("state") == "APPROVED"}
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


def _login(item: Mapping[str, Any]) -> str:
    user = item.get("user") or {}
    return str(user.get("login") or "") if isinstance(user, Mapping) else ""
