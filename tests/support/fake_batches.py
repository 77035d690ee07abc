"""The Files and Batch API half of the loopback fake (tests/support/fake_images_api.py serves it).

Files live on disk in a temp directory, never in memory: an upload is streamed to disk as it
arrives and its content is then read through mmap; a batch's output and error files are written
line by line when the batch finishes. A 50,000-line batch therefore costs disk, not RAM.

A batch moves one step per `polls_per_step` retrievals (0: it is finished when created):

    validating -> in_progress -> finalizing -> completed      complete(), partial_failure(...)
    validating -> failed                                      schema-invalid lines, fail_validation()
    validating -> in_progress -> expired                      expire(done_lines)
    ... -> cancelling -> cancelled                             cancel call, or cancelled(done_lines)

Each input line is checked as the API checks it: JSON object, unique custom_id, method POST, url
equal to the batch's endpoint, body valid for that endpoint's schema.
"""

from __future__ import annotations

import itertools
import json
import mmap
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

IMAGE_BATCH_ENDPOINTS = ("/v1/images/generations", "/v1/images/edits")
MAX_LINES = 50_000
MAX_BYTES = 200 * 1024 * 1024
MAX_REPORTED_ERRORS = 100
EXPIRED_ERROR = {
    "code": "batch_expired",
    "message": "This request could not be executed before the completion window expired.",
}
_CHUNK = 1 << 20
_UNFINISHED = ("validating", "in_progress", "finalizing")


# --- scenarios ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchScenario:
    """What a batch does as it is polled. Build with the functions below.

    kind: complete | expire | fail_validation | cancelled
    """

    kind: str = "complete"
    polls_per_step: int = 1
    # Lines whose prompt contains this text (or for which `failing(body)` holds) are refused by the
    # safety system, as a direct request would be.
    fail_prompt_containing: str | None = None
    failing: Callable[[dict[str, Any]], bool] | None = None
    done_lines: int | None = None  # expire, cancel: lines run before it stopped (None: half)
    message: str = "The input file failed validation."  # fail_validation

    def fails(self, body: dict[str, Any]) -> bool:
        if self.failing is not None and self.failing(body):
            return True
        needle = self.fail_prompt_containing
        return needle is not None and needle in str(body.get("prompt", ""))

    def done(self, total: int) -> int:
        return min(total, total // 2 if self.done_lines is None else self.done_lines)


def complete(polls_per_step: int = 1) -> BatchScenario:
    return BatchScenario(polls_per_step=polls_per_step)


def partial_failure(
    failing: Callable[[dict[str, Any]], bool] | None = None,
    *,
    prompt_containing: str | None = None,
    polls_per_step: int = 1,
) -> BatchScenario:
    """Every line runs; those chosen fail with moderation_blocked (400) in the error file."""
    return BatchScenario(
        polls_per_step=polls_per_step, failing=failing, fail_prompt_containing=prompt_containing
    )


def expire(done_lines: int | None = None, polls_per_step: int = 1) -> BatchScenario:
    """The first `done_lines` run; the rest land in the error file as batch_expired."""
    return BatchScenario("expire", polls_per_step=polls_per_step, done_lines=done_lines)


def fail_validation(message: str = "The input file failed validation.") -> BatchScenario:
    """The batch fails validation (line 1) even when every line is valid; no output."""
    return BatchScenario("fail_validation", message=message)


def cancelled(done_lines: int | None = None, polls_per_step: int = 1) -> BatchScenario:
    """Cancelled (as from the dashboard) while in progress: the lines done so far are kept."""
    return BatchScenario("cancelled", polls_per_step=polls_per_step, done_lines=done_lines)


class Readable(Protocol):
    def read(self, size: int, /) -> bytes: ...


# --- stored things --------------------------------------------------------------------------------


class FakeAPIError(Exception):
    """An API error answer: status and the `error` object's code and message."""

    def __init__(self, status: int, code: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.param = param


@dataclass(frozen=True)
class StoredFile:
    """`length` bytes at `offset` of `path` on disk (an upload is a slice of the raw request)."""

    id: str
    path: Path
    offset: int
    length: int
    purpose: str
    filename: str
    created_at: int

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "file",
            "bytes": self.length,
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
        }

    def chunks(self, size: int = _CHUNK) -> Iterator[bytes]:
        with self.path.open("rb") as stream:
            stream.seek(self.offset)
            remaining = self.length
            while remaining > 0:
                chunk = stream.read(min(size, remaining))
                if not chunk:
                    return
                remaining -= len(chunk)
                yield chunk

    def lines(self) -> Iterator[bytes]:
        """The lines, without their line ends (a last line without one included)."""
        pending = b""
        for chunk in self.chunks():
            pending += chunk
            *complete_lines, pending = pending.split(b"\n")
            for line in complete_lines:
                yield line.rstrip(b"\r")
        if pending:
            yield pending.rstrip(b"\r")


@dataclass
class FakeBatch:
    id: str
    endpoint: str
    input_file: StoredFile
    metadata: dict[str, str] | None
    scenario: BatchScenario
    total: int
    errors: list[dict[str, Any]]
    created_at: int = field(default_factory=lambda: int(time.time()))
    status: str = "validating"
    polls: int = 0
    cancel_at_poll: int | None = None
    ran_before_cancel: int = 0
    completed: int = 0
    failed: int = 0
    output_file_id: str | None = None
    error_file_id: str | None = None
    stamps: dict[str, int] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "id": self.id,
            "object": "batch",
            "endpoint": self.endpoint,
            "input_file_id": self.input_file.id,
            "completion_window": "24h",
            "status": self.status,
            "created_at": self.created_at,
            "expires_at": self.created_at + 24 * 3600,
            "request_counts": {
                "total": self.total,
                "completed": self.completed,
                "failed": self.failed,
            },
            "metadata": self.metadata,
            **self.stamps,
        }
        if self.output_file_id:
            answer["output_file_id"] = self.output_file_id
        if self.error_file_id:
            answer["error_file_id"] = self.error_file_id
        if self.errors:
            answer["errors"] = {"object": "list", "data": self.errors}
        return answer


# --- the store ------------------------------------------------------------------------------------

BodyCheck = Callable[[str, Any], list[str]]
ResultBody = Callable[[dict[str, Any], int], dict[str, Any]]
RefusedBody = Callable[[], dict[str, Any]]


class BatchStore:
    """Files and batches of the fake. Thread-safe: the server handles requests in threads.

    `check_body(url, body)` lists what is wrong with a line's body; `result_body(body, seed)` is
    the images response a line gets; `refused_body()` the error body of a line the safety system
    refuses.
    """

    def __init__(
        self,
        directory: Callable[[], Path],
        check_body: BodyCheck,
        result_body: ResultBody,
        refused_body: RefusedBody,
    ) -> None:
        self._directory = directory
        self._check_body = check_body
        self._result_body = result_body
        self._refused_body = refused_body
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self._files: dict[str, StoredFile] = {}
        self._batches: dict[str, FakeBatch] = {}
        self._queue: deque[BatchScenario] = deque()
        self.default = BatchScenario()
        self.uploads = self.created = self.polls = self.cancels = 0
        self.output_bytes = 0  # of every output and error file written (benchmarks report it)

    # scripting

    def enqueue(self, *scenarios: BatchScenario) -> None:
        """Scenarios for the next batches created, in order; after them `default` applies."""
        with self._lock:
            self._queue.extend(scenarios)

    def set_scenario(self, batch_id: str, scenario: BatchScenario) -> None:
        with self._lock:
            self._batches[batch_id].scenario = scenario

    def reset(self) -> None:
        with self._lock:
            self._queue.clear()
            self._files.clear()
            self._batches.clear()
            self.uploads = self.created = self.polls = self.cancels = 0
            self.output_bytes = 0

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {
                "uploads": self.uploads,
                "batches_created": self.created,
                "batch_polls": self.polls,
                "batch_cancels": self.cancels,
                "batch_output_bytes": self.output_bytes,
            }

    def batch(self, batch_id: str) -> FakeBatch:
        with self._lock:
            return self._batches[batch_id]

    def file(self, file_id: str) -> StoredFile:
        with self._lock:
            found = self._files.get(file_id)
        if found is None:
            raise FakeAPIError(404, "not_found", f"No such File object: {file_id}", "file_id")
        return found

    def has_file(self, file_id: str) -> bool:
        with self._lock:
            return file_id in self._files

    # files

    def receive_upload(self, body: Readable, length: int, content_type: str) -> dict[str, Any]:
        """Stream a multipart upload of `length` bytes to disk and store its `file` part."""
        match = re.search(r'boundary="?([^";]+)"?', content_type)
        if not content_type.startswith("multipart/form-data") or not match:
            raise FakeAPIError(
                400,
                "invalid_request",
                f"content-type must be multipart/form-data, not {content_type!r}",
            )
        raw = self._new_path("upload", ".raw")
        with raw.open("wb") as sink:
            remaining = length
            while remaining > 0:
                chunk = body.read(min(_CHUNK, remaining))
                if not chunk:
                    raise FakeAPIError(400, "invalid_request", "the request body ended early")
                sink.write(chunk)
                remaining -= len(chunk)
        fields, part = _multipart_file(raw, match[1].encode())
        purpose = fields.get("purpose")
        unknown = sorted(set(fields) - {"purpose", "expires_after"})
        if unknown:
            raise FakeAPIError(400, "invalid_request", f"unknown fields: {', '.join(unknown)}")
        if part is None:
            raise FakeAPIError(400, "invalid_request", "missing the `file` part", "file")
        if purpose != "batch":
            raise FakeAPIError(
                400, "invalid_request", f"purpose must be 'batch' here, not {purpose!r}", "purpose"
            )
        filename, offset, size = part
        with self._lock:
            stored = StoredFile(
                self._new_id("file-"), raw, offset, size, "batch", filename, int(time.time())
            )
            self._files[stored.id] = stored
            self.uploads += 1
        return stored.describe()

    # batches

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        """A new batch for a request body already checked against CreateBatchRequest."""
        endpoint = str(body["endpoint"])
        if endpoint not in IMAGE_BATCH_ENDPOINTS:
            raise FakeAPIError(
                400, "invalid_request", f"this fake runs image batches, not {endpoint}"
            )
        source = self.file(str(body["input_file_id"]))
        if source.purpose != "batch":
            raise FakeAPIError(400, "invalid_request", "the input file's purpose is not batch")
        total, errors = self._validate(source, endpoint)
        with self._lock:
            scenario = self._queue.popleft() if self._queue else self.default
            if scenario.kind == "fail_validation" and not errors:
                errors = [_batch_error(1, scenario.message)]
            batch = FakeBatch(
                self._new_id("batch_"),
                endpoint,
                source,
                body.get("metadata"),
                scenario,
                total,
                errors,
            )
            self._batches[batch.id] = batch
            self.created += 1
            self._advance(batch)
            return batch.describe()

    def retrieve(self, batch_id: str) -> dict[str, Any]:
        with self._lock:
            batch = self._known(batch_id)
            batch.polls += 1
            self.polls += 1
            self._advance(batch)
            return batch.describe()

    def cancel(self, batch_id: str) -> dict[str, Any]:
        with self._lock:
            batch = self._known(batch_id)
            if batch.status not in (*_UNFINISHED, "cancelling"):
                raise FakeAPIError(
                    400, "invalid_request", f"Cannot cancel a batch with status '{batch.status}'."
                )
            self.cancels += 1
            if batch.status != "cancelling":
                ran = 0 if batch.status == "validating" else batch.scenario.done(batch.total)
                self._start_cancelling(batch, ran)
                self._advance(batch)
            return batch.describe()

    def listing(self, after: str | None, limit: int) -> dict[str, Any]:
        if not 1 <= limit <= 100:
            raise FakeAPIError(400, "invalid_request", "limit must be between 1 and 100", "limit")
        with self._lock:
            newest_first = list(reversed(self._batches.values()))
            start = 0
            if after is not None:
                ids = [batch.id for batch in newest_first]
                if after not in ids:
                    raise FakeAPIError(400, "invalid_request", f"No batch {after}", "after")
                start = ids.index(after) + 1
            page = newest_first[start : start + limit]
            return {
                "object": "list",
                "data": [batch.describe() for batch in page],
                "first_id": page[0].id if page else None,
                "last_id": page[-1].id if page else None,
                "has_more": start + limit < len(newest_first),
            }

    # internals

    def _known(self, batch_id: str) -> FakeBatch:
        found = self._batches.get(batch_id)
        if found is None:
            raise FakeAPIError(404, "not_found", f"No batch found with id '{batch_id}'.")
        return found

    def _advance(self, batch: FakeBatch) -> None:
        """Move `batch` to the state its poll count and scenario say (holding the lock)."""
        if batch.status not in (*_UNFINISHED, "cancelling"):
            return
        step = batch.scenario.polls_per_step
        if batch.cancel_at_poll is not None:
            if step == 0 or batch.polls - batch.cancel_at_poll >= step:
                self._finish(batch, "cancelled", batch.ran_before_cancel)
            return
        stage = 3 if step == 0 else batch.polls // step
        kind = batch.scenario.kind
        if stage == 0:
            return
        if batch.errors:
            batch.status = "failed"
            batch.stamps["failed_at"] = int(time.time())
        elif kind == "expire" and stage >= 2:
            self._finish(batch, "expired", batch.scenario.done(batch.total))
        elif kind == "cancelled" and stage >= 2:
            self._start_cancelling(batch, batch.scenario.done(batch.total))
            self._advance(batch)
        elif stage >= 3:
            self._finish(batch, "completed", batch.total)
        else:
            self._stamp(batch, "in_progress" if stage == 1 else "finalizing")

    def _start_cancelling(self, batch: FakeBatch, ran: int) -> None:
        batch.cancel_at_poll = batch.polls
        batch.ran_before_cancel = ran
        self._stamp(batch, "cancelling")

    def _stamp(self, batch: FakeBatch, status: str) -> None:
        batch.status = status
        batch.stamps.setdefault(f"{status}_at", int(time.time()))

    def _finish(self, batch: FakeBatch, status: str, ran: int) -> None:
        """Write the output and error files: `ran` lines run, the rest expired or left out."""
        output, errors = (
            self._new_path(batch.id, ".output.jsonl"),
            self._new_path(batch.id, ".errors.jsonl"),
        )
        with output.open("wb") as good, errors.open("wb") as bad:
            for index, line in enumerate(_nonblank(batch.input_file.lines())):
                request = json.loads(line)
                if index < ran:
                    refused = batch.scenario.fails(request["body"])
                    result = self._line_result(request, index, refused)
                    (bad if refused else good).write(result)
                    batch.failed += refused
                    batch.completed += not refused
                elif status == "expired":
                    bad.write(_result_line(request["custom_id"], index, None, EXPIRED_ERROR))
                    batch.failed += 1
        batch.output_file_id = self._store_output(output, batch.id)
        batch.error_file_id = self._store_output(errors, batch.id)
        self._stamp(batch, status)

    def _line_result(self, request: dict[str, Any], index: int, refused: bool) -> bytes:
        status, body = (
            (400, self._refused_body())
            if refused
            else (200, self._result_body(request["body"], index))
        )
        response = {"status_code": status, "request_id": f"req_{index:08x}", "body": body}
        return _result_line(request["custom_id"], index, response, None)

    def _store_output(self, path: Path, batch_id: str) -> str | None:
        size = path.stat().st_size
        if size == 0:
            return None
        stored = StoredFile(
            self._new_id("file-"),
            path,
            0,
            size,
            "batch_output",
            f"{batch_id}_output.jsonl",
            int(time.time()),
        )
        self._files[stored.id] = stored
        self.output_bytes += size
        return stored.id

    def _validate(self, source: StoredFile, endpoint: str) -> tuple[int, list[dict[str, Any]]]:
        """(number of requests, errors as BatchError objects) of an input file."""
        if source.length > MAX_BYTES:
            return 0, [_batch_error(None, f"The input file is larger than {MAX_BYTES} bytes.")]
        errors: list[dict[str, Any]] = []
        seen: set[str] = set()
        total = 0
        for number, line in enumerate(source.lines(), start=1):
            if not line.strip():
                continue
            total += 1
            for message in self._line_problems(line, endpoint, seen):
                if len(errors) < MAX_REPORTED_ERRORS:
                    errors.append(_batch_error(number, message))
        if total == 0:
            errors.append(_batch_error(None, "The input file has no requests."))
        if total > MAX_LINES:
            errors.append(_batch_error(None, f"The input file has more than {MAX_LINES} requests."))
        return total, errors

    def _line_problems(self, line: bytes, endpoint: str, seen: set[str]) -> list[str]:
        try:
            request = json.loads(line)
        except ValueError:
            return ["not valid JSON"]
        if not isinstance(request, dict):
            return ["not a JSON object"]
        problems = []
        custom_id = request.get("custom_id")
        if not isinstance(custom_id, str) or not custom_id:
            problems.append("custom_id must be a non-empty string")
        elif custom_id in seen:
            problems.append(
                f"custom_id {custom_id!r} is used by an earlier line; it must be unique"
            )
        else:
            seen.add(custom_id)
        if request.get("method") != "POST":
            problems.append(f"method must be POST, not {request.get('method')!r}")
        if request.get("url") != endpoint:
            problems.append(
                f"url {request.get('url')!r} differs from the batch endpoint {endpoint}"
            )
        unknown = sorted(set(request) - {"custom_id", "method", "url", "body"})
        if unknown:
            problems.append(f"unknown fields: {', '.join(unknown)}")
        body = request.get("body")
        if not isinstance(body, dict):
            return [*problems, "body must be a JSON object"]
        return problems + [f"body.{problem}" for problem in self._check_body(endpoint, body)]

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):06d}fake"

    def _new_path(self, stem: str, suffix: str) -> Path:
        return self._directory() / f"{stem}-{next(self._ids)}{suffix}"


def _multipart_file(
    raw: Path, boundary: bytes
) -> tuple[dict[str, str], tuple[str, int, int] | None]:
    """Text fields, and (filename, offset, length) of the `file` part, of a multipart body on disk.

    Searched through mmap, so the operating system pages the body in and out as it is scanned.
    """
    if raw.stat().st_size == 0:
        raise FakeAPIError(400, "invalid_request", "empty multipart body")
    fields: dict[str, str] = {}
    part: tuple[str, int, int] | None = None
    delimiter = b"--" + boundary
    with raw.open("rb") as stream, mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ) as body:
        position = body.find(delimiter)
        if position != 0:
            raise FakeAPIError(
                400, "invalid_request", "malformed multipart body: no opening boundary"
            )
        while True:
            after = position + len(delimiter)
            if body[after : after + 2] == b"--":
                return fields, part
            head_end = body.find(b"\r\n\r\n", after)
            following = body.find(b"\r\n" + delimiter, head_end + 4)
            if body[after : after + 2] != b"\r\n" or head_end < 0 or following < 0:
                raise FakeAPIError(400, "invalid_request", "malformed multipart body")
            head = body[after + 2 : head_end].decode("utf-8", errors="replace")
            name = re.search(r'\bname="([^"]*)"', head)
            filename = re.search(r'\bfilename="([^"]*)"', head)
            start = head_end + 4
            if name and name[1] == "file" and filename:
                part = (filename[1], start, following - start)
            elif name and not filename:
                fields[name[1]] = body[start:following].decode("utf-8", errors="replace")
            else:
                raise FakeAPIError(400, "invalid_request", f"unexpected multipart part: {head!r}")
            position = following + 2


def _nonblank(lines: Iterator[bytes]) -> Iterator[bytes]:
    return (line for line in lines if line.strip())


def _batch_error(line: int | None, message: str) -> dict[str, Any]:
    return {"code": "invalid_request", "line": line, "message": message, "param": None}


def _result_line(
    custom_id: str, index: int, response: dict[str, Any] | None, error: dict[str, Any] | None
) -> bytes:
    line = {
        "id": f"batch_req_{index:08x}",
        "custom_id": custom_id,
        "response": response,
        "error": error,
    }
    return json.dumps(line, separators=(",", ":")).encode() + b"\n"
