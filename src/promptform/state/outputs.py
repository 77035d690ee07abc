"""Writing images into outputs_dir without losing what was there.

An image promptform replaces, deletes or collects is kept under `.promptform/trash/<stamp>/<path>`
(a hard link where it is about to be overwritten, so keeping it costs no copy), and new images are
written atomically. apply, adopt and gc all go through here.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from pathlib import Path

from promptform.core.atomic import atomic_write
from promptform.core.errors import PromptformError
from promptform.core.images import ImageInfo
from promptform.state.lockfile import LockedOutput

# A trash folder's name: the moment its run started, in UTC (`gc --empty-trash` reads it back).
TRASH_STAMP_FORMAT = "%Y%m%dT%H%M%S.%fZ"


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
) -> list[LockedOutput]:
    """Write `images` to `paths` (under outputs_dir) and describe them for the lockfile.

    What was at those paths, and previous outputs that are no longer produced, go to the trash,
    except a previous path in `claimed`: another target's output is there now (a move).
    """
    outputs = []
    for path, (data, info) in zip(paths, images, strict=True):
        destination = outputs_dir / path
        trash.keep(destination)
        atomic_write(destination, data, shared=True)
        outputs.append(
            LockedOutput(
                path=path,
                sha256=hashlib.sha256(data).hexdigest(),
                bytes=len(data),
                format=info.format,
                width=info.width,
                height=info.height,
            )
        )
    current = set(paths)
    for old in previous:
        if old.path not in current and old.path not in claimed:
            trash.keep(outputs_dir / old.path, move=True)
    return outputs
