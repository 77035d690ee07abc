"""Writing images into outputs_dir without losing what was there.

An image promptform replaces, deletes or collects is kept under `.promptform/trash/<stamp>/<path>`
(a hard link where it is about to be overwritten, so keeping it costs no copy), and new images are
written atomically. apply, adopt and gc all go through here.
"""

from __future__ import annotations

import errno
import hashlib
import itertools
import os
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from promptform.core.atomic import atomic_write
from promptform.core.errors import PromptformError
from promptform.core.fingerprint import hash_file
from promptform.core.images import ImageInfo
from promptform.core.paths import path_key, relative_path_problem
from promptform.state.lockfile import LockedOutput
from promptform.state.lockfile_writer import LockfileWriter

# A trash folder's name: the moment its run started, in UTC (`gc --empty-trash` reads it back).
TRASH_STAMP_FORMAT = "%Y%m%dT%H%M%S.%fZ"
# What a recorded output is renamed to while its path is needed by another (moves, step-aside).
ASIDE_SUFFIX = ".promptform-moving"


class Trash:
    """One run's folder under .promptform/trash/, named after the moment the run started."""

    def __init__(self, state_dir: Path, outputs_dir: Path, now: datetime | None = None) -> None:
        stamp = (now or datetime.now(UTC)).strftime(TRASH_STAMP_FORMAT)
        self.folder = state_dir / "trash" / stamp
        self.outputs_dir = outputs_dir

    def keep(self, path: Path, move: bool = False) -> Path | None:
        """Keep the file at `path` (under outputs_dir): moved away, or linked before an overwrite."""
        check_inside(self.outputs_dir, path)
        if not path.is_file():
            return None
        kept = self._free_name(self.folder / path.relative_to(self.outputs_dir))
        kept.parent.mkdir(parents=True, exist_ok=True)
        if move:
            path.replace(kept)
            return kept
        try:
            os.link(path, kept)  # the old inode survives the atomic replace that follows
        except OSError:  # a file system without hard links
            atomic_write(kept, path.read_bytes())
        return kept

    def keep_unused(self, relative: str, data: bytes) -> Path:
        """Keep paid bytes that never became an output (a stale batch result) at `relative`'s
        place in this run's folder, as if they had been written there and then replaced."""
        problem = relative_path_problem(relative)
        if problem:
            raise PromptformError(f"output path {relative!r} {problem}; refusing to write it")
        kept = self._free_name(self.folder / relative)
        atomic_write(kept, data, shared=True)
        return kept

    @staticmethod
    def _free_name(kept: Path) -> Path:
        # Never overwrite something already kept: the same path twice in one run keeps both.
        candidate, number = kept, 1
        while candidate.exists():
            number += 1
            candidate = kept.with_name(f"{kept.name}.{number}")
        return candidate


def check_inside(outputs_dir: Path, path: Path) -> Path:
    """`path`, if its folder is outputs_dir or under it; PromptformError if it leads elsewhere.

    Paths in the lockfile come from a file anyone can edit in a pull request: `../` or a
    symlinked folder must not make promptform move, overwrite or read a file outside outputs_dir.
    """
    if not path.parent.resolve().is_relative_to(outputs_dir.resolve()):
        shown = path.relative_to(outputs_dir) if path.is_relative_to(outputs_dir) else path
        raise PromptformError(
            f"output path '{shown}' leads outside {outputs_dir.name}/; refusing to touch it "
            "(check promptform.lock)"
        )
    return path


def write_outputs(
    outputs_dir: Path,
    trash: Trash,
    paths: Sequence[str],
    images: Sequence[tuple[bytes, ImageInfo]],
    previous: Sequence[LockedOutput] = (),
    claimed: Collection[str] = (),
    record: Callable[[list[LockedOutput]], None] | None = None,
) -> list[LockedOutput]:
    """Write `images` to `paths` (under outputs_dir) and describe them for the lockfile.

    `record` is called with the new outputs once all are written (it rewrites the lockfile); if
    it fails, what was at those paths is put back, so the lockfile and the files still agree.
    Then previous outputs that are no longer produced go to the trash, as what was at the paths
    already has, except a previous path in `claimed` (`path_key`s): another target's output is
    there now (a move).
    """
    outputs = []
    written: list[tuple[Path, Path | None]] = []  # (destination, its old file kept in the trash)
    for path, (data, info) in zip(paths, images, strict=True):
        destination = outputs_dir / path
        try:
            kept = trash.keep(destination)
            atomic_write(destination, data, shared=True)
        except BaseException:
            # All or nothing: a target half written would leave unrecorded files where the
            # lockfile records others. The caller keeps the new bytes elsewhere.
            put_back(written)
            raise
        written.append((destination, kept))
        outputs.append(_described(path, data, info))
    if record is not None:
        try:
            record(outputs)
        except BaseException:
            put_back(written)
            raise
    # Case-folded: where `Hero.png` became `hero.png`, the old path is the file just written.
    current = {path_key(path) for path in paths}
    for old in previous:
        key = path_key(old.path)
        if key not in current and key not in claimed:
            trash.keep(outputs_dir / old.path, move=True)
    return outputs


def _described(path: str, data: bytes, info: ImageInfo) -> LockedOutput:
    return LockedOutput(
        path=path,
        sha256=hashlib.sha256(data).hexdigest(),
        bytes=len(data),
        format=info.format,
        width=info.width,
        height=info.height,
    )


# One target's staged images: (the staged file, where it goes under outputs_dir).
Staged = list[tuple[Path, Path]]


class StagedOutputs:
    """Images written aside first and put in place a group at a time, just before the group is
    recorded: collect records many targets per lockfile rewrite (one rewrite per target would be
    quadratic in a 50,000-entry shard), and this way the files and the lockfile disagree only
    between a group's renames and its rewrite, as apply's do for one target, never for the time
    it takes to write a group. What a crash leaves here, collect throws away the next time: the
    batch still holds those results."""

    def __init__(self, folder: Path, outputs_dir: Path, trash: Trash) -> None:
        self.folder = folder
        self.outputs_dir = outputs_dir
        self.trash = trash
        self._names = itertools.count()

    def stage(
        self, paths: Sequence[str], images: Sequence[tuple[bytes, ImageInfo]]
    ) -> tuple[list[LockedOutput], Staged]:
        """Write `images` aside; their lockfile description, and where each goes."""
        self.folder.mkdir(parents=True, exist_ok=True)
        outputs, staged = [], []
        for path, (data, info) in zip(paths, images, strict=True):
            destination = self.outputs_dir / path
            check_inside(self.outputs_dir, destination)
            aside = self.folder / f"{next(self._names)}.{info.format}"
            atomic_write(aside, data, shared=True)
            staged.append((aside, destination))
            outputs.append(_described(path, data, info))
        return outputs, staged

    def place(self, staged: Iterable[Staged]) -> list[tuple[Path, Path | None]]:
        """Put staged images in place, keeping what they replace in the trash; what was done, for
        `put_back`. If one fails, those placed are put back before the error is raised."""
        placed: list[tuple[Path, Path | None]] = []
        try:
            for target in staged:
                for aside, destination in target:
                    kept = self.trash.keep(destination)
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    _rename(aside, destination)
                    placed.append((destination, kept))
        except BaseException:
            put_back(placed)
            raise
        return placed


def _rename(source: Path, destination: Path) -> None:
    try:
        source.replace(destination)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        # .promptform on another file system (a symlink): write in place atomically instead.
        atomic_write(destination, source.read_bytes(), shared=True)
        source.unlink()


def put_back(written: Sequence[tuple[Path, Path | None]]) -> None:
    """Undo the writes of a failed `write_outputs`: the previous file back, or no file."""
    for destination, kept in reversed(written):
        if kept is None:
            destination.unlink(missing_ok=True)
        else:
            atomic_write(destination, kept.read_bytes())


def step_aside_recorded(
    outputs_dir: Path,
    writer: LockfileWriter,
    claims: Mapping[str, Collection[str]],
    leave: Collection[str] = (),
) -> None:
    """Before files are put at the paths in `claims` (`path_key` -> the addresses putting them
    there): a file another lock entry still records at such a path is renamed to a free
    `<path>.promptform-moving` name, and that entry rewritten to say so. Nothing then overwrites
    an image the lockfile names for someone else, and the next plan moves it on or deletes it.

    Entries in `leave` are not stepped aside (their own moves step aside what they hold), but
    what a crash left of an earlier step-aside of theirs is put right before those moves run.
    """
    involved = {address for key in claims for address in writer.recorded_by(key)}
    recover_stepped_aside(outputs_dir, writer, involved | set(leave))
    for address in sorted(involved):
        entry = writer.entry(address)
        if entry is None or address in leave:
            continue
        outputs = list(entry.outputs)
        for index, output in enumerate(outputs):
            claimants = claims.get(path_key(output.path))
            if claimants is None or address in claimants:
                continue
            source = check_inside(outputs_dir, outputs_dir / output.path)
            aside = free_aside(outputs_dir, output.path, writer)
            # Renamed first, recorded second, as moves.py does. A kill -9 between the two leaves
            # the entry naming a path its image has left, but the image sits under a fresh name
            # that only a step-aside ever writes, so nothing can overwrite it before
            # `recover_stepped_aside` finds it by that name and its sha256. Recording first would
            # leave the image at a path no entry names any more, the very path a newcomer is
            # about to be written to: its write would put the image in the trash, out of reach.
            if source.is_file():
                source.replace(outputs_dir / aside)
            # Recorded even when the file is gone: the entry must not name the newcomer's image.
            outputs[index] = replace(output, path=aside)
        if outputs != entry.outputs:
            writer.put(address, replace(entry, outputs=outputs))


def recover_stepped_aside(
    outputs_dir: Path, writer: LockfileWriter, addresses: Iterable[str]
) -> bool:
    """Put right what a step-aside killed between its rename and its lockfile rewrite left: an
    entry of `addresses` naming a path that does not hold its recorded image, while a
    `<path>.promptform-moving*` file no entry records does.

    The image goes back to its recorded path when nothing is there, which undoes the half done
    step-aside and keeps true a plan made from the lockfile before. When something is there (the
    newcomer it stepped aside for, written by a run that did not know, or a file put there by
    hand), the entry records the image where it is, which is what the step-aside would have done.
    Whether anything was put right.
    """
    asides: dict[Path, dict[str, list[str]]] = {}  # folder -> file name -> its names aside
    recovered = False
    for address in sorted(addresses):
        entry = writer.entry(address)
        if entry is None:
            continue
        outputs = list(entry.outputs)
        for index, output in enumerate(outputs):
            found = _stepped_aside(outputs_dir, output, writer, asides)
            if found is None:
                continue
            path = outputs_dir / output.path
            if os.path.lexists(path):
                outputs[index] = replace(output, path=found)
            else:
                (outputs_dir / found).replace(path)
                del asides[path.parent]  # listed again if needed: that name is gone
            recovered = True
        if outputs != entry.outputs:
            writer.put(address, replace(entry, outputs=outputs))
    return recovered


def _stepped_aside(
    outputs_dir: Path,
    output: LockedOutput,
    writer: LockfileWriter,
    asides: dict[Path, dict[str, list[str]]],
) -> str | None:
    """The path of an unrecorded `<output.path>.promptform-moving*` file holding `output`'s
    recorded image, when `output.path` itself does not hold it; else None."""
    try:
        path = check_inside(outputs_dir, outputs_dir / output.path)
    except PromptformError:
        return None  # never touched here: the move or write of that path refuses it, saying why
    if path.parent not in asides:
        asides[path.parent] = names_aside(path.parent)
    names = asides[path.parent].get(path.name)
    # Most entries have nothing aside: their own file is hashed only when something is.
    if not names or (path.is_file() and hash_file(path) == output.sha256):
        return None
    for name in names:
        candidate = output.path + name[len(path.name) :]
        aside = outputs_dir / candidate
        if writer.recorded_by(path_key(candidate)) or not aside.is_file():
            continue
        if hash_file(aside) == output.sha256:
            return candidate
    return None


def names_aside(folder: Path) -> dict[str, list[str]]:
    """The `<name>.promptform-moving[N]` files in `folder`, by `<name>`: one listing per folder
    rather than a stat per recorded output, as a plan of many moves has many outputs there."""
    found: dict[str, list[str]] = {}
    try:
        with os.scandir(folder) as listing:
            names = sorted(item.name for item in listing)
    except OSError:  # no folder: nothing aside in it
        return found
    for name in names:
        base, suffix, number = name.rpartition(ASIDE_SUFFIX)
        if suffix and base and (number == "" or number.isdigit()):
            found.setdefault(base, []).append(name)
    return found


def free_aside(outputs_dir: Path, path: str, writer: LockfileWriter) -> str:
    """A name to step `path` aside to that holds no file and no entry records."""
    candidate, number = f"{path}{ASIDE_SUFFIX}", 1
    while (outputs_dir / candidate).exists() or writer.recorded_by(path_key(candidate)):
        number += 1
        candidate = f"{path}{ASIDE_SUFFIX}{number}"
    return candidate


def held_by_others(
    writer: LockfileWriter, address: str, outputs: Iterable[LockedOutput], claimed: Collection[str]
) -> set[str]:
    """The `path_key`s of `outputs` that a current target writes (`claimed`) or a lock entry
    other than `address` records: files there are someone else's, not to be trashed."""
    keys = {path_key(output.path) for output in outputs}
    return {key for key in keys if key in claimed or writer.recorded_by(key) - {address}}
