"""Reading and writing promptform.lock in tests, in either layout."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from promptform.state.lockfile import LEGACY_LOCK_VERSION, Lockfile, dumps


def lock_files(lock: Path) -> dict[str, bytes]:
    """Every shard of the lock directory `lock`, by its path inside it."""
    return {
        path.relative_to(lock).as_posix(): path.read_bytes()
        for path in sorted(lock.rglob("*"))
        if path.is_file()
    }


def locked_targets(lock: Path) -> dict[str, Any]:
    """The entries of every shard as plain JSON, address -> entry."""
    targets: dict[str, Any] = {}
    for data in lock_files(lock).values():
        targets.update(json.loads(data)["targets"])
    return targets


def write_legacy_lock(path: Path, lockfile: Lockfile) -> Path:
    """The single promptform.lock file of version 1, as promptform wrote it before the shards."""
    path.write_text(dumps(replace(lockfile, version=LEGACY_LOCK_VERSION)))
    return path
