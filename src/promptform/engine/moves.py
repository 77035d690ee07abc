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
from promptform.engine.plan_model import Change
from promptform.state.lockfile import LockedOutput
from promptform.state.lockfile_writer import LockfileWriter
from promptform.state.outputs import Trash, check_inside

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
        self.claimed = claimed  # paths a target of the plan writes: never trashed as an old output
        self.done = done
        self.failed = failed

    def move_all(self, moves: list[Change]) -> None:
        """Moves, in two steps where one takes a path another leaves: a swap or a shift (a -> b
        while b -> c) must not put one target's image where another's is recorded."""
        taken = {new for change in moves for old, new in change.renames if old != new}
        ready: list[Change] = []
        stuck: set[str] = set()
        for change in moves:
            try:
                ready.append(self._step_aside(change, taken))
            except (PromptformError, OSError) as exc:
                self.failed(change, str(exc))
                if change.entry is not None:
                    stuck.update(output.path for output in change.entry.outputs)
        for change in ready:
            if any(new in stuck for _, new in change.renames):
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
            if output.path == new or output.path not in taken:
                continue
            aside = f"{output.path}.promptform-moving"
            self._rename_output(output, aside)
            outputs = list(entry.outputs)
            outputs[index] = output.model_copy(update={"path": aside})
            entry = entry.model_copy(update={"outputs": outputs})
            self.writer.update({change.moved_from or change.address: entry}, ())
            del renames[output.path]
            renames[aside] = new
        if entry is change.entry:
            return change
        return dataclasses.replace(change, entry=entry, renames=tuple(renames.items()))

    def _move(self, change: Change) -> None:
        assert change.entry is not None and change.target is not None
        by_old = dict(change.renames)
        outputs = []
        for output in change.entry.outputs:
            new = by_old.get(output.path, output.path)
            self._rename_output(output, new)
            outputs.append(output.model_copy(update={"path": new}))
        entry = change.entry.model_copy(update={"outputs": outputs})
        removed = (change.moved_from,) if change.moved_from else ()
        self.writer.update({change.address: entry}, removed)
        self.done(change)

    def _rename_output(self, output: LockedOutput, new: str) -> None:
        source = check_inside(self.outputs_dir, self.outputs_dir / output.path)
        destination = check_inside(self.outputs_dir, self.outputs_dir / new)
        if source == destination:
            return
        if not source.exists():
            # A crash after the rename but before the lockfile write: the file is already there.
            if destination.is_file() and hash_file(destination) == output.sha256:
                return
            raise PromptformError(f"cannot move {output.path}: the file is missing (see drift)")
        self.trash.keep(destination, move=True)
        destination.parent.mkdir(parents=True, exist_ok=True)
        source.replace(destination)

    def _delete(self, change: Change) -> None:
        assert change.entry is not None
        for output in change.entry.outputs:
            if output.path not in self.claimed:
                self.trash.keep(self.outputs_dir / output.path, move=True)
        self.writer.remove(change.address)
        self.done(change)
