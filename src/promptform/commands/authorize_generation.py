"""`promptform github authorize-generation`: decide whether a label or a comment may have a pull
request's images generated on the pull request, before merge.

Run by the generate workflow on `pull_request_target` (labeled `promptform:generate`) or
`issue_comment` (`/promptform generate SHA`, `/promptform regenerate SHA ADDRESS...`). Only someone
with write, maintain or admin permission may ask, and, as for an approval, not the pull request's
author nor an author or committer of one of its commits; the pull request must be open, from a
branch of this repository, into the default branch, and still at the head that was asked about: the
one the label was put on, or the full SHA the comment names, so that nothing pushed after the review
is generated. Every decision exits 0 and writes `generate=true|false` and `reason=...` to
$GITHUB_OUTPUT, so a refusal skips the rest of the workflow without failing it; a refusal that a
person asked for gets a reply comment on the pull request. Exit 1 is for what is broken (no event, a
GitHub API failure), never for a "no".
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from promptform.core.error_handler import EXIT_OK
from promptform.core.output import Output
from promptform.gitops.actions_files import append_to, read_event
from promptform.gitops.approval import MAX_PULL_COMMITS, can_write, own_work
from promptform.gitops.github_api import GitHub, GitHubError, settings_from_env
from promptform.manifests.addresses import well_formed_address

LABEL = "promptform:generate"
COMMAND_PREFIX = "/promptform"
MAX_ADDRESSES = 100
REPLY_MARKER = "<!-- promptform:generate-reply -->"
USAGE = (
    "`/promptform generate SHA` (everything the plan shows) or "
    "`/promptform regenerate SHA ADDRESS...` (only these targets, e.g. `hero[size=large]`), "
    "SHA being the full commit SHA of the head you reviewed"
)
# What git refuses in a branch name (git check-ref-format), and what an output line must not hold.
_BAD_REF = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|^[/.-]|[/.]$|\.lock$|//")
_SHELL_SPECIAL = re.compile(r"[$`;|&<>'\\!]")
_SHA = re.compile(r"[0-9a-f]{40}")
# A comment's first argument taken as the head it names; shorter hex could be a target's name.
_NAMED_HEAD = re.compile(r"[0-9a-fA-F]{7,}")


@dataclass(frozen=True)
class AuthorizeRequest:
    targets_file: Path | None = None  # default: $RUNNER_TEMP/promptform-targets.txt
    repository: str | None = None


@dataclass
class Decision:
    generate: bool
    reason: str  # authorised | not-authorised | fork | closed | not-default-base | author |
    # too-many-commits | changed | no-head | malformed | ignored
    summary: str  # the line printed to stdout
    reply: str | None = None  # a comment for the pull request, when a person asked
    outputs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Ask:
    """What the event asks for, once it is known to be a request."""

    number: int
    actor: str
    command: str  # generate | regenerate
    arguments: tuple[str, ...]
    labeled_head: str | None  # the head the label was put on; None for a comment
    default_branch: str
    named_head: str | None = None  # the head a comment names, as written; None when it names none


def authorize_generation(
    output: Output, request: AuthorizeRequest, transport: httpx.BaseTransport | None = None
) -> int:
    event_name = os.environ.get("GITHUB_EVENT_NAME", "")
    event = read_event("no event: set GITHUB_EVENT_PATH (GitHub Actions sets it)")
    settings = settings_from_env(repository=request.repository)
    ask_or_reason = _ask(event_name, event)
    if isinstance(ask_or_reason, str):
        decision = Decision(False, "ignored", f"generate=false: {ask_or_reason}")
        _write_outputs(decision)
        output.result(decision.summary)
        return EXIT_OK
    ask = ask_or_reason
    with GitHub(settings, transport) as github:
        decision = _decide(github, ask, settings.repository, request)
        if decision.reply is not None:
            github.create_comment(ask.number, f"{REPLY_MARKER}\n{decision.reply}")
    _write_outputs(decision)
    output.result(decision.summary)
    return EXIT_OK


def _ask(event_name: str, event: dict[str, Any]) -> Ask | str:
    """The request the event makes, or why it makes none (a string)."""
    repository = event.get("repository")
    default_branch = repository.get("default_branch") if isinstance(repository, dict) else None
    sender = event.get("sender")
    actor = sender.get("login") if isinstance(sender, dict) else None
    if event_name == "pull_request_target":
        label = event.get("label")
        if event.get("action") != "labeled" or not isinstance(label, dict):
            return "not a labelling of the pull request"
        if label.get("name") != LABEL:
            return f"the label is not {LABEL}"
        pull = _mapping(event.get("pull_request"), "pull_request")
        head = _mapping(pull.get("head"), "pull_request.head")
        return Ask(
            _number(pull),
            _text(actor, "sender.login"),
            "generate",
            (),
            _text(head.get("sha"), "pull_request.head.sha"),
            _text(default_branch, "repository.default_branch"),
        )
    if event_name == "issue_comment":
        issue = _mapping(event.get("issue"), "issue")
        if event.get("action") != "created":
            return "the comment was not just created"
        if not issue.get("pull_request"):
            return f"#{_number(issue)} is an issue, not a pull request"
        comment = _mapping(event.get("comment"), "comment")
        body = comment.get("body") if isinstance(comment.get("body"), str) else ""
        words = str(body).strip().splitlines()[0].split() if str(body).strip() else []
        if not words or words[0] != COMMAND_PREFIX:
            return f"the comment is not a {COMMAND_PREFIX} command"
        arguments = words[2:]
        # As people paste a SHA: in backticks, or ending a sentence.
        first = arguments[0].rstrip(".,;").strip("`").rstrip(".,;") if arguments else ""
        named = first if _NAMED_HEAD.fullmatch(first) else None
        return Ask(
            _number(issue),
            _text(actor, "sender.login"),
            words[1] if len(words) > 1 else "",
            tuple(arguments[1:] if named else arguments),
            None,
            _text(default_branch, "repository.default_branch"),
            named,
        )
    raise GitHubError(
        f"authorize-generation runs on pull_request_target (labeled) and issue_comment events, "
        f"not '{event_name or 'none'}' (GITHUB_EVENT_NAME)"
    )


def _decide(github: GitHub, ask: Ask, repository: str, request: AuthorizeRequest) -> Decision:
    mention = f"@{ask.actor}"
    if not can_write(github.collaborator_permission(ask.actor)):
        return Decision(
            False,
            "not-authorised",
            f"generate=false: {ask.actor} may not start a paid generation (needs write access)",
            f"Thanks, {mention}. Generating images costs money, so only people with write "
            "access to this repository can start it. A maintainer can add the "
            f"`{LABEL}` label or comment `/promptform generate SHA` (the commit they reviewed) "
            "once they have reviewed the changes.",
        )
    pull = github.pull(ask.number)
    if pull.get("state") != "open":
        merged = "merged" if pull.get("merged_at") else "closed"
        return Decision(
            False,
            "closed",
            f"generate=false: #{ask.number} is {merged}",
            f"{mention}, #{ask.number} is {merged}, so nothing is generated on it. Images of "
            "merged changes are generated by the apply workflow on the default branch.",
        )
    head = _mapping(pull.get("head"), "pull request head")
    base = _mapping(pull.get("base"), "pull request base")
    head_repo = head.get("repo")
    head_name = head_repo.get("full_name") if isinstance(head_repo, dict) else None
    if not isinstance(head_name, str) or head_name.lower() != repository.lower():
        return Decision(
            False,
            "fork",
            f"generate=false: #{ask.number} comes from a fork ({head_name or 'deleted'})",
            f"{mention}, images can be generated on a pull request only when it comes from a "
            "branch of this repository: the workflow pushes the images to that branch, and it "
            "cannot push to a fork. Push the branch here and open the pull request from it, or "
            "merge and let the apply workflow generate them.",
        )
    base_ref = _ref(base.get("ref"), "base.ref")
    if base_ref != ask.default_branch:
        return Decision(
            False,
            "not-default-base",
            f"generate=false: #{ask.number} targets {base_ref}, not {ask.default_branch}",
            f"{mention}, images are generated only on pull requests into `{ask.default_branch}`, "
            f"and this one targets `{base_ref}`.",
        )
    head_sha = _text(head.get("sha"), "head.sha")
    if not _SHA.fullmatch(head_sha):
        raise GitHubError(f"GitHub API: pull request #{ask.number} has a malformed head sha")
    refusal = _own_work_refusal(github, ask, pull, head_sha)
    if refusal is not None:
        return refusal
    if ask.labeled_head is not None and ask.labeled_head != head_sha:
        return Decision(
            False,
            "changed",
            f"generate=false: #{ask.number} got new commits after it was labelled",
            f"{mention}, #{ask.number} got new commits after the `{LABEL}` label was added "
            f"({ask.labeled_head[:12]}, now {head_sha[:12]}), so nothing was generated. Review "
            "the new commits, then remove and add the label again.",
        )
    targets, problem = _targets(ask)
    if problem is not None:
        return Decision(
            False,
            "malformed",
            f"generate=false: {problem}",
            f"{mention}, {problem}. Use {USAGE}.",
        )
    if ask.labeled_head is None:
        refusal = _named_head_refusal(ask, head_sha, targets)
        if refusal is not None:
            return refusal
    outputs = {
        "pr": str(ask.number),
        "head-ref": _ref(head.get("ref"), "head.ref"),
        "head-sha": head_sha,
        "base-ref": base_ref,
        "command": ask.command,
        "targets-file": "",
    }
    if ask.command == "regenerate":
        path = _write_targets(request.targets_file, targets)
        outputs["targets-file"] = str(path)
    what = f"{len(targets)} target(s)" if ask.command == "regenerate" else "the plan"
    return Decision(
        True,
        "authorised",
        f"generate=true: {ask.command} {what} on #{ask.number} ({outputs['head-ref']} at "
        f"{head_sha[:12]}), asked by {ask.actor}",
        outputs=outputs,
    )


def _own_work_refusal(
    github: GitHub, ask: Ask, pull: dict[str, Any], head_sha: str
) -> Decision | None:
    """Why the asker may not vouch for the pull request, as for an approval, or None.

    Every same-repository branch's author can write, so write access alone would let the author
    spend the key on their own unreviewed changes.
    """
    mention = f"@{ask.actor}"
    commits = github.pull_commits(ask.number)
    if len(commits) >= MAX_PULL_COMMITS:
        return Decision(
            False,
            "too-many-commits",
            f"generate=false: #{ask.number} has {MAX_PULL_COMMITS} or more commits, more than "
            "GitHub lists, so who pushed to it is unknown",
            f"{mention}, #{ask.number} has {MAX_PULL_COMMITS} or more commits, more than GitHub "
            "lists, so who pushed to it is unknown and nothing was generated. Squash its commits, "
            "or merge it and let the apply workflow generate the images.",
        )
    if not any(commit.get("sha") == head_sha for commit in commits):
        # The list is of another head than the one checked: it may lack the asker's commits.
        return Decision(
            False,
            "changed",
            f"generate=false: #{ask.number} changed while it was being checked",
            f"{mention}, #{ask.number} changed while it was being checked, so nothing was "
            "generated. Review the new commits and ask again.",
        )
    how = own_work(ask.actor, pull, commits)
    if how is None:
        return None
    return Decision(
        False,
        "author",
        f"generate=false: {ask.actor} {how}, so someone else must ask",
        f"{mention}, you {how}, so you cannot start a paid generation of it: as for an "
        "approval, someone else with write access has to review it and ask.",
    )


def _named_head_refusal(ask: Ask, head_sha: str, targets: tuple[str, ...]) -> Decision | None:
    """Why a comment may not generate the pull request's current head, or None when it may.

    The job asks GitHub for the head tens of seconds after the comment, time enough for a push;
    only the full SHA pins what was reviewed: a commit that shares a shorter prefix with it is
    cheap to make (both can be varied at once), so a prefix could name a commit never reviewed.
    """
    mention = f"@{ask.actor}"
    command = " ".join(("/promptform", ask.command, head_sha, *targets))
    once = f"Once you have reviewed #{ask.number} at {head_sha[:12]}, comment `{command}`."
    named = ask.named_head
    if named is None:
        return Decision(
            False,
            "no-head",
            "generate=false: the comment does not name the commit it was written about",
            f"{mention}, a generation is started only for the commit you reviewed, so that "
            f"nothing pushed after your review is paid for: name it. {once}",
        )
    if len(named) != len(head_sha):
        shown = named if len(named) <= 48 else named[:48] + "…"
        return Decision(
            False,
            "no-head",
            f"generate=false: `{shown}` is not a full commit SHA (40 hex digits)",
            f"{mention}, `{shown}` is not a full commit SHA: name the commit you reviewed with "
            "all 40 hex digits, since another commit sharing a shorter prefix with it is cheap "
            f"to make. {once}",
        )
    if named.lower() != head_sha:
        return Decision(
            False,
            "changed",
            f"generate=false: #{ask.number} is at {head_sha[:12]}, not at "
            f"{named.lower()[:12]} that the comment names",
            f"{mention}, #{ask.number} got new commits: it is at {head_sha[:12]}, not at "
            f"{named.lower()[:12]} that your comment names, so nothing was generated. Review "
            f"the new commits, then comment `{command}`.",
        )
    return None


def _targets(ask: Ask) -> tuple[tuple[str, ...], str | None]:
    """The addresses to regenerate, or a problem with the command."""
    if ask.command == "generate":
        if ask.arguments:
            return (), "`/promptform generate` takes no addresses (use `regenerate` for those)"
        return (), None
    if ask.command != "regenerate":
        shown = f"`{ask.command}`" if ask.command else "nothing"
        return (), f"`/promptform` must be followed by `generate` or `regenerate`, not {shown}"
    if not ask.arguments:
        return (), "`/promptform regenerate` needs at least one address"
    if len(ask.arguments) > MAX_ADDRESSES:
        return (), f"`/promptform regenerate` takes at most {MAX_ADDRESSES} addresses"
    for address in ask.arguments:
        if not well_formed_address(address) or _SHELL_SPECIAL.search(address):
            shown = address if len(address) <= 80 else address[:80] + "…"
            return (), f"`{shown.replace('`', '')}` is not a target address"
    return tuple(dict.fromkeys(ask.arguments)), None


def _write_targets(path: Path | None, targets: tuple[str, ...]) -> Path:
    if path is None:
        temp = os.environ.get("RUNNER_TEMP")
        path = Path(temp) / "promptform-targets.txt" if temp else Path("promptform-targets.txt")
    try:
        path.write_text("".join(f"{target}\n" for target in targets), encoding="utf-8")
    except OSError as exc:
        raise GitHubError(f"cannot write the targets file {path}: {exc.strerror}") from None
    return path.resolve()


def _write_outputs(decision: Decision) -> None:
    values = {"generate": "true" if decision.generate else "false", "reason": decision.reason}
    values.update(decision.outputs)
    for key, value in values.items():
        if "\n" in value or "\r" in value:  # one line each: a newline could set other outputs
            raise GitHubError(f"refusing to write output {key}: it spans lines")
    append_to("GITHUB_OUTPUT", "".join(f"{key}={value}\n" for key, value in values.items()))


def _mapping(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise GitHubError(f"the event or API answer has no {what}")
    return value


def _text(value: object, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise GitHubError(f"the event or API answer has no {what}")
    return value


def _number(holder: dict[str, Any]) -> int:
    number = holder.get("number")
    if not isinstance(number, int) or isinstance(number, bool) or number < 1:
        raise GitHubError("the event has no pull request number")
    return number


def _ref(value: object, what: str) -> str:
    ref = _text(value, what)
    if _BAD_REF.search(ref):
        raise GitHubError(f"the pull request's {what} is not a usable branch name")
    return ref
