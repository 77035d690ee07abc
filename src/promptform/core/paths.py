"""What an acceptable relative path is, for manifests, the config and the lockfile alike."""

from __future__ import annotations

import re

_DRIVE = re.compile(r"^[A-Za-z]:")


def relative_path_problem(path: str) -> str | None:
    """Why `path` is not an acceptable repository-relative path, or None."""
    if not path:
        return "is empty"
    if "\\" in path or "\x00" in path:
        return "contains a backslash or NUL; use '/'"
    if path.startswith("/") or _DRIVE.match(path):
        return "is absolute; write it relative"
    parts = path.split("/")
    if ".." in parts:
        return "contains '..'"
    if "" in parts or "." in parts:
        return "has an empty or '.' segment"
    return None
