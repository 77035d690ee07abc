"""The local state directory (.promptform/): caches and locks that belong to one checkout.

Created with a .gitignore that ignores everything in it, so local state never lands in a commit.
A repository could still commit `.promptform` as a symlink (or links inside it) to make promptform
write elsewhere, so neither the directory nor its .gitignore is followed through a symlink.
"""

from __future__ import annotations

import os
from pathlib import Path

from promptform.core.errors import PromptformError

_IGNORE_ALL = b"# Local promptform state; never commit it.\n*\n"


def ensure_state_dir(directory: Path) -> None:
    """Create `directory` with a .gitignore, so local state never lands in a commit."""
    if directory.is_symlink():
        raise PromptformError(
            f"{directory.name}/ is a symlink; promptform keeps local state there and does not "
            f"follow links out of the checkout: remove it (`rm {directory.name}`)"
        )
    directory.mkdir(parents=True, exist_ok=True)
    try:
        handle = os.open(
            directory / ".gitignore", os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644
        )
    except FileExistsError:  # also a symlink, dangling or not: left as it is, never written through
        return
    with os.fdopen(handle, "wb") as stream:
        stream.write(_IGNORE_ALL)
