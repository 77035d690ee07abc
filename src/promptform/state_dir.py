"""The local state directory (.promptform/): caches and locks that belong to one checkout.

Created with a .gitignore that ignores everything in it, so local state never lands in a commit.
"""

from __future__ import annotations

from pathlib import Path


def ensure_state_dir(directory: Path) -> None:
    """Create `directory` with a .gitignore, so local state never lands in a commit."""
    directory.mkdir(parents=True, exist_ok=True)
    ignore = directory / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# Local promptform state; never commit it.\n*\n", encoding="utf-8")
