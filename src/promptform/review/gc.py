"""Files under outputs_dir that nothing refers to: no lock entry's output, no target's reference image.

Collected files move to .promptform/trash/<stamp>/, as apply's replaced and deleted outputs do: an
image cost money, and a wrong `gc --yes` must be undoable with a `mv` until the trash is emptied.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from promptform.core.config import Config
from promptform.core.errors import PromptformError, display_path
from promptform.engine.project import load_project
from promptform.state.apply_lock import apply_lock
from promptform.state.lockfile import Lockfile, read_lockfile
from promptform.state.outputs import Trash

# Files that configure the folder rather than being outputs (Git LFS attributes, placeholders).
KEPT_NAMES = frozenset({".gitattributes", ".gitignore", ".gitkeep", ".keep"})


@dataclass(frozen=True)
class Garbage:
    path: str  # under outputs_dir, POSIX
    bytes: int


def find_garbage(config: Config) -> list[Garbage]:
    """Unreferenced files under outputs_dir, sorted by path.

    Refused while a recorded output is missing: an interrupted move leaves its image at a path the
    lockfile does not name yet, and collecting it would lose what apply is about to record.
    """
    lockfile = read_lockfile(config.lockfile, display_path(config.lockfile, config.root))
    _refuse_missing_outputs(config, lockfile)
    referenced = _referenced(config, lockfile)
    root = config.outputs_dir
    found = []
    for directory, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            full = Path(directory) / name
            relative = full.relative_to(root).as_posix()
            if name in KEPT_NAMES or relative in referenced:
                continue
            found.append(Garbage(relative, full.lstat().st_size))
    return found


def _referenced(config: Config, lockfile: Lockfile) -> set[str]:
    """Output paths under outputs_dir that must stay: what the lockfile records, what current
    targets write (a move or a write the lockfile has not caught up with), reference images."""
    prefix = config.project.outputs_dir.strip("/") + "/"
    targets = load_project(config).targets
    paths = {output.path for entry in lockfile.targets.values() for output in entry.outputs}
    paths.update(path for target in targets for path in target.outputs)
    # Reference images may live under outputs_dir without any target producing them.
    inputs = [item.path for entry in lockfile.targets.values() for item in entry.inputs]
    inputs += [item.path for target in targets for item in target.inputs]
    paths.update(path.removeprefix(prefix) for path in inputs if path.startswith(prefix))
    return paths


def _refuse_missing_outputs(config: Config, lockfile: Lockfile) -> None:
    missing = sorted(
        output.path
        for entry in lockfile.targets.values()
        for output in entry.outputs
        if not (config.outputs_dir / output.path).is_file()
    )
    if missing:
        shown = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
        noun = "output is" if len(missing) == 1 else "outputs are"
        raise PromptformError(
            f"{len(missing)} recorded {noun} missing ({shown}); run `promptform apply` to finish "
            "an interrupted move (or `promptform plan` to see the drift) before gc, which could "
            "otherwise collect an image the lockfile is about to name"
        )


def collect_garbage(config: Config, now: datetime | None = None) -> tuple[list[Garbage], Path]:
    """Move every unreferenced file to the trash; returns them and the trash folder used."""
    trash = Trash(config.state_dir, config.outputs_dir, now)
    # Under the apply lock: an apply in progress writes temp files that are not garbage yet.
    with apply_lock(config.state_dir):
        garbage = find_garbage(config)
        for item in garbage:
            source = config.outputs_dir / item.path
            trash.keep(source, move=True)
            _remove_empty_parents(source.parent, config.outputs_dir)
    return garbage, trash.folder


def _remove_empty_parents(directory: Path, stop: Path) -> None:
    while directory != stop and directory.is_relative_to(stop):
        try:
            directory.rmdir()
        except OSError:  # not empty
            return
        directory = directory.parent
