"""promptform.lock as committed: at one commit, or every version of it, in either layout.

Everything that reads the lock from git (lock audits, the pull-request budget, cost, the report's
base) goes through here: git gives what the path holds (the single file of version 1, or the
directory of shards), state/lockfile.py parses it.
"""

from __future__ import annotations

from pathlib import Path

from promptform.core.errors import LockfileError
from promptform.gitops.gitrepo import files_at, files_history
from promptform.state.lockfile import Lockfile, lock_from_files


def lockfile_at(root: Path, commit: str, path: str, shown: str | None = None) -> Lockfile:
    """The lock at repository path `path` in `commit`; empty when there is none there.

    Raises LockfileError (naming `shown`, by default `path at COMMIT`) when it does not parse.
    """
    files = files_at(root, commit, path)
    return lock_from_files(files, shown or f"{path} at {commit[:12]}").lockfile


def lock_history(
    root: Path,
    path: str,
    since: str | None = None,
    every_branch: bool = False,
    skip_unreadable: bool = False,
) -> list[Lockfile]:
    """Every committed version of the lock, newest first (see gitrepo.files_history for `since`
    and `every_branch`). A version that does not parse raises LockfileError naming its commit, or
    with `skip_unreadable` counts as empty (one committed mid-conflict must not hide the rest)."""
    versions = []
    for version in files_history(root, path, since, every_branch):
        try:
            versions.append(lock_from_files(version.files, f"{path} at {version.commit[:12]}"))
        except LockfileError:
            if not skip_unreadable:
                raise
            continue
    return [state.lockfile for state in versions]
