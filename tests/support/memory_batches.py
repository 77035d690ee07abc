"""An in-memory Batch API for engine and command tests: the ClientSet `commands.batch` opens.

End-to-end tests talk HTTP to the loopback fake (tests/support/fake_images_api.py); these tests
drive the engine's decisions (what is pending, recorded, trashed, returned) without a server. Its
answers have the shapes of providers/batch.py's: BatchInfo-like states and result lines.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from promptform.core.config import Config
from promptform.core.images import ImageError, check_format
from promptform.providers.base import Generation, ProviderError
from tests.support.apply import png

# A project whose default provider offers the Batch API (nothing listens there: tests plug this
# module's MemoryBatches in as its clients).
BATCH_CONFIG = """\
[promptform]
default_provider = "gateway"

[providers.gateway]
kind = "openai"
base_url = "http://127.0.0.1:9/v1"
batch = true

[defaults]
model = "gpt-image-2"
size = "1024x1024"
quality = "low"
"""


@dataclass(frozen=True)
class Counts:
    total: int
    completed: int
    failed: int


@dataclass(frozen=True)
class Info:
    id: str
    status: str
    endpoint: str
    input_file_id: str
    output_file_id: str | None = None
    error_file_id: str | None = None
    created_at: int = 0
    request_counts: Counts = Counts(0, 0, 0)
    metadata: dict[str, str] = field(default_factory=dict)
    errors: tuple[str, ...] = ()


@dataclass(frozen=True)
class Line:
    custom_id: str
    status_code: int | None
    body: dict[str, Any] | None
    error_message: str | None
    error_code: str | None = None

    @property
    def ok(self) -> bool:
        return self.error_message is None and self.status_code == 200


class MemoryBatches:
    """Uploaded files and batches. A batch stays `in_progress` until `finish` (or, with
    `finish_on_create`, it completes as it is created); `blocked` prompts fail moderation."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, Info] = {}
        self.created: list[str] = []
        self.uploads = 0
        self.retrieves = 0
        self.listed = 0  # batches list_batches handed out
        self.blocked: str | None = None
        self.finish_on_create = False
        self.fail_create = False  # raise after storing the batch: a "kill" between the two
        self.unreadable_images = 0  # the next N successful lines fail to read, as a lost download

    # -- ClientSet ---------------------------------------------------------------------------

    def __call__(self, name: str) -> MemoryBatches:
        return self

    @staticmethod
    def parse_line(line: bytes) -> Line:
        item = json.loads(line)
        response = item.get("response")
        error = item.get("error")
        if error:
            message = f"{error['code']}: {error['message']}"
            return Line(item["custom_id"], None, None, message, error["code"])
        status = response["status_code"]
        body = response["body"]
        if status != 200:
            code = body["error"]["code"]
            message = f"HTTP {status} {code}: {body['error']['message']}"
            return Line(item["custom_id"], status, body, message, code)
        return Line(item["custom_id"], status, body, None)

    async def aclose(self) -> None:
        return None

    # -- BatchApi ----------------------------------------------------------------------------

    async def upload_input(self, path: Path) -> str:
        self.uploads += 1
        file_id = f"file-{len(self.files) + 1}"
        self.files[file_id] = path.read_bytes()
        return file_id

    async def create_batch(
        self, input_file_id: str, endpoint: str, metadata: dict[str, str]
    ) -> Info:
        batch_id = f"batch_{len(self.batches) + 1}"
        lines = self.input_lines(input_file_id)
        info = Info(
            batch_id,
            "in_progress",
            endpoint,
            input_file_id,
            request_counts=Counts(len(lines), 0, 0),
            metadata=dict(metadata),
            # Now, as the API stamps it; one second apart keeps the list's newest-first order.
            created_at=int(time.time()) + len(self.batches),
        )
        self.batches[batch_id] = info
        self.created.append(batch_id)
        if self.finish_on_create:
            self.finish(batch_id)
        if self.fail_create:
            raise ProviderError("connection lost after the batch was created", retryable=False)
        return self.batches[batch_id]

    async def file_bytes(self, file_id: str) -> int | None:
        data = self.files.get(file_id)
        return None if data is None else len(data)

    async def retrieve(self, batch_id: str) -> Info:
        self.retrieves += 1
        return self.batches[batch_id]

    async def list_batches(self) -> AsyncIterator[Info]:
        for info in sorted(self.batches.values(), key=lambda item: -item.created_at):
            self.listed += 1
            yield info

    async def cancel(self, batch_id: str) -> Info:
        self.finish(batch_id, "cancelled", done=0)
        return self.batches[batch_id]

    async def stream_lines(self, file_id: str) -> AsyncIterator[bytes]:
        for line in self.files[file_id].splitlines():
            yield line

    async def generation(self, result: Line, output_format: str, n: int) -> Generation:
        assert result.body is not None
        if self.unreadable_images:
            self.unreadable_images -= 1
            raise ProviderError("downloading image 1 failed with HTTP 503", retryable=True)
        images = [base64.b64decode(item["b64_json"]) for item in result.body["data"]]
        if len(images) != n:
            raise ProviderError(f"asked for {n} images, got {len(images)}", retryable=False)
        for data in images:
            try:
                check_format(data, output_format)
            except ImageError as exc:  # paid for: handed back to be kept, as the real client does
                raise ProviderError(str(exc), retryable=False, paid=tuple(images)) from None
        return Generation(images, usage=result.body.get("usage"))

    # -- scripting ---------------------------------------------------------------------------

    def input_lines(self, file_id: str) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.files[file_id].splitlines() if line.strip()]

    def finish(self, batch_id: str, status: str = "completed", done: int | None = None) -> None:
        """Run the batch's first `done` lines (all by default) and end it with `status`."""
        info = self.batches[batch_id]
        lines = self.input_lines(info.input_file_id)
        ran = lines if done is None else lines[:done]
        outputs, errors = [], []
        for index, line in enumerate(lines):
            if line not in ran:
                errors.append(_unrun(line, status))
            elif self.blocked and self.blocked in line["body"]["prompt"]:
                errors.append(_blocked(line))
            else:
                outputs.append(_answer(line, index))
        output_id = self._store(outputs)
        error_id = self._store(errors)
        self.batches[batch_id] = replace(
            info,
            status=status,
            output_file_id=output_id,
            error_file_id=error_id,
            request_counts=Counts(len(lines), len(outputs), len(errors)),
        )

    def fail_validation(self, batch_id: str, message: str) -> None:
        info = self.batches[batch_id]
        self.batches[batch_id] = replace(info, status="failed", errors=(f"line 1: {message}",))

    def _store(self, lines: list[dict[str, Any]]) -> str | None:
        if not lines:
            return None
        file_id = f"file-{len(self.files) + 1}"
        self.files[file_id] = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
        return file_id


def _answer(line: dict[str, Any], index: int) -> dict[str, Any]:
    n = int(line["body"].get("n", 1))
    images = [
        {"b64_json": base64.b64encode(png((index * 40 % 256, 80, 120 + n))).decode()}
        for _ in range(n)
    ]
    body = {"created": 1, "data": images, "usage": {"total_tokens": 100}}
    return {"custom_id": line["custom_id"], "response": {"status_code": 200, "body": body}}


def _blocked(line: dict[str, Any]) -> dict[str, Any]:
    error = {
        "code": "moderation_blocked",
        "message": "Your request was rejected by the safety system.",
    }
    return {
        "custom_id": line["custom_id"],
        "response": {"status_code": 400, "body": {"error": error}},
    }


def _unrun(line: dict[str, Any], status: str) -> dict[str, Any]:
    code = "batch_expired" if status == "expired" else "batch_cancelled"
    error = {"code": code, "message": "This request was not executed."}
    return {"custom_id": line["custom_id"], "response": None, "error": error}


@pytest.fixture
def memory_batches(monkeypatch: pytest.MonkeyPatch) -> MemoryBatches:
    """Every batch command in this test talks to one in-memory Batch API."""
    api = MemoryBatches()

    def open_clients(config: Config, environ: object) -> MemoryBatches:
        return api

    monkeypatch.setattr("promptform.commands.batch.open_clients", open_clients)
    return api
