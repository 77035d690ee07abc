"""One apply per repository at a time: an exclusive lock on .promptform/apply.lock.

flock is released by the kernel when the holder dies (even with kill -9), so a crash never leaves a
stale lock behind; the file's content only tells the second apply who holds it.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from promptform.core.errors import PromptformError
from promptform.state.state_dir import ensure_state_dir


@contextmanager
def apply_lock(state_dir: Path) -> Iterator[None]:
    ensure_state_dir(state_dir)
    path = state_dir / "apply.lock"
    try:
        # O_NOFOLLOW: a committed symlink must not make apply truncate a file elsewhere.
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as exc:
        raise PromptformError(
            f"cannot open {path.name} in {state_dir.name}/: {exc.strerror}"
        ) from None
    handle = os.fdopen(descriptor, "r+", encoding="utf-8")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            raise PromptformError(
                f"another apply is running on this repository ({_describe(handle.read())}); "
                "wait for it to finish"
            ) from None
        handle.seek(0)
        handle.truncate()
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "started": int(time.time())}
        handle.write(json.dumps(holder) + "\n")
        handle.flush()
        yield
    finally:
        handle.close()


def _describe(content: str) -> str:
    try:
        holder = json.loads(content)
        started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(holder["started"]))
        return f"pid {holder['pid']} on {holder['host']}, started {started}"
    except (ValueError, KeyError, TypeError, RecursionError):
        return "holder unknown"
