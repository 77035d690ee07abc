"""Drift: generated outputs on disk that no longer match promptform.lock.

Reading every image on every plan would make `plan` slow on big repositories, so a local stat cache
(`.promptform/stat-cache.json`, outside git) remembers each file's size, mtime and sha256; a file whose
size and mtime are unchanged is trusted. `--verify` hashes every file regardless.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from promptform.core.atomic import atomic_write
from promptform.core.config import Config
from promptform.core.fingerprint import hash_file
from promptform.state.lockfile import LockEntry
from promptform.state.state_dir import ensure_state_dir

STAT_CACHE_FILE = "stat-cache.json"
STAT_CACHE_VERSION = 1
LFS_POINTER_PREFIX = b"version https://git-lfs.github.com/spec/v1"
# Git LFS pointer files are about 130 bytes; anything bigger cannot be one.
MAX_LFS_POINTER_BYTES = 1024

DriftKind = Literal["missing", "modified", "lfs-pointer"]


@dataclass(frozen=True)
class Drift:
    """An output on disk that no longer matches the lockfile. Reported, never silently fixed."""

    address: str
    path: str  # under outputs_dir
    kind: DriftKind
    message: str


class StatCache:
    """sha256 of files keyed by path, valid while their size and mtime stay the same."""

    def __init__(self, path: Path, entries: dict[str, Any]) -> None:
        self.path = path
        # key -> [size, mtime_ns, sha256] as read from the file: checked when looked up, so a
        # no-op plan on 10,000 outputs does not build 10,000 objects it compares once each.
        self.entries = entries
        self.changed = False

    @classmethod
    def load(cls, path: Path) -> StatCache:
        """The cache at `path`; an empty one when it is missing or unreadable (it is only a cache)."""
        try:
            data = json.loads(path.read_bytes())
        except (OSError, ValueError, RecursionError):
            return cls(path, {})
        if type(data) is not dict or data.get("version") != STAT_CACHE_VERSION:
            return cls(path, {})
        files = data.get("files")
        return cls(path, files if type(files) is dict else {})

    def lookup(self, key: str, stat: os.stat_result) -> str | None:
        cached = self.entries.get(key)
        if (
            type(cached) is list
            and len(cached) == 3
            and type(cached[2]) is str
            # type() too: JSON's 1.0 would equal a size of 1
            and type(cached[0]) is int
            and cached[0] == stat.st_size
            and type(cached[1]) is int
            and cached[1] == stat.st_mtime_ns
        ):
            return cached[2]
        return None

    def remember(self, key: str, stat: os.stat_result, sha256: str) -> None:
        new = [stat.st_size, stat.st_mtime_ns, sha256]
        if self.entries.get(key) != new:
            self.entries[key] = new
            self.changed = True

    def save(self) -> None:
        """Write the cache when it changed; a read-only checkout just goes without."""
        if not self.changed:
            return
        files = dict(sorted(self.entries.items()))
        data = json.dumps({"version": STAT_CACHE_VERSION, "files": files}, separators=(",", ":"))
        try:
            ensure_state_dir(self.path.parent)
            atomic_write(self.path, data.encode("utf-8"))
        except OSError:
            return
        self.changed = False


def check_drift(
    config: Config, entries: Mapping[str, LockEntry], verify: bool = False
) -> tuple[Drift, ...]:
    """Every output of `entries` that is missing, modified or a Git LFS pointer, in address order."""
    cache = StatCache.load(config.state_dir / STAT_CACHE_FILE)
    shown_dir = config.project.outputs_dir.strip("/")
    # Plain strings, not Path objects: this loop runs once per output on every plan.
    outputs_dir = os.fspath(config.outputs_dir) + os.sep
    found: list[Drift] = []
    asides: _Asides = {}
    for address in sorted(entries):
        for output in entries[address].outputs:
            full = outputs_dir + output.path
            kind = _output_drift(full, output.path, output.bytes, output.sha256, cache, verify)
            if kind is not None:
                message = drift_message(kind, f"{shown_dir}/{output.path}", address)
                aside = _aside_holding(full, output.sha256, asides) if kind == "missing" else None
                if aside is not None:
                    message = _aside_message(f"{shown_dir}/{output.path}", aside)
                found.append(Drift(address, output.path, kind, message))
    cache.save()
    return tuple(found)


# folder -> file name -> its names aside, listed once per folder by one check.
_Asides = dict[str, dict[str, list[str]]]


def _aside_holding(full: str, sha256: str, asides: _Asides) -> str | None:
    """The name of a `<output>.promptform-moving[N]` file beside the missing output `full` that
    holds its recorded image: what an apply killed while stepping it aside leaves (the files
    the next apply's recovery looks at, found the same way)."""
    from promptform.state.outputs import names_aside  # only for a missing output: rare

    folder, name = os.path.split(full)
    if folder not in asides:  # thousands of outputs missing from one folder: one listing
        asides[folder] = names_aside(Path(folder))
    for candidate in asides[folder].get(name, ()):
        aside = Path(folder, candidate)
        if aside.is_file() and hash_file(aside) == sha256:
            return candidate
    return None


def _aside_message(shown_path: str, aside: str) -> str:
    shown_aside = f"{shown_path.rpartition('/')[0]}/{aside}".lstrip("/")
    return (
        f"{shown_path} is missing, and {shown_aside} holds its image (an apply was stopped while "
        "stepping it aside): `promptform apply` puts it back"
    )


def drift_message(kind: DriftKind, shown_path: str, address: str) -> str:
    """What happened to an output, and what to do about it."""
    if kind == "missing":
        return (
            f"{shown_path} is missing; restore it from git, or run `promptform apply --repair` "
            "to regenerate it (`plan --repair` shows what that would do)"
        )
    if kind == "lfs-pointer":
        return f"{shown_path} is a Git LFS pointer, not the image; run `git lfs pull`"
    return (
        f"{shown_path} differs from what promptform.lock records; restore it from git, "
        f"or regenerate it with `promptform apply --replace '{address}'`"
    )


def _output_drift(
    path: str, key: str, size: int, sha256: str, cache: StatCache, verify: bool
) -> DriftKind | None:
    try:
        stat = os.stat(path)  # noqa: PTH116 - a str path skips Path overhead in the hot loop
    except (FileNotFoundError, NotADirectoryError):
        return "missing"
    if stat.st_size != size:
        if stat.st_size <= MAX_LFS_POINTER_BYTES and _is_lfs_pointer(path):
            return "lfs-pointer"
        return "modified"
    digest = None if verify else cache.lookup(key, stat)
    if digest is None:
        digest = hash_file(Path(path))
        cache.remember(key, stat, digest)
    return None if digest == sha256 else "modified"


def _is_lfs_pointer(path: str) -> bool:
    try:
        with Path(path).open("rb") as handle:
            return handle.read(len(LFS_POINTER_PREFIX)) == LFS_POINTER_PREFIX
    except OSError:
        return False


# Folders never searched for a previous outputs_dir.
_NOT_OUTPUTS = frozenset({".git", ".promptform", "node_modules", ".venv"})
_SEARCH_DEPTH = 3


@dataclass(frozen=True)
class OutputsDirChange:
    """None of the recorded outputs is under outputs_dir: it was most likely changed."""

    current: str  # outputs_dir as configured
    previous: str | None  # the folder holding them now, relative to the root, if one was found
    outputs: int  # how many outputs the lockfile records


def detect_outputs_dir_change(
    config: Config, entries: Mapping[str, LockEntry]
) -> OutputsDirChange | None:
    """An OutputsDirChange when `entries` record outputs and not one of them is on disk.

    Cheap when nothing changed: the first output found ends the check.
    """
    paths = [output.path for entry in entries.values() for output in entry.outputs]
    if not paths or any((config.outputs_dir / path).is_file() for path in paths):
        return None
    outputs_dir = os.fspath(config.outputs_dir) + os.sep
    asides: _Asides = {}
    if any(
        _aside_holding(outputs_dir + output.path, output.sha256, asides) is not None
        for entry in entries.values()
        for output in entry.outputs
    ):
        return None  # not moved away: an interrupted apply stepped them aside (check_drift says)
    return OutputsDirChange(
        current=config.project.outputs_dir.strip("/"),
        previous=_folder_holding(config.root, paths[0], config.outputs_dir),
        outputs=len(paths),
    )


def _folder_holding(root: Path, path: str, skip: Path) -> str | None:
    """A folder under `root` (a few levels deep) holding `path`: where the outputs were."""
    level = [root]
    for _ in range(_SEARCH_DEPTH):
        deeper = []
        for folder in level:
            try:
                children = sorted(child for child in folder.iterdir() if child.is_dir())
            except OSError:
                continue
            for child in children:
                if child.name in _NOT_OUTPUTS or child == skip:
                    continue
                if (child / path).is_file():
                    return child.relative_to(root).as_posix()
                deeper.append(child)
        level = deeper
    return None
