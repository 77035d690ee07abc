"""Three-way merge of promptform.lock, entry by entry: the `promptform lock merge` git merge driver.

Entries are independent (one per address), so changes to different addresses always combine; the
same address changed differently on both sides is a real conflict, written with git's markers
around the two entries so the file cannot be committed by accident.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from promptform.state.lockfile import LOCK_VERSION, LockEntry, Lockfile, dumps, loads


@dataclass(frozen=True)
class LockMerge:
    text: str  # what to write into OURS: the merged lockfile, with markers around conflicts
    conflicts: tuple[str, ...]  # addresses changed differently on both sides


def parse_side(text: str, shown: str) -> Lockfile:
    """A side of the merge; an empty file (no common ancestor, a side without the file) is empty."""
    return loads(text, shown) if text.strip() else Lockfile()


def merge_lockfiles(base: Lockfile, ours: Lockfile, theirs: Lockfile) -> LockMerge:
    merged: dict[str, LockEntry] = {}
    conflicts: dict[str, tuple[LockEntry | None, LockEntry | None]] = {}
    for address in sorted(base.targets.keys() | ours.targets.keys() | theirs.targets.keys()):
        was = base.targets.get(address)
        mine, other = ours.targets.get(address), theirs.targets.get(address)
        if mine == other or other == was:
            chosen = mine
        elif mine == was:
            chosen = other
        else:
            conflicts[address] = (mine, other)
            continue
        if chosen is not None:
            merged[address] = chosen
    version = max(ours.version, theirs.version, LOCK_VERSION)
    if not conflicts:
        return LockMerge(dumps(Lockfile(version=version, targets=merged)), ())
    return LockMerge(_with_markers(version, merged, conflicts), tuple(conflicts))


def _with_markers(
    version: int,
    merged: dict[str, LockEntry],
    conflicts: dict[str, tuple[LockEntry | None, LockEntry | None]],
) -> str:
    """The lockfile laid out as `dumps` does, each conflict as `<<<<<<< ours / ======= / >>>>>>>`."""
    addresses = sorted(merged.keys() | conflicts.keys())
    lines = ["{", '  "targets": {']
    for index, address in enumerate(addresses):
        comma = "," if index < len(addresses) - 1 else ""
        if address in merged:
            lines.append(_entry_block(address, merged[address], comma))
            continue
        mine, other = conflicts[address]
        # A side that deleted the entry shows as nothing between its markers.
        lines.append("<<<<<<< ours")
        if mine is not None:
            lines.append(_entry_block(address, mine, comma))
        lines.append("=======")
        if other is not None:
            lines.append(_entry_block(address, other, comma))
        lines.append(">>>>>>> theirs")
    lines += ["  },", f'  "version": {version}', "}"]
    return "\n".join(lines) + "\n"


def _entry_block(address: str, entry: LockEntry, comma: str) -> str:
    body: Any = entry.model_dump(mode="json", exclude_none=False)
    text = json.dumps(body, indent=2, sort_keys=True, ensure_ascii=False)
    indented = text.replace("\n", "\n    ")
    return f"    {json.dumps(address, ensure_ascii=False)}: {indented}{comma}"
