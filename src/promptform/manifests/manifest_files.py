"""Where manifests are: finding manifest files and naming their targets, without parsing any.

Apart from manifest.py so that a plan answered by the render cache finds its files without
importing the manifest models (and pydantic with them).
"""

from __future__ import annotations

import os
from pathlib import Path

Scalar = str | int | float | bool  # a matrix value or a variable


_SUFFIXES = (".yaml", ".yml")


def _suffix(name: str) -> bool:
    # As Path.suffix sees it: `.yaml` alone is a name without a suffix.
    return name.rpartition(".")[0] != ""


def find_manifest_files(prompts_dir: Path) -> list[Path]:
    """Every *.yaml / *.yml under prompts_dir that is a file (or a symlink to one), without
    entering symlinked folders, in the order of their paths under prompts_dir.

    What `prompts_dir.rglob("*")` filtered by suffix and `is_file()` finds, walked with os.scandir:
    pathlib's glob took ten times as long, which a no-op plan of 1,000 manifest files noticed.
    """
    if not prompts_dir.is_dir():
        return []
    found: list[tuple[str, str]] = []  # (path under prompts_dir, POSIX; full path)
    folders = [(os.fspath(prompts_dir), "")]
    while folders:
        folder, prefix = folders.pop()
        try:
            entries = os.scandir(folder)
        except OSError:
            continue  # unreadable: passed over, as glob does
        with entries:
            for entry in entries:
                name = entry.name
                # A DirEntry knows a plain file or folder from the listing: no stat for those.
                if entry.is_dir(follow_symlinks=False):  # a symlinked folder is not entered
                    folders.append((entry.path, f"{prefix}{name}/"))
                elif name.endswith(_SUFFIXES) and _suffix(name) and entry.is_file():
                    found.append((prefix + name, entry.path))
    return [Path(full) for _, full in sorted(found)]


def manifest_stem(path: Path, prompts_dir: Path) -> str:
    """The default name of a manifest file's targets: its path under prompts_dir, no extension."""
    return path.relative_to(prompts_dir).with_suffix("").as_posix()
