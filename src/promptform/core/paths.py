"""What an acceptable relative path is, for manifests, the config and the lockfile alike."""

from __future__ import annotations

import re
import unicodedata

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


def path_key(path: str) -> str:
    """`path` as a case-insensitive file system sees it (macOS, Windows): NFC, case-folded.

    Two output paths with the same key are the same file there, so every comparison of output
    paths (duplicates, moves, what a delete may trash, lockfile merges) goes through this.
    """
    return unicodedata.normalize("NFC", path).casefold()
