"""What promptform asks of git: the commit manifests came from, and whether they are committed.

The only module that imports gitpython.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import git


@dataclass(frozen=True)
class SourceState:
    commit: str | None  # HEAD, or None outside a repository / before the first commit
    dirty_paths: tuple[str, ...]  # of the paths asked about: changed or untracked, repo-relative


def source_state(root: Path, paths: Iterable[str]) -> SourceState:
    """HEAD of the repository containing `root`, and which of `paths` differ from it."""
    try:
        repo = git.Repo(root, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return SourceState(None, ())
    with repo:
        try:
            commit: str | None = repo.head.commit.hexsha
        except ValueError:  # no commits yet
            commit = None
        top = Path(repo.working_tree_dir or root).resolve()
        wanted = [_relative(root / path, top) for path in paths]
        wanted = [path for path in wanted if path is not None]
        if not wanted:
            return SourceState(commit, ())
        changed = repo.git.status("--porcelain", "--untracked-files=all", "--", *wanted)
        dirty = tuple(line[3:] for line in changed.splitlines() if line.strip())
        return SourceState(commit, dirty)


def _relative(path: Path, top: Path) -> str | None:
    try:
        return path.resolve().relative_to(top).as_posix() or "."
    except ValueError:
        return None
