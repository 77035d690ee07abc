"""Emptying .promptform/trash/: deleting for good what apply and `gc --yes` set aside.

Every run that replaces, deletes or collects a file keeps it in a folder of its own under the trash,
named after the moment the run started (state/outputs.py `Trash`), so the trash only grows.
Only entries directly under trash/ are considered: .promptform/rescued/ (paid-for images that failed
a check) is not trash and is never touched. Nothing is followed through a symlink: the trash sits in
a checkout anyone can commit links into, and emptying it must never delete a file elsewhere.
"""

from __future__ import annotations

import os
import re
import shutil
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from promptform.core.errors import PromptformError, display_path
from promptform.state.outputs import TRASH_STAMP_FORMAT

# Hours, days and weeks only: `m` could be read as minutes or months, and reading a user's "3m"
# (months) as minutes would delete far more than they meant.
_UNITS = {"h": "hours", "d": "days", "w": "weeks"}
# At most five digits: 99999w is still well inside what a datetime can subtract from today.
_DURATION = re.compile(r"([1-9][0-9]{0,4})([hdw])")


@dataclass(frozen=True)
class Duration:
    text: str  # as the user wrote it, for messages
    delta: timedelta


def parse_duration(text: str) -> Duration:
    """`30d`, `12h`, `2w`: a whole number and one unit, nothing else."""
    match = _DURATION.fullmatch(text)
    if match is None:
        raise PromptformError(
            f"'{text}' is not a duration: use a whole number of hours, days or weeks, "
            "e.g. 12h, 30d or 2w"
        )
    number, unit = match.groups()
    return Duration(text, timedelta(**{_UNITS[unit]: int(number)}))


@dataclass(frozen=True)
class TrashFolder:
    path: Path
    started: datetime  # when the run that filled it started (UTC)
    files: int
    bytes: int  # freed by deleting it; a file still hard-linked from outside the selection frees 0


@dataclass(frozen=True)
class TrashSelection:
    folders: list[TrashFolder]  # oldest first
    kept: int  # folders left alone because they are not older than --older-than

    @property
    def files(self) -> int:
        return sum(folder.files for folder in self.folders)

    @property
    def bytes(self) -> int:
        return sum(folder.bytes for folder in self.folders)


def select_trash(
    state_dir: Path, root: Path, older_than: Duration | None, now: datetime | None = None
) -> TrashSelection:
    """The trash folders to delete: all of them, or those started before `now - older_than`."""
    trash = state_dir / "trash"
    shown = display_path(trash, root)
    if trash.is_symlink():
        raise PromptformError(
            f"{shown} is a symlink; gc only deletes inside its own trash and does not follow a "
            f"link out of it: remove the link (`rm {shown}`) and empty what it points to yourself"
        )
    if not trash.exists():
        return TrashSelection([], 0)
    if not trash.is_dir():
        raise PromptformError(f"{shown} is not a folder: remove it (`rm {shown}`)")
    cutoff = None if older_than is None else (now or datetime.now(UTC)) - older_than.delta
    chosen: list[tuple[Path, datetime]] = []
    kept = 0
    # Stamp names sort in time order, so this lists the oldest first.
    for entry in sorted(trash.iterdir()):
        if entry.is_symlink():
            name = display_path(entry, root)
            raise PromptformError(
                f"{name} is a symlink; trash folders are never links and gc does not follow one "
                f"out of the trash: remove the link (`rm {name}`) and run it again"
            )
        started = _started(entry)
        if cutoff is not None and started >= cutoff:
            kept += 1
        else:
            chosen.append((entry, started))
    return TrashSelection(_measure(chosen), kept)


def _started(entry: Path) -> datetime:
    # The folder's name is the moment its run started, written by Trash: copying, restoring or
    # touching the folder does not change it, whereas its mtime moves whenever a file is added to
    # or taken out of it. The mtime is only the fallback for a name that is not a stamp (a folder
    # renamed by hand, or a stray file).
    try:
        return datetime.strptime(entry.name, TRASH_STAMP_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return datetime.fromtimestamp(entry.lstat().st_mtime, UTC)


def _measure(chosen: Sequence[tuple[Path, datetime]]) -> list[TrashFolder]:
    # A kept file is a hard link to what was overwritten; when its other link still exists
    # (outside the trash, or in a folder not selected), deleting it frees no space. Bytes count
    # once the last link of an inode inside the selection is seen, and only if no other is left.
    links_seen: Counter[tuple[int, int]] = Counter()
    folders = []
    for path, started in chosen:
        files = size = 0
        for stat in _file_stats(path):
            files += 1
            if stat.st_nlink > 1:
                inode = (stat.st_dev, stat.st_ino)
                links_seen[inode] += 1
                if links_seen[inode] < stat.st_nlink:
                    continue
            size += stat.st_size
        folders.append(TrashFolder(path, started, files, size))
    return folders


def _file_stats(path: Path) -> Iterator[os.stat_result]:
    """lstat of every non-folder under `path` (or of `path` itself); links are not followed."""
    if not path.is_dir() or path.is_symlink():
        yield path.lstat()
        return
    with os.scandir(path) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                yield from _file_stats(Path(entry.path))
            else:
                yield entry.stat(follow_symlinks=False)


def delete_trash(folders: Sequence[TrashFolder], root: Path) -> None:
    """Delete `folders` for good; call it under the apply lock, so no apply is writing into them."""
    for done, folder in enumerate(folders):
        path = folder.path
        try:
            # rmtree removes links found inside as links, never what they point to, and refuses
            # a folder swapped for a link since it was listed.
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        except OSError as exc:
            raise PromptformError(
                f"cannot delete {display_path(path, root)}: {exc.strerror or exc}; {done} of "
                f"{len(folders)} trash folders were deleted before it (fix its permissions and "
                "run `promptform gc --empty-trash` again)"
            ) from None
