"""Rewrites promptform.lock after every completed target without re-serialising every entry.

Apply rewrites the whole file atomically after each target so a crash loses nothing recorded; with
thousands of entries, serialising each only when it changes keeps that linear instead of quadratic.
The bytes are exactly `lockfile.dumps()`'s (a test holds them to it).
"""

from __future__ import annotations

import json
from pathlib import Path

from promptform.atomic import atomic_write
from promptform.lockfile import LOCK_VERSION, LockEntry, Lockfile


class LockfileWriter:
    def __init__(self, path: Path, lockfile: Lockfile) -> None:
        self.path = path
        self.version = lockfile.version
        self.entries: dict[str, LockEntry] = dict(lockfile.targets)
        self._fragments = {address: _fragment(entry) for address, entry in self.entries.items()}

    def put(self, address: str, entry: LockEntry) -> None:
        """Record `entry` and rewrite the file."""
        self.entries[address] = entry
        self._fragments[address] = _fragment(entry)
        self.write()

    def remove(self, address: str) -> None:
        """Forget `address` and rewrite the file (no-op when absent)."""
        self.update({}, (address,))

    def update(self, put: dict[str, LockEntry], remove: tuple[str, ...]) -> None:
        """Record and forget several entries in one atomic rewrite (a rename is both at once)."""
        for address in remove:
            self.entries.pop(address, None)
            self._fragments.pop(address, None)
        for address, entry in put.items():
            self.entries[address] = entry
            self._fragments[address] = _fragment(entry)
        self.write()

    def lockfile(self) -> Lockfile:
        return Lockfile(version=self.version, targets=dict(self.entries))

    def text(self) -> str:
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
        atomic_write(self.path, self.text().encode("utf-8"))


def _fragment(entry: LockEntry) -> str:
    """The entry as json.dumps(indent=2) would print it two levels deep."""
    text = json.dumps(entry.model_dump(mode="json"), indent=2, sort_keys=True, ensure_ascii=False)
    return text.replace("\n", "\n    ")
