"""Three-way merge of promptform.lock, entry by entry: the `promptform lock merge` git merge driver.

Entries are independent (one per address), so changes to different addresses always combine; the
same address changed differently on both sides is a real conflict, and so are two addresses that
record one output path; conflicts are written with git's markers around the entries so the file
cannot be committed by accident, laid out so that keeping either side leaves valid JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from promptform.core.paths import path_key
from promptform.state.lockfile import LockEntry, Lockfile, dumps, entry_json, loads


@dataclass(frozen=True)
class LockMerge:
    text: str  # what to write into OURS: the merged lockfile, with markers around conflicts
    conflicts: tuple[str, ...]  # addresses changed differently on both sides, or sharing a path
    sharing: tuple[str, ...] = ()  # those of them that record one output path


def parse_side(text: str, shown: str) -> Lockfile:
    """A side of the merge; an empty file (no common ancestor, a side without the file) is empty."""
    return loads(text, shown) if text.strip() else Lockfile()


def merge_lockfiles(base: Lockfile, ours: Lockfile, theirs: Lockfile) -> LockMerge:
    merged: dict[str, LockEntry] = {}
    conflicting: list[str] = []
    for address in sorted(base.targets.keys() | ours.targets.keys() | theirs.targets.keys()):
        was = base.targets.get(address)
        mine, other = ours.targets.get(address), theirs.targets.get(address)
        if mine == other or other == was:
            chosen = mine
        elif mine == was:
            chosen = other
        else:
            conflicting.append(address)
            continue
        if chosen is not None:
            merged[address] = chosen
    # Two entries recording one output path (each branch added a target writing it) merge
    # cleanly entry by entry, yet one file cannot be both images: that is a conflict too.
    sharing: list[str] = []
    for group in _sharing_a_path(merged):
        for address in group:
            del merged[address]
        sharing += group
    conflicting += sharing
    version = max(ours.version, theirs.version)
    if not conflicting:
        return LockMerge(dumps(Lockfile(version=version, targets=merged)), ())
    groups = _conflict_groups(sorted(conflicting), ours, theirs)
    text = _with_markers(version, merged, groups, ours, theirs)
    return LockMerge(text, tuple(sorted(conflicting)), tuple(sorted(sharing)))


def _sharing_a_path(entries: dict[str, LockEntry]) -> list[list[str]]:
    """Sets of addresses whose entries record the same output path (case-folded, NFC)."""
    owners: dict[str, list[str]] = {}
    for address, entry in entries.items():
        for output in entry.outputs:
            found = owners.setdefault(path_key(output.path), [])
            if address not in found:
                found.append(address)
    groups: list[list[str]] = []
    placed: set[str] = set()
    for addresses in owners.values():
        if len(addresses) > 1 and not placed & set(addresses):
            groups.append(sorted(addresses))
            placed.update(addresses)
    return groups


def _conflict_groups(conflicting: list[str], ours: Lockfile, theirs: Lockfile) -> list[list[str]]:
    """Conflicting addresses, those sharing an output path on either side in one group."""
    keys: dict[str, set[str]] = {
        address: {
            path_key(output.path)
            for side in (ours, theirs)
            if (entry := side.targets.get(address)) is not None
            for output in entry.outputs
        }
        for address in conflicting
    }
    groups: list[list[str]] = []
    for address in conflicting:
        joined = [group for group in groups if any(keys[a] & keys[address] for a in group)]
        for group in joined:
            groups.remove(group)
        groups.append(sorted([address, *(a for group in joined for a in group)]))
    return sorted(groups)


def _with_markers(
    version: int,
    merged: dict[str, LockEntry],
    groups: list[list[str]],
    ours: Lockfile,
    theirs: Lockfile,
) -> str:
    """The lockfile laid out as `dumps` does, each conflict as `<<<<<<< ours / ======= / >>>>>>>`.

    Keeping either side of any conflict must leave valid JSON, so no comma may depend on a
    choice: every entry ends in a comma but the last, which is one merged cleanly (the "anchor",
    outside all markers). Without such an entry all conflicts share one pair of markers.
    """
    lines = ["{", '  "targets": {']
    if not merged:
        lines += _conflict_block([a for group in groups for a in group], ours, theirs, last=True)
    else:
        anchor = max(merged)
        items: list[tuple[str, list[str] | None]] = [
            (address, None) for address in merged if address != anchor
        ]
        items += [(group[0], group) for group in groups]
        for address, group in sorted(items, key=lambda item: item[0]):
            if group is None:
                lines.append(_entry_block(address, merged[address], ","))
            else:
                lines += _conflict_block(group, ours, theirs, last=False)
        lines.append(_entry_block(anchor, merged[anchor], ""))
    lines += ["  },", f'  "version": {version}', "}"]
    return "\n".join(lines) + "\n"


def _conflict_block(
    addresses: list[str], ours: Lockfile, theirs: Lockfile, last: bool
) -> list[str]:
    """Both sides' entries for `addresses`; a side that deleted them shows as nothing."""
    lines = ["<<<<<<< ours"]
    for label, side in (("ours", ours), ("theirs", theirs)):
        if label == "theirs":
            lines.append("=======")
        present = [(a, side.targets[a]) for a in addresses if a in side.targets]
        for index, (address, entry) in enumerate(present):
            final = last and index == len(present) - 1
            lines.append(_entry_block(address, entry, "" if final else ","))
    lines.append(">>>>>>> theirs")
    return lines


def _entry_block(address: str, entry: LockEntry, comma: str) -> str:
    text = json.dumps(entry_json(entry), indent=2, sort_keys=True, ensure_ascii=False)
    indented = text.replace("\n", "\n    ")
    return f"    {json.dumps(address, ensure_ascii=False)}: {indented}{comma}"
