"""Moves and deletes of recorded outputs: no network, only renames and the trash.

A move renames files and rewrites the lock entry to their new paths; a delete puts the files in the
trash and drops the entry. Neither ever destroys an image: whatever stands where a file goes is
trashed first.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Set
from pathlib import Path

from promptform.core.errors import PromptformError
from promptform.core.fingerprint import hash_file
from promptform.core.paths import path_key
from promptform.engine.plan_model import Change
from promptform.state.lockfile import LockedOutput
from promptform.state.lockfile_writer import LockfileWriter
from promptform.state.outputs import Trash, check_inside, free_aside, held_by_others

# Called with a change once it is done, or with the change and why it failed.
Done = Callable[[Change], None]
Failed = Callable[[Change, str], None]


class OutputMover:
    """Carries out the move and delete changes of one plan."""

    def __init__(
        self,
        outputs_dir: Path,
        trash: Trash,
        writer: LockfileWriter,
        claimed: Set[str],
        done: Done,
        failed: Failed,
    ) -> None:
        self.outputs_dir = outputs_dir
        self.trash = trash
        self.writer = writer
        # `path_key`s of paths a target of the plan writes: never trashed as an old output.
        self.claimed = claimed
        self.done = done
        self.failed = failed

    def move_all(self, moves: list[Change]) -> None:
        """Moves, in two steps where one takes a path another leaves: a swap or a shift (a -> b
        while b -> c) must not put one target's image where another's is recorded."""
        taken = {path_key(new) for change in moves for old, new in change.renames if old != new}
        ready: list[Change] = []
        stuck: set[str] = set()
        for change in moves:
            try:
                ready.append(self._step_aside(change, taken))
            except (PromptformError, OSError) as exc:
                self.failed(change, str(exc))
                if change.entry is not None:
                    stuck.update(path_key(output.path) for output in change.entry.outputs)
        for change in ready:
            if any(path_key(new) in stuck for _, new in change.renames):
                self.failed(change, "not moved: its new path still holds an output that failed")
            else:
                self._guarded(change, self._move)

    def delete(self, change: Change) -> None:
        self._guarded(change, self._delete)

    def _guarded(self, change: Change, action: Callable[[Change], None]) -> None:
        try:
            action(change)
        except (PromptformError, OSError) as exc:
            self.failed(change, str(exc))

    def _step_aside(self, change: Change, taken: set[str]) -> Change:
        """Outputs whose path another move takes go to a temporary name first, recorded in the
        lockfile, so after a crash the next plan moves them on."""
        assert change.entry is not None
        renames, entry = dict(change.renames), change.entry
        for index, output in enumerate(entry.outputs):
            new = renames.get(output.path, output.path)
            # A case-only rename takes no other file's path: it renames in place.
            if path_key(output.path) == path_key(new) or path_key(output.path) not in taken:
                continue
            # A crash after this rename, before the lockfile caught up: the file is at its new
            # path already, and is recorded there before any other move can take its old one.
            done = self._already_moved(output, new)
            aside = new if done else free_aside(self.outputs_dir, output.path, self.writer)
            if not done:
                self._rename_output(change.moved_from or change.address, output, aside)
            outputs = list(entry.outputs)
            outputs[index] = dataclasses.replace(output, path=aside)
            entry = dataclasses.replace(entry, outputs=outputs)
            self.writer.update({change.moved_from or change.address: entry}, ())
            del renames[output.path]
            if not done:
                renames[aside] = new
        if entry is change.entry:
            return change
        return dataclasses.replace(change, entry=entry, renames=tuple(renames.items()))

    def _already_moved(self, output: LockedOutput, new: str) -> bool:
        """Whether `output` is no longer at its path but its recorded image is at `new`."""
        source = check_inside(self.outputs_dir, self.outputs_dir / output.path)
        destination = check_inside(self.outputs_dir, self.outputs_dir / new)
        return (
            not source.exists()
            and destination.is_file()
            and hash_file(destination) == output.sha256
        )

    def _move(self, change: Change) -> None:
        assert change.entry is not None and change.target is not None
        by_old = dict(change.renames)
        recorded_as = change.moved_from or change.address
        outputs = list(change.entry.outputs)
        for index, output in enumerate(change.entry.outputs):
            new = by_old.get(output.path, output.path)
            try:
                self._rename_output(recorded_as, output, new)
            except BaseException:
                if outputs != change.entry.outputs:
                    # Files already renamed are recorded where they now are, under the entry
                    # that holds them: the lockfile must name what is on disk, and the next
                    # plan moves the rest.
                    partial = dataclasses.replace(change.entry, outputs=outputs)
                    self.writer.update({recorded_as: partial}, ())
                raise
            outputs[index] = dataclasses.replace(output, path=new)
        entry = dataclasses.replace(change.entry, outputs=outputs)
        removed = (change.moved_from,) if change.moved_from else ()
        self.writer.update({change.address: entry}, removed)
        self.done(change)

    def _rename_output(self, address: str, output: LockedOutput, new: str) -> None:
        source = check_inside(self.outputs_dir, self.outputs_dir / output.path)
        destination = check_inside(self.outputs_dir, self.outputs_dir / new)
        if source == destination:
            return
        if self._already_moved(output, new):  # a crash after the rename, before the lock write
            return
        if not source.exists():
            raise PromptformError(f"cannot move {output.path}: the file is missing (see drift)")
        # Only the image the entry records moves under its name: a file edited or put there by
        # hand (or another target's image) would otherwise be filed as this target's.
        if not source.is_file() or hash_file(source) != output.sha256:
            raise PromptformError(
                f"not moved: {output.path} is not the image promptform.lock records for "
                f"`{address}`; `promptform plan --verify` shows the drift: restore the file "
                f"from git, or regenerate with `promptform apply --replace '{address}'`"
            )
        # On a case-insensitive file system `Hero.png` -> `hero.png` has one file at both ends:
        # it is renamed in place, never trashed as if it stood in its own way.
        if not _same_file(source, destination):
            self.trash.keep(destination, move=True)
        destination.parent.mkdir(parents=True, exist_ok=True)
        source.replace(destination)

    def _delete(self, change: Change) -> None:
        # The entry as recorded now: a step-aside may have renamed its files since the plan.
        entry = self.writer.entry(change.address) or change.entry
        assert entry is not None
        held = held_by_others(self.writer, change.address, entry.outputs, self.claimed)
        for index, output in enumerate(entry.outputs):
            if path_key(output.path) in held:
                continue
            try:
                self.trash.keep(self.outputs_dir / output.path, move=True)
            except BaseException:
                # Record what is still in place, so the lockfile names no file already trashed
                # (a later plan would call it missing and pay for it again); the next apply
                # finishes the delete.
                remaining = entry.outputs[index:]
                self.writer.update(
                    {change.address: dataclasses.replace(entry, outputs=remaining)}, ()
                )
                raise
        self.writer.remove(change.address)
        self.done(change)


def _same_file(source: Path, destination: Path) -> bool:
    """Whether `destination` names the file at `source`: a case-insensitive file system finds
    `Hero.png` when asked for `hero.png`. Inode numbers cannot tell (FUSE file systems give each
    spelling its own), but folder listings can: they hold only the spelling stored, so a
    differently spelled part of `destination` that no listing holds is the source's own."""
    if not destination.exists():
        return False
    if source.samefile(destination):
        return True
    if path_key(str(source)) != path_key(str(destination)) or len(source.parts) != len(
        destination.parts
    ):
        return False
    for depth, (ours, theirs) in enumerate(zip(source.parts, destination.parts, strict=True)):
        if ours != theirs:
            folder = Path(*destination.parts[:depth])
            return theirs not in {entry.name for entry in folder.iterdir()}
    return True
