"""Writing a tree of files for a test project."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path


def write_files(root: Path, files: dict[str, str | bytes]) -> Path:
    """Create `files` (relative path -> text, dedented, or bytes) under `root`."""
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(textwrap.dedent(content).lstrip("\n"), encoding="utf-8")
    return root


# The `make_project` fixture: a project directory holding the given files.
MakeProject = Callable[[dict[str, str | bytes]], Path]
