"""Rewrites promptform.lock after every completed target without re-serialising every entry.

Apply rewrites the whole file atomically after each target so a crash loses nothing recorded; with
thousands of entries, serialising each only when it changes keeps that linear instead of quadratic.
The bytes are exactly `lockfile.dumps()`'s (a test holds them to it).

Several threads may record at once (apply writes images on a small pool): updates that arrive while
a rewrite is on disk are all covered by the next one (a group commit), and `update` returns only
once a rewrite containing its change has been renamed into place.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from promptform.core.atomic import atomic_write
from promptform.core.paths import path_key
from promptform.state.lockfile import LOCK_VERSION, LockEntry, Lockfile


class LockfileWriter:
    def __init__(self, path: Path, lockfile: Lockfile) -> None:
        self.path = path
        self.version = lockfile.version
        self.entries: dict[str, LockEntry] = dict(lockfile.targets)
        self._fragments = {address: _fragment(entry) for address, entry in self.entries.items()}
        # path_key -> addresses recording a file there, so "is this someone else's?" is a lookup.
        self._recorded: dict[str, set[str]] = {}
        for address, entry in self.entries.items():
            self._index(address, entry, add=True)
        self._state = threading.Lock()  # guards entries, fragments and the change counter
        self._disk = threading.Lock()  # one rewrite at a time
        self._changes = 0
        self._written = 0  # the change count the file on disk includes

    def put(self, address: str, entry: LockEntry) -> None:
        """Record `entry` and rewrite the file."""
        self.update({address: entry}, ())

    def remove(self, address: str) -> None:
        """Forget `address` and rewrite the file (no-op when absent)."""
        self.update({}, (address,))

    def update(self, put: dict[str, LockEntry], remove: tuple[str, ...]) -> None:
        """Record and forget several entries in one atomic rewrite (a rename is both at once)."""
        fragments = {address: _fragment(entry) for address, entry in put.items()}
        with self._state:
            before = {address: self.entries.get(address) for address in (*remove, *put)}
            for address in (*remove, *put):
                gone = self.entries.pop(address, None)
                if gone is not None:
                    self._index(address, gone, add=False)
                self._fragments.pop(address, None)
            for address, entry in put.items():
                self._index(address, entry, add=True)
            self.entries.update(put)
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
                self._restore(before, put)
                raise

    def _restore(self, before: dict[str, LockEntry | None], put: dict[str, LockEntry]) -> None:
        with self._state:
            for address, entry in before.items():
                current = self.entries.get(address)
                if current is not put.get(address):
                    continue  # changed again since: that change is the caller's to answer for
                if current is not None:
                    self._index(address, current, add=False)
                    del self.entries[address]
                    self._fragments.pop(address, None)
                if entry is not None:
                    self._index(address, entry, add=True)
                    self.entries[address] = entry
                    self._fragments[address] = _fragment(entry)

    def entry(self, address: str) -> LockEntry | None:
        """The entry recorded for `address` now (a move or step-aside may have changed it)."""
        with self._state:
            return self.entries.get(address)

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
        with self._state:
            return Lockfile(version=self.version, targets=dict(self.entries))

    def text(self) -> str:
        with self._state:
            return self._text()

    def _text(self) -> str:
        if not self._fragments:
            body = '  "targets": {},\n'
        else:
            items = [
                f"    {json.dumps(address, ensure_ascii=False)}: {self._fragments[address]}"
                for address in sorted(self._fragments)
            ]
            body = '  "targets": {\n' + ",\n".join(items) + "\n  },\n"
        return "{\n" + body + f'  "version": {self.version or LOCK_VERSION}\n' + "}\n"

    def write(self) -> None:
        with self._disk:
            self._write_locked()

    def _write_locked(self) -> None:
        with self._state:
            text, changes = self._text(), self._changes
        atomic_write(self.path, text.encode("utf-8"))
        self._written = changes


def _fragment(entry: LockEntry) -> str:
    """The entry as json.dumps(indent=2) would print it two levels deep."""
    text = json.dumps(entry.model_dump(mode="json"), indent=2, sort_keys=True, ensure_ascii=False)
    return text.replace("\n", "\n    ")
