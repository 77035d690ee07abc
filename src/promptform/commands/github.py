"""`promptform github comment`: one sticky pull-request comment, edited in place on every run."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from promptform.core.error_handler import EXIT_OK
from promptform.core.output import Output
from promptform.gitops.actions_files import append_to, read_event
from promptform.gitops.github_api import GitHub, GitHubError, settings_from_env

DEFAULT_MARKER = "promptform:plan"
COMMENT_LIMIT = 65_536  # GitHub refuses longer comment bodies
_TRUNCATED = "\n\n…(truncated to fit a GitHub comment; the full text is in the job summary)\n"


@dataclass(frozen=True)
class CommentRequest:
    body_file: Path | None  # None or '-': stdin
    marker: str = DEFAULT_MARKER
    number: int | None = None  # default: from GITHUB_EVENT_PATH
    repository: str | None = None


def comment(
    output: Output, request: CommentRequest, transport: httpx.BaseTransport | None = None
) -> int:
    body = _read_body(request.body_file)
    append_to("GITHUB_STEP_SUMMARY", body)
    settings = settings_from_env(repository=request.repository)
    number = request.number if request.number is not None else _event_number()
    marker = f"<!-- {request.marker} -->"
    with GitHub(settings, transport) as github:
        action, url = upsert_comment(github, number, marker, body)
    output.result(f"{action} comment on #{number}: {url}")
    return EXIT_OK


def upsert_comment(github: GitHub, number: int, marker: str, body: str) -> tuple[str, str]:
    """Edit the comment carrying `marker`, or create it; ('created' | 'updated', its URL)."""
    text = _fit(f"{marker}\n{body}")
    existing = next((c for c in github.issue_comments(number) if _has_marker(c, marker)), None)
    if existing is None:
        created = github.create_comment(number, text)
        return "created", str(created.get("html_url", ""))
    if existing.get("body") == text:
        return "unchanged", str(existing.get("html_url", ""))
    updated = github.update_comment(int(existing["id"]), text)
    return "updated", str(updated.get("html_url", ""))


def _has_marker(item: dict[str, Any], marker: str) -> bool:
    body = item.get("body")
    if not (isinstance(body, str) and body.startswith(marker)):
        return False
    # In Actions the comment is the workflow's own (a bot's): a person who pastes the marker
    # first must not have the plan edited into their comment, under their name.
    user = item.get("user")
    author_type = user.get("type") if isinstance(user, dict) else None
    return os.environ.get("GITHUB_ACTIONS") != "true" or author_type == "Bot"


def _fit(text: str) -> str:
    if len(text) <= COMMENT_LIMIT:
        return text
    return text[: COMMENT_LIMIT - len(_TRUNCATED)] + _TRUNCATED


def _read_body(path: Path | None) -> str:
    if path is None or str(path) == "-":
        return sys.stdin.read()
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8"
        raise GitHubError(f"cannot read the comment body {path}: {reason}") from None


def _event_number() -> int:
    event = read_event("no pull request number: pass --pr or set GITHUB_EVENT_PATH")
    for holder in (event.get("pull_request"), event.get("issue"), event):
        if isinstance(holder, dict) and isinstance(holder.get("number"), int):
            return int(holder["number"])
    raise GitHubError(
        "the event has no pull request number (run this on pull_request events) or pass --pr"
    )
