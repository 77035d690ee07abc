"""Builders for apply tests against the loopback images API: projects, scripted servers, checks."""

from __future__ import annotations

import hashlib
import io
import os
import threading
import time
from collections import deque
from pathlib import Path

import pytest
from PIL import Image

from promptform.state.lockfile import LockEntry, read_lockfile
from tests.support.fake_images_api import Behaviour, FakeImagesAPI, RecordedRequest, ok
from tests.support.files import write_files

KEY = "sk-test-0123456789"


@pytest.fixture(name="server")
def keyed_fake_images_api(
    fake_images_api: FakeImagesAPI, monkeypatch: pytest.MonkeyPatch
) -> FakeImagesAPI:
    """The `server` fixture: the loopback images API expecting KEY, which projects from
    `make_fake_project` send through FAKE_KEY. Import it into a test module to use it."""
    monkeypatch.setenv("FAKE_KEY", KEY)
    fake_images_api.api_key = KEY
    return fake_images_api


def fake_config(server: FakeImagesAPI, **settings: object) -> str:
    """A promptform.toml whose default provider is `server` (cheap 1024x1024 low-quality images)."""
    settings = {"max_retries": 3, **settings}
    extra = "".join(f"{name} = {_toml(value)}\n" for name, value in settings.items())
    return (
        '[promptform]\ndefault_provider = "fake"\n\n'
        f'[providers.fake]\nkind = "openai"\nbase_url = "{server.base_url}"\n'
        'api_key_env = "FAKE_KEY"\n'
        f"{extra}\n"
        '[defaults]\nmodel = "gpt-image-2"\nsize = "1024x1024"\nquality = "low"\n'
    )


def _toml(value: object) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def make_fake_project(
    root: Path, server: FakeImagesAPI, files: dict[str, str | bytes], **settings: object
) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    return write_files(root, {"promptform.toml": fake_config(server, **settings), **files})


def cards(count: int, name: str = "cards") -> dict[str, str | bytes]:
    """One manifest with `count` targets: `cards[i=1]` ... (outputs `cards-1-1.png` ...)."""
    cells = ", ".join(str(i) for i in range(1, count + 1))
    return {
        f"prompts/{name}.yaml": f"name: {name}\nmatrix:\n  i: [{cells}]\nprompt: Card {{{{ i }}}}.\n"
    }


def png(colour: tuple[int, int, int], size: int = 32) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buffer, "PNG")
    return buffer.getvalue()


def subprocess_env(**extra: str) -> dict[str, str]:
    """The (already scrubbed) test environment for a child promptform, with the fake's key."""
    return {**os.environ, "FAKE_KEY": KEY, "PYTHONUNBUFFERED": "1", **extra}


def locked_entries_match_disk(root: Path) -> dict[str, LockEntry]:
    """The lockfile's entries, after checking each recorded output exists with its sha256."""
    entries = read_lockfile(root / "promptform.lock").targets
    for address, entry in entries.items():
        for output in entry.outputs:
            path = root / "generated" / output.path
            assert path.is_file(), f"{address}: {output.path} is recorded but missing"
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            assert digest == output.sha256, f"{address}: {output.path} differs from its entry"
    return entries


class Script:
    """A `server.behave` that serves `behaviours` in order, then `then`, and keeps a log.

    It holds each request for `hold` seconds inside the handler thread and counts the requests held
    at once, so `most_at_once` is exactly the server's peak concurrency: the count drops before
    the response is sent, so no client can start a request it could only send after a response.
    """

    def __init__(
        self, *behaviours: Behaviour, then: Behaviour | None = None, hold: float = 0.0
    ) -> None:
        self._queue = deque(behaviours)
        self.then = then or ok()
        self.hold = hold
        self.arrivals: list[float] = []
        self.prompts: list[str] = []
        self.most_at_once = 0
        self._at_once = 0
        self._lock = threading.Lock()

    def __call__(self, request: RecordedRequest) -> Behaviour:
        with self._lock:
            self.arrivals.append(time.monotonic())
            self.prompts.append(request.prompt)
            self._at_once += 1
            self.most_at_once = max(self.most_at_once, self._at_once)
            behaviour = self._queue.popleft() if self._queue else self.then
        try:
            time.sleep(self.hold)
        finally:
            with self._lock:
                self._at_once -= 1
        return behaviour

    def gaps(self) -> list[float]:
        return [b - a for a, b in zip(self.arrivals, self.arrivals[1:], strict=False)]
