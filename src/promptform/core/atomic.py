"""Atomic file writes: readers see the old file or the new one, never a mix, even after a crash."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

# Temp files are created exclusively, never through a link an attacker could have planted.
_CREATE = (
    os.O_WRONLY
    | os.O_CREAT
    | os.O_EXCL
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
)
_BUFFER = 256 * 1024  # chunks are small (an entry each): written in blocks of this size


def atomic_write(path: Path, data: bytes, durable: bool = True, shared: bool = False) -> None:
    """Write `data` to `path` via a temp file in the same directory, fsync and `os.replace`.

    `durable=False` skips the fsync, for caches: after a crash such a file may be lost or
    unreadable, never half-written. `shared=True` is for files people open, share and commit
    (images, the gallery): they get the permissions the umask allows, as any other program's files
    would. Otherwise the file is readable by its owner only, as local state should be.
    """
    atomic_write_chunks(path, (data,), durable, shared)


def atomic_write_chunks(
    path: Path, chunks: Iterable[bytes], durable: bool = True, shared: bool = False
) -> None:
    """`atomic_write` of the concatenated `chunks`, produced while writing: a big file (a lock
    shard of 50,000 entries) is never whole in memory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = _create_temp(path, 0o666 if shared else 0o600)
    try:
        with os.fdopen(handle, "wb", buffering=_BUFFER) as stream:
            for chunk in chunks:
                stream.write(chunk)
            if durable:
                stream.flush()
                os.fsync(stream.fileno())
        temp.replace(path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def _create_temp(path: Path, mode: int) -> tuple[int, Path]:
    """A new temp file next to `path`; the kernel applies the umask to `mode`, as for any file."""
    for _ in range(100):
        # os.urandom, as secrets.token_hex uses, without importing secrets (and random) at start.
        temp = path.parent / f".{path.name}.{os.urandom(6).hex()}.tmp"
        try:
            return os.open(temp, _CREATE, mode), temp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name next to {path}")
