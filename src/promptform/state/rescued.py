"""Paid-for images apply could not record, kept under .promptform/rescued/ with a note of whose they are.

Each rescue is a folder `<target slug>-<unix time>/` holding the images (`1.png`, ...) and
`rescued.json`: the target's address, the fingerprint and request they were paid for, and why they
could not be recorded. A later plan matches a pending target's fingerprint against these notes, so the
images are adopted (`promptform adopt ADDRESS --rescued FOLDER`) instead of paid for again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from promptform.core.atomic import atomic_write
from promptform.core.images import ImageError, sniff

RESCUED_DIR = "rescued"
NOTE_FILE = "rescued.json"


@dataclass(frozen=True)
class RescueNote:
    address: str
    fingerprint: str  # "" when the request never got far enough to have one
    request: dict[str, Any]
    reason: str
    files: tuple[str, ...]  # image file names in the folder, in output order


@dataclass(frozen=True)
class Rescue:
    folder: Path
    note: RescueNote

    def images(self) -> list[Path]:
        return [self.folder / name for name in self.note.files]


def rescue_images(state_dir: Path, slug: str, images: Sequence[bytes], note: RescueNote) -> Path:
    """Write `images` and their note into a new folder under rescued/; the folder."""
    base = state_dir / RESCUED_DIR / f"{slug}-{int(time.time())}"
    folder, attempt = base, 1
    while folder.exists():  # two rescues of one target within a second (a retry)
        attempt += 1
        folder = base.with_name(f"{base.name}-{attempt}")
    folder.mkdir(parents=True)
    names = []
    for index, data in enumerate(images, 1):
        name = f"{index}.{_extension(data)}"
        atomic_write(folder / name, data)
        names.append(name)
    body = {
        "address": note.address,
        "fingerprint": note.fingerprint,
        "request": note.request,
        "reason": note.reason,
        "files": names,
    }
    text = json.dumps(body, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    atomic_write(folder / NOTE_FILE, text.encode("utf-8"))
    return folder


def read_rescue(folder: Path) -> Rescue | None:
    """The rescue in `folder`; None when it has no readable note (an older rescue)."""
    try:
        data = json.loads((folder / NOTE_FILE).read_bytes())
        note = RescueNote(
            address=str(data["address"]),
            fingerprint=str(data["fingerprint"]),
            request=dict(data["request"]),
            reason=str(data.get("reason", "")),
            files=tuple(str(name) for name in data["files"]),
        )
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return None
    if any("/" in name or "\\" in name or name.startswith(".") for name in note.files):
        return None  # a note edited to point outside its folder is not trusted
    return Rescue(folder, note)


def find_rescues(state_dir: Path) -> list[Rescue]:
    """Every readable rescue, oldest folder name first."""
    root = state_dir / RESCUED_DIR
    if not root.is_dir():
        return []
    found = [read_rescue(folder) for folder in sorted(root.iterdir()) if folder.is_dir()]
    return [rescue for rescue in found if rescue is not None]


def rescues_for(state_dir: Path, wanted: Mapping[str, str]) -> dict[str, Rescue]:
    """The newest rescue of each address in `wanted` paid for exactly its fingerprint there."""
    found: dict[str, Rescue] = {}
    for rescue in find_rescues(state_dir):
        note = rescue.note
        if note.fingerprint and wanted.get(note.address) == note.fingerprint:
            found[note.address] = rescue  # folders sort by time: the newest wins
    return found


def _extension(data: bytes) -> str:
    try:
        return sniff(data).format
    except ImageError:
        return "bin"
