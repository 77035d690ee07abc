"""The files GitHub Actions hands a step: the event it runs for, and the files it reads back
(`GITHUB_OUTPUT`, `GITHUB_STEP_SUMMARY`). Outside Actions the variables are unset."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from promptform.gitops.github_api import GitHubError


def read_event(missing: str) -> dict[str, Any]:
    """The event at GITHUB_EVENT_PATH; `missing` is the error when the variable is unset."""
    path = os.environ.get("GITHUB_EVENT_PATH")
    if not path:
        raise GitHubError(missing)
    try:
        event = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        raise GitHubError(f"cannot read the event file GITHUB_EVENT_PATH={path}") from None
    if not isinstance(event, dict):
        raise GitHubError(f"the event file GITHUB_EVENT_PATH={path} is not a JSON object")
    return event


def append_to(variable: str, text: str) -> None:
    """Append `text` (ending in a newline) to the file the runner names in `variable`, if any."""
    path = os.environ.get(variable)
    if not path:
        return
    try:
        with Path(path).open("a", encoding="utf-8") as handle:
            handle.write(text if text.endswith("\n") else text + "\n")
    except OSError as exc:
        raise GitHubError(f"cannot append to {variable} ({path}): {exc.strerror}") from None
