"""Adopting images made elsewhere (WisGate Studio, another script) as a target's current outputs.

The lock entry gets the target's own fingerprint, so plan sees the target as up to date and apply
does not pay to regenerate it; its provider kind `adopted` records where the pixels came from.
"""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from promptform.core.config import Config
from promptform.core.errors import PromptformError, display_path
from promptform.core.images import ImageError, ImageInfo, check_format
from promptform.core.paths import path_key
from promptform.engine.plan import lock_shards
from promptform.engine.project import load_project
from promptform.gitops.gitrepo import source_state
from promptform.manifests.targets import Target
from promptform.state.apply_lock import apply_lock
from promptform.state.lockfile import (
    LockedInput,
    LockedOutput,
    LockEntry,
    ProviderRef,
    generated_at,
    read_lockfile,
)
from promptform.state.lockfile_writer import LockfileWriter
from promptform.state.outputs import Trash, held_by_others, step_aside_recorded, write_outputs
from promptform.state.rescued import NOTE_FILE, read_rescue

ADOPTED = "adopted"


class AdoptError(PromptformError):
    pass


@dataclass(frozen=True)
class Adopted:
    address: str
    entry: LockEntry
    warnings: tuple[str, ...]


def adopt(
    config: Config,
    address: str,
    files: Sequence[Path],
    source: str = "external",
    cost_usd: float | None = None,
    now: datetime | None = None,
    lock_held: bool = False,
) -> Adopted:
    """Check `files`, copy them to the target's output paths and record them in the lockfile.

    `lock_held`: the caller (apply) already holds the apply lock, which is not re-entrant.
    """
    project = load_project(config)
    targets = project.by_address()
    target = _find_target(targets, address)
    images = _read_images(target, files)
    warnings = _size_warnings(target, files, images)
    pending = [item.path for item in target.inputs if item.sha256 is None]
    if pending:
        raise AdoptError(
            f"reference image '{pending[0]}' of '{address}' does not exist yet; apply its "
            "upstream first, so the adopted images are recorded against its real content"
        )
    with contextlib.nullcontext() if lock_held else apply_lock(config.state_dir):
        lockfile = read_lockfile(config.lockfile, display_path(config.lockfile, config.root))
        writer = LockfileWriter(config.lockfile, lockfile, lock_shards(project))
        # An entry still recording one of these paths (its move not applied yet) keeps its image.
        claims = {path_key(path): {address} for path in target.outputs}
        step_aside_recorded(config.outputs_dir, writer, claims)
        old = writer.entry(address)
        previous = old.outputs if old is not None else []
        claimed = {path_key(path) for other in targets.values() for path in other.outputs}
        recorded: list[LockEntry] = []

        def record(outputs: list[LockedOutput]) -> None:
            recorded.append(_entry(config, target, outputs, source, cost_usd, now))
            writer.put(address, recorded[0])

        write_outputs(
            config.outputs_dir,
            Trash(config.state_dir, config.outputs_dir, now),
            target.outputs,
            images,
            previous,
            held_by_others(writer, address, previous, claimed),
            record,
        )
    return Adopted(address, recorded[0], tuple(warnings))


def adopt_rescued(
    config: Config,
    address: str,
    folder: Path,
    now: datetime | None = None,
    lock_held: bool = False,
) -> Adopted:
    """Adopt the images of a .promptform/rescued/ folder, if they were paid for `address`'s
    current request (its fingerprint), so nobody pays for them twice."""
    full = folder if folder.is_absolute() else config.root / folder
    rescue = read_rescue(full)
    if rescue is None:
        raise AdoptError(
            f"{folder} has no readable {NOTE_FILE}; adopt its images by naming the files instead"
        )
    note = rescue.note
    if note.address != address:
        raise AdoptError(
            f"{folder} holds images of '{note.address}', not '{address}'; "
            f"run `promptform adopt {note.address} --rescued {folder}`"
        )
    target = _find_target(load_project(config).by_address(), address)
    if note.fingerprint != target.fingerprint:
        raise AdoptError(
            f"{folder} was paid for another request of '{address}' (its manifest or reference "
            "images changed since); adopt its images by naming the files if they still fit"
        )
    return adopt(config, address, rescue.images(), source="rescued", now=now, lock_held=lock_held)


def _find_target(targets: dict[str, Target], address: str) -> Target:
    target = targets.get(address)
    if target is None:
        close = difflib.get_close_matches(address, list(targets), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else "; `promptform render` lists them"
        raise AdoptError(f"no target '{address}'{hint}")
    return target


def _read_images(target: Target, files: Sequence[Path]) -> list[tuple[bytes, ImageInfo]]:
    if len(files) != len(target.outputs):
        raise AdoptError(
            f"'{target.address}' has n={len(target.outputs)} "
            f"image{'s' if len(target.outputs) != 1 else ''}, but {len(files)} "
            f"file{'s were' if len(files) != 1 else ' was'} given; give exactly one file per output"
        )
    images = []
    for file in files:
        try:
            data = file.read_bytes()
        except OSError as exc:
            raise AdoptError(f"cannot read {file}: {exc.strerror or exc}") from None
        try:
            info = check_format(data, target.output_format)
        except ImageError as exc:
            raise AdoptError(
                f"{file}: {exc}; '{target.address}' outputs {target.output_format}"
            ) from None
        images.append((data, info))
    return images


def _size_warnings(
    target: Target, files: Sequence[Path], images: list[tuple[bytes, ImageInfo]]
) -> list[str]:
    """A size other than the requested one is allowed (Studio may crop) but worth a word."""
    size = str(target.body.get("size", ""))
    if "x" not in size:
        return []
    width, _, height = size.partition("x")
    return [
        f"{file} is {info.width}x{info.height}, the manifest asks for {size}"
        for file, (_, info) in zip(files, images, strict=True)
        if (str(info.width), str(info.height)) != (width, height)
    ]


def _entry(
    config: Config,
    target: Target,
    outputs: list[LockedOutput],
    source: str,
    cost_usd: float | None,
    now: datetime | None,
) -> LockEntry:
    return LockEntry(
        # The target's own fingerprint: these images stand for exactly this request.
        fingerprint=target.fingerprint,
        request=target.body,
        endpoint=target.endpoint,
        inputs=[
            LockedInput(role=item.role, path=item.path, sha256=item.sha256 or "")
            for item in target.inputs
        ],
        outputs=outputs,
        provider=ProviderRef(kind=ADOPTED, name=source),
        model=target.model,
        generated_at=generated_at(now),
        source_commit=source_state(config.root, ()).commit,  # HEAD only: no status needed
        cost_usd=cost_usd,
    )
