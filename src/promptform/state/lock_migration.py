"""Converting the single promptform.lock of version 1 into the directory of shards, crash-safely.

The steps: write every shard into a sibling temp directory, rename the file to its backup name,
rename the directory into place, delete the backup. Whatever step a crash interrupts, the entries
are complete in one place readers look: the file, the backup (when there is no lock by the name),
or the directory; the next migration starts again from the file or the backup, or only deletes the
backup. Runs under the apply lock, so no other writer sees the steps.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

from promptform.core.atomic import atomic_write
from promptform.state.lockfile import backup_path, read_lock_state, shard_path, shard_texts

TEMP_SUFFIX = ".v2-partial"


def migrate_lockfile(path: Path, shards: Mapping[str, str], shown: str | None = None) -> bool:
    """Make the lock at `path` a shard directory, each address in its shard of `shards`.

    Returns whether there was a single file (or a backup) to convert; False when the lock already
    is a directory or does not exist.
    """
    backup, temp = backup_path(path), path.with_name(path.name + TEMP_SUFFIX)
    if path.is_dir():
        backup.unlink(missing_ok=True)  # the crash came after the directory was in place
        _remove_tree(temp)
        return False
    state = read_lock_state(path, shown)
    if state.layout not in ("single", "backup"):
        return False
    _remove_tree(temp)  # from a migration cut short: it may be incomplete
    for name, text in shard_texts(state.lockfile, shards).items():
        atomic_write(shard_path(temp, name), text.encode("utf-8"))
    temp.mkdir(exist_ok=True)  # an empty lock is an empty directory
    if state.layout == "single":
        path.replace(backup)
    temp.rename(path)
    backup.unlink()
    return True


def _remove_tree(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
