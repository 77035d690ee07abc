"""Rewrites the shards of promptform.lock an update touches, after every completed target, without
re-serialising every entry.

Apply rewrites the touched shard atomically after each target so a crash loses nothing recorded;
each entry is serialised only when it changes, and only the shards holding a changed address are
written, so a run stays linear however many entries and shards there are. Each shard's bytes are
exactly `lockfile.dumps()`'s of its entries (a test holds them to it).

An address belongs in the shard of its target's manifest file (`shard_of`, from the planned
targets); an address without a current target stays where it was read from. An update that moves
an entry to another shard writes the new shard first, then removes it from the old one: a crash in
between leaves the entry in both, which readers accept when the two are identical. A lock still in
the single file of version 1 is migrated on the first write (lock_migration.py).

Several threads may record at once (apply writes images on a small pool): updates that arrive while
a rewrite is on disk are all covered by the next one (a group commit), and `update` returns only
once a rewrite containing its change has been renamed into place.

Each entry is held as its text only (`_fragment`), never as a model: as models, the 50,000 entries
of a big catalogue take four times the memory of their text. `entry` parses one back when asked.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Collection, Iterator, Mapping, Sequence
from pathlib import Path

from promptform.core.atomic import atomic_write_chunks
from promptform.core.paths import path_key
from promptform.state.lock_migration import migrate_lockfile
from promptform.state.lockfile import (
    LOCK_VERSION,
    NO_MANIFEST_SHARD,
    LockEntry,
    Lockfile,
    read_lock_state,
    remove_shards,
    shard_path,
    validator,
    writable_text,
)


class LockfileWriter:
    def __init__(
        self, path: Path, lockfile: Lockfile, shard_of: Mapping[str, str] | None = None
    ) -> None:
        """`lockfile` is what is at `path` now; `shard_of` maps the addresses of current targets
        to the shards of their manifest files."""
        self.path = path
        self.version = LOCK_VERSION
        self._fragments: dict[str, str] = {}  # address -> the entry's text in its shard
        self._shard_of = dict(shard_of or {})
        # path_key -> addresses recording a file there, so "is this someone else's?" is a lookup.
        self._recorded: dict[str, set[str]] = {}
        for address, entry in lockfile.targets.items():
            self._fragments[address] = _fragment(entry)
            self._index(address, entry, add=True)
        # Where each address is on disk, and each shard's addresses: read on the first write.
        self._located: dict[str, set[str]] | None = None
        self._members: dict[str, set[str]] = {}
        self._dirty: set[str] = set()  # shards whose file is behind the entries
        self._gaining: set[str] = set()  # of those, shards an address is added to
        self.migrated = False  # whether the first write converted a version 1 lockfile
        self.relocated = False  # whether `relocate` moved entries to other shards
        self._state = threading.Lock()  # guards the fragments, the index and the change counter
        self._disk = threading.Lock()  # one rewrite at a time
        self._changes = 0
        self._written = 0  # the change count the files on disk include

    def put(self, address: str, entry: LockEntry) -> None:
        """Record `entry` and rewrite its shard."""
        self.update({address: entry}, ())

    def remove(self, address: str) -> None:
        """Forget `address` and rewrite its shard (no-op when absent)."""
        self.update({}, (address,))

    def update(self, put: dict[str, LockEntry], remove: tuple[str, ...]) -> None:
        """Record and forget several entries in one rewrite of the shards they are in (a rename is
        both at once)."""
        self.prepare()
        fragments = {address: _fragment(entry) for address, entry in put.items()}
        with self._state:
            before = {address: self._fragments.get(address) for address in (*remove, *put)}
            was_at = {address: set(self._where(address)) for address in before}
            for address in (*remove, *put):
                gone = self._fragments.pop(address, None)
                if gone is not None:
                    self._index(address, _parse(gone), add=False)
                self._place(address, ())
            for address, entry in put.items():
                self._index(address, entry, add=True)
                self._place(address, (self._shard_of.get(address) or self._home(was_at[address]),))
            self._fragments.update(fragments)
            self._changes += 1
            mine = self._changes
        with self._disk:
            if self._written >= mine:
                return  # another thread's rewrite, started after this change, already holds it
            try:
                self._write_locked()
            except BaseException:
                # Not on disk: forget it, so no later rewrite records what the caller undoes.
                self._restore(before, was_at, fragments)
                raise

    def prepare(self) -> None:
        """Migrate a version 1 lockfile and learn which shard holds each address; the first write
        does this, apply calls it first so the migration precedes anything it writes."""
        with self._disk:
            if self._located is not None:
                return
            self.migrated = migrate_lockfile(self.path, self._initial_shards())
            _remove_stale_temps(self.path)
            located = {
                address: set(shards)
                for address, shards in read_lock_state(self.path).shards.items()
            }
            with self._state:
                self._located = located
                for address, shards in located.items():
                    for shard in shards:
                        self._members.setdefault(shard, set()).add(address)

    def relocate(self) -> None:
        """Move the entries of targets whose manifest file was renamed or moved to its shard."""
        self.prepare()
        with self._state:
            moving = {
                address: _parse(self._fragments[address])
                for address, shard in self._shard_of.items()
                if address in self._fragments and self._where(address) != {shard}
            }
        if moving:
            self.update(moving, ())
            self.relocated = True

    def _rewritten(self, emptied: str, written: Collection[str]) -> bool:
        """Whether the file of shard `emptied` is one just written under another name: a manifest
        renamed only in case, on a case-insensitive file system (macOS, Windows)."""
        key = path_key(emptied)
        return any(
            path_key(shard) == key
            and _same_file(shard_path(self.path, emptied), shard_path(self.path, shard))
            for shard in written
        )

    def _initial_shards(self) -> dict[str, str]:
        return {
            address: self._shard_of.get(address, NO_MANIFEST_SHARD) for address in self._fragments
        }

    def _where(self, address: str) -> set[str]:
        assert self._located is not None
        return self._located.get(address, set())

    @staticmethod
    def _home(shards: set[str]) -> str:
        """The shard for an address no current target names: where it was, if anywhere."""
        return min(shards) if shards else NO_MANIFEST_SHARD

    def _place(self, address: str, shards: tuple[str, ...]) -> None:
        """Record that `address` is (to be) in exactly `shards`; every shard that changes is dirty."""
        assert self._located is not None
        for shard in self._located.pop(address, set()):
            self._members[shard].discard(address)
            self._dirty.add(shard)
        if shards:
            self._located[address] = set(shards)
        for shard in shards:
            self._members.setdefault(shard, set()).add(address)
            self._dirty.add(shard)
            self._gaining.add(shard)

    def _restore(
        self, before: dict[str, str | None], was_at: dict[str, set[str]], put: dict[str, str]
    ) -> None:
        """Undo an update that did not reach the disk; `before` and `put` are fragments (each
        update makes its own string objects, so `is` tells whether another update came since)."""
        with self._state:
            for address, fragment in before.items():
                current = self._fragments.get(address)
                if current is not put.get(address):
                    continue  # changed again since: that change is the caller's to answer for
                if current is not None:
                    self._index(address, _parse(current), add=False)
                    del self._fragments[address]
                if fragment is not None:
                    self._index(address, _parse(fragment), add=True)
                    self._fragments[address] = fragment
                # Back where it was; the shards involved are rewritten by the next write.
                self._place(address, tuple(sorted(was_at[address])) if fragment is not None else ())

    @property
    def entries(self) -> dict[str, LockEntry]:
        """Every entry recorded now, parsed (a copy: changes go through `update`)."""
        with self._state:
            fragments = dict(self._fragments)
        return {address: _parse(fragment) for address, fragment in fragments.items()}

    def entry(self, address: str) -> LockEntry | None:
        """The entry recorded for `address` now (a move or step-aside may have changed it)."""
        with self._state:
            fragment = self._fragments.get(address)
        return None if fragment is None else _parse(fragment)

    def recorded_by(self, key: str) -> frozenset[str]:
        """The addresses whose entries record an output at `key` (a `path_key`)."""
        with self._state:
            return frozenset(self._recorded.get(key, ()))

    def _index(self, address: str, entry: LockEntry, add: bool) -> None:
        for output in entry.outputs:
            key = path_key(output.path)
            if add:
                self._recorded.setdefault(key, set()).add(address)
            elif key in self._recorded:
                self._recorded[key].discard(address)
                if not self._recorded[key]:
                    del self._recorded[key]

    def lockfile(self) -> Lockfile:
        return Lockfile(version=self.version, targets=self.entries)

    def text(self, shard: str | None = None) -> str:
        """The bytes `shard` has (or will have after the next write); without one, every entry as
        one lock in the same format (what the single file of version 1 held, at version 2)."""
        with self._state:
            return self._text(
                set(self._fragments) if shard is None else self._members.get(shard, set())
            )

    def _text(self, addresses: set[str]) -> str:
        return "".join(_shard_pieces(self._contents(addresses), self.version))

    def _contents(self, addresses: set[str]) -> list[tuple[str, str]]:
        """(address, fragment) of each address, sorted: references to the text, not copies."""
        return [(address, self._fragments[address]) for address in sorted(addresses)]

    def write(self) -> None:
        """Write every shard that is behind (after `prepare`, only those an update touched)."""
        self.prepare()
        with self._disk:
            self._write_locked()

    def _write_locked(self) -> None:
        with self._state:
            dirty, self._dirty = self._dirty, set()
            gaining, self._gaining = self._gaining & dirty, set()
            # Each shard's entries as they are now; its bytes are made while it is written.
            contents = {
                shard: self._contents(self._members[shard])
                for shard in dirty
                if self._members[shard]
            }
            emptied = dirty - contents.keys()
            changes = self._changes
        try:
            # Shards gaining an entry first: a moved entry is then never missing from both.
            for shard in sorted(contents, key=lambda shard: (shard not in gaining, shard)):
                pieces = _shard_pieces(contents[shard], self.version)
                atomic_write_chunks(
                    shard_path(self.path, shard), (piece.encode("utf-8") for piece in pieces)
                )
            self.path.mkdir(parents=True, exist_ok=True)
            remove_shards(
                self.path,
                [shard for shard in sorted(emptied) if not self._rewritten(shard, contents)],
            )
        except BaseException:
            with self._state:
                self._dirty |= dirty  # rewritten whole by the next write, whatever this one did
            raise
        self._written = changes


def _same_file(first: Path, second: Path) -> bool:
    """Whether two names that differ only in case are one file: the first is not listed under its
    own spelling (some file systems give every spelling its own inode number), or the two share an
    inode (one that kept the first spelling when the second was written over it)."""
    try:
        listed = {entry.name for entry in first.parent.iterdir()}
        return first.name not in listed or first.samefile(second)
    except FileNotFoundError:
        return False


def _remove_stale_temps(path: Path) -> None:
    """Temp files a crash left mid-write in the lock directory: `git add --all` must not commit
    them. Only writers (under the apply lock) call this, so none of them is being written."""
    if path.is_dir():
        for temp in path.rglob(".*.tmp"):
            temp.unlink(missing_ok=True)


def _shard_pieces(contents: Sequence[tuple[str, str]], version: int) -> Iterator[str]:
    """A shard's text in pieces: exactly `lockfile.dumps()` of these entries, in their order."""
    if not contents:
        yield '{\n  "targets": {},\n'
    else:
        yield '{\n  "targets": {\n'
        separator = ""
        for address, fragment in contents:
            yield f"{separator}    {json.dumps(address, ensure_ascii=False)}: "
            yield fragment
            separator = ",\n"
        yield "\n  },\n"
    yield f'  "version": {version}\n}}\n'


def _fragment(entry: LockEntry) -> str:
    """The entry as json.dumps(indent=2) would print it two levels deep."""
    return writable_text(entry).replace("\n", "\n    ")


def _parse(fragment: str) -> LockEntry:
    """The entry a fragment holds (the extra indentation is JSON whitespace)."""
    return validator(LockEntry).validate_json(fragment)
