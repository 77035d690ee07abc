"""The OpenAI Batch API: upload a JSONL file of image requests, start a batch, follow it, read results.

A batch is billed at a discount and answered within 24 hours instead of at once. Each input line is
`{"custom_id": ..., "method": "POST", "url": "/v1/images/generations", "body": {...}}`; each line of
the output (2xx) or error file (everything else) is `{"id", "custom_id", "response": {"status_code",
"request_id", "body"}, "error"}`, with `response: null` and an `error` object for a line that never
ran. Files are streamed both ways: neither a 200 MB input nor its output is ever held in memory.

Unlike OpenAIProvider, which makes one attempt and leaves retrying to apply, every call here is
retried: these are cheap bookkeeping calls, not paid generations. The key is handled as there.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from promptform.core.config import ProviderSettings
from promptform.core.errors import ConfigError
from promptform.providers.base import Generation, ProviderError
from promptform.providers.http import shared_client
from promptform.providers.openai import (
    MAX_IMAGE_BYTES,
    QUOTA_CODES,
    RETRYABLE_STATUSES,
    Failures,
    PayloadDecoder,
    api_key,
    checked_base_url,
    endpoint_url,
    error_fields,
    read_capped,
    request_headers,
    request_timeout,
)

BATCH_MAX_LINES = 50_000
BATCH_MAX_BYTES = 200 * 1024 * 1024
COMPLETION_WINDOW = "24h"
FINISHED_STATUSES = frozenset({"completed", "failed", "expired", "cancelled"})
# One output line holds at most 10 images of MAX_IMAGE_BYTES, base64-encoded, plus the JSON around.
MAX_LINE_BYTES = 10 * MAX_IMAGE_BYTES * 4 // 3 + 1024 * 1024
# Error codes of lines that never ran (expired or cancelled batches): sending them again can work.
UNRUN_CODES = frozenset({"batch_expired", "batch_cancelled"})
_JSON_BODY_BYTES = 16 * 1024 * 1024
LIST_PAGE_SIZE = 100
_MAX_BACKOFF_S = 60.0
# How far the API's clock may trail ours when looking for a batch made moments ago.
_CLOCK_SKEW_S = 600
_MAX_RETRY_AFTER_S = 600.0
_SNIPPET_CHARS = 200

T = TypeVar("T")

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchRequestCounts:
    total: int
    completed: int
    failed: int


@dataclass(frozen=True)
class BatchInfo:
    """A batch as the API describes it. `errors` holds validation errors as "line 3: message"."""

    id: str
    status: str  # validating|failed|in_progress|finalizing|completed|expired|cancelling|cancelled
    endpoint: str  # "/v1/images/generations" | "/v1/images/edits"
    input_file_id: str
    output_file_id: str | None
    error_file_id: str | None
    created_at: int  # unix seconds
    request_counts: BatchRequestCounts
    metadata: dict[str, str]
    errors: tuple[str, ...]

    @property
    def finished(self) -> bool:
        """Nothing will change any more: results (if any) are in the output and error files."""
        return self.status in FINISHED_STATUSES


@dataclass(frozen=True)
class BatchLineResult:
    """One line of an output or error file."""

    custom_id: str
    status_code: int | None  # None when the line has no response
    body: dict[str, Any] | None  # the images payload on success, {"error": ...} on failure
    error_message: str | None  # the API's message for a failed line (code included)
    error_code: str | None = None
    request_id: str | None = None

    @property
    def ok(self) -> bool:
        return (
            self.error_message is None
            and self.status_code is not None
            and 200 <= self.status_code < 300
        )


def parse_result_line(line: bytes) -> BatchLineResult:
    """One output or error file line; ProviderError when it is not the documented shape."""
    try:
        item = json.loads(line)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise _line_error("is not valid JSON", line) from None
    if not isinstance(item, dict):
        raise _line_error("is not a JSON object", line)
    custom_id = item.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        raise _line_error("has no custom_id", line)
    response, error = item.get("response"), item.get("error")
    if response is None and not isinstance(error, dict):
        raise _line_error(f"{custom_id}: has neither a response nor an error", line)
    if response is not None and not _is_response(response):
        raise _line_error(f"{custom_id}: response is not {{status_code, body}}", line)
    if error is not None and not isinstance(error, dict):
        raise _line_error(f"{custom_id}: error is not an object", line)
    status = response["status_code"] if response else None
    body = response.get("body") if response else None
    message, code = _line_failure(status, body, error)
    request_id = response.get("request_id") if response else None
    return BatchLineResult(
        custom_id=custom_id,
        status_code=status,
        body=body if isinstance(body, dict) else None,
        error_message=message,
        error_code=code,
        request_id=request_id if isinstance(request_id, str) else None,
    )


def _is_response(response: Any) -> bool:
    return (
        isinstance(response, dict)
        and type(response.get("status_code")) is int
        and isinstance(response.get("body"), dict | None)
    )


def _line_failure(
    status: int | None, body: Any, error: dict[str, Any] | None
) -> tuple[str | None, str | None]:
    """(message with its code, code) of a failed line; (None, None) for a successful one."""
    if error is not None:
        message, code = error_fields({"error": error})
        return _with_code(code, message or "error without a message"), code
    assert status is not None
    if 200 <= status < 300:
        return None, None
    message, code = error_fields(body)
    summary = f"HTTP {status} {code}: {message}" if code else f"HTTP {status}: {message}"
    return (summary if message else f"HTTP {status}"), code


def _line_error(problem: str, line: bytes) -> ProviderError:
    text = " ".join(line.decode("utf-8", errors="replace").split())
    if len(text) > _SNIPPET_CHARS:
        text = text[: _SNIPPET_CHARS - 3] + "..."
    return ProviderError(f"batch result line {problem}: {text}", retryable=False)


def _with_code(code: str | None, message: str) -> str:
    return f"{code}: {message}" if code else message


class BatchClient:
    """The Batch API of provider `name` over a client of its own (closed by `aclose`).

    Calls that fail in a way that may pass (408, 409, 429 other than quota, 5xx, connection errors)
    are tried again up to `max_retries` times, waiting as retry-after says or backing off.
    """

    def __init__(
        self,
        name: str,
        settings: ProviderSettings,
        environ: Mapping[str, str],
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        backoff_s: float = 1.0,
        max_image_bytes: int = MAX_IMAGE_BYTES,
    ) -> None:
        if settings.kind != "openai":
            raise ConfigError(f"[providers.{name}] kind '{settings.kind}' has no Batch API")
        self.name = name
        self._settings = settings
        self._base = checked_base_url(name, settings.base_url)
        key = api_key(settings.api_key_env, environ)
        self._failures = Failures(name, settings, self._base, key)
        self._headers = request_headers(settings, key)
        self._timeout = request_timeout(settings)
        self._backoff_s = backoff_s
        self._client = shared_client(transport)
        self._decoder = PayloadDecoder(
            self._client, self._failures, self._base, self._headers, settings, max_image_bytes
        )

    def __repr__(self) -> str:
        return f"BatchClient(name={self.name!r}, base_url={str(self._base)!r})"

    async def aclose(self) -> None:
        await self._client.aclose()

    async def upload_input(self, path: Path) -> str:
        """Upload the JSONL file at `path` (purpose `batch`), streamed from disk; its file id."""
        await asyncio.to_thread(self._check_input, path)
        answer = await self._call("POST", "files", upload=path)
        file_id = answer.get("id")
        if not isinstance(file_id, str) or not file_id:
            raise self._failures.error("the upload answer has no file `id`", retryable=False)
        return file_id

    async def create_batch(
        self, input_file_id: str, endpoint: str, metadata: dict[str, str]
    ) -> BatchInfo:
        body = {
            "input_file_id": input_file_id,
            "endpoint": endpoint,
            "completion_window": COMPLETION_WINDOW,
            "metadata": metadata,
        }
        started = int(time.time()) - _CLOCK_SKEW_S

        async def once() -> BatchInfo:
            try:
                answer = await self._call("POST", "batches", json_body=body, retries=0)
            except ProviderError as exc:
                # A lost or failed answer may hide a batch the API did create: look before trying
                # again, because a second batch for one input file is paid for twice.
                if exc.retryable and (found := await self.find_batch(input_file_id, started)):
                    return found
                raise
            return self._info(answer)

        return await self._retrying(once)

    async def find_batch(self, input_file_id: str, created_after: int = 0) -> BatchInfo | None:
        """The newest batch made from `input_file_id`, looking no further back than `created_after`."""
        async for info in self.list_batches():
            if info.input_file_id == input_file_id:
                return info
            if info.created_at < created_after:
                return None  # newest first: everything after this is older still
        return None

    async def file_bytes(self, file_id: str) -> int | None:
        """The `bytes` the Files API reports for `file_id` (None when its answer has none)."""
        answer = await self._call("GET", f"files/{quote(file_id, safe='')}")
        size = answer.get("bytes")
        return size if isinstance(size, int) and not isinstance(size, bool) else None

    async def retrieve(self, batch_id: str) -> BatchInfo:
        return self._info(await self._call("GET", f"batches/{quote(batch_id, safe='')}"))

    async def list_batches(self) -> AsyncIterator[BatchInfo]:
        """Every batch of the account, newest first, page after page."""
        after: str | None = None
        while True:
            params = {"limit": str(LIST_PAGE_SIZE)} | ({"after": after} if after else {})
            page = await self._call("GET", "batches", params=params)
            items = page.get("data")
            if not isinstance(items, list):
                raise self._failures.error("the batch list has no `data` list", retryable=False)
            for item in items:
                yield self._info(item)
            if not page.get("has_more") or not items:
                return
            last = page.get("last_id") or items[-1].get("id")
            if not isinstance(last, str) or last == after:
                raise self._failures.error("the batch list pages do not advance", retryable=False)
            after = last

    async def cancel(self, batch_id: str) -> BatchInfo:
        return self._info(await self._call("POST", f"batches/{quote(batch_id, safe='')}/cancel"))

    async def stream_lines(self, file_id: str) -> AsyncIterator[bytes]:
        """The non-blank lines of file `file_id`, one at a time, without holding the file.

        Close the iterator (contextlib.aclosing) when stopping early, to free the connection.
        """
        path = f"files/{quote(file_id, safe='')}/content"
        response = await self._retrying(lambda: self._open(path))
        try:
            pending = bytearray()
            async for chunk in response.aiter_bytes():
                pending += chunk
                start = 0
                while (end := pending.find(b"\n", start)) >= 0:
                    line = bytes(pending[start:end]).rstrip(b"\r")
                    start = end + 1
                    if line.strip():
                        yield line
                del pending[:start]
                if len(pending) > MAX_LINE_BYTES:
                    raise self._failures.error(
                        f"file {file_id} has a line longer than {MAX_LINE_BYTES} bytes",
                        retryable=False,
                    )
            if pending.strip():
                yield bytes(pending).rstrip(b"\r")
        except httpx.HTTPError as exc:
            raise self._failures.transport_error(exc) from exc
        finally:
            await response.aclose()

    async def generation(self, result: BatchLineResult, output_format: str, n: int) -> Generation:
        """The images of a successful line, checked as a direct response's are."""
        if not result.ok:
            raise self.line_error(result)
        body = result.body
        payload = self._decoder.checked(body, lambda: self._failures.snippet(json.dumps(body)))
        try:
            return await self._decoder.generation(payload, output_format, n)
        except TimeoutError:  # an image link that did not answer: worth reading again later
            raise self._failures.error("an image download timed out", retryable=True) from None
        except httpx.HTTPError as exc:
            raise self._failures.transport_error(exc) from exc

    def line_error(self, result: BatchLineResult) -> ProviderError:
        """A failed line as the ProviderError a direct request would have raised."""
        status, code = result.status_code, result.error_code
        transient = status is not None and (status in RETRYABLE_STATUSES or status >= 500)
        retryable = code in UNRUN_CODES or (transient and code not in QUOTA_CODES)
        message = result.error_message or f"HTTP {status} without images"
        return self._failures.error(
            f"{result.custom_id}: {message}", retryable=retryable, status=status, code=code
        )

    # --- requests --------------------------------------------------------------------------------

    def _check_input(self, path: Path) -> None:
        try:
            size = path.stat().st_size
            with path.open("rb") as stream:
                lines = sum(chunk.count(b"\n") for chunk in iter(lambda: stream.read(1 << 20), b""))
        except OSError as exc:
            raise self._failures.error(
                f"cannot read {path}: {exc.strerror or exc}", retryable=False
            ) from None
        if size > BATCH_MAX_BYTES:
            raise self._failures.error(
                f"{path} is {size / (1 << 20):.1f} MB; a batch input file may hold at most "
                f"{BATCH_MAX_BYTES >> 20} MB, so split it",
                retryable=False,
            )
        if lines > BATCH_MAX_LINES:
            raise self._failures.error(
                f"{path} has {lines} lines; a batch input file may hold at most "
                f"{BATCH_MAX_LINES}, so split it",
                retryable=False,
            )

    async def _call(
        self,
        method: str,
        path: str,
        *,
        json_body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        upload: Path | None = None,
        retries: int | None = None,
    ) -> dict[str, Any]:
        """The JSON object answered to `method path`, retried while failures may pass.

        `retries` overrides the provider's `max_retries` (0: one attempt, failures raised as they are).
        """

        async def once() -> dict[str, Any]:
            url = endpoint_url(self._base, path)
            if params:
                url = url.copy_merge_params(params)
            if upload is None:
                request = self._client.build_request(
                    method, url, headers=self._headers, json=json_body, timeout=self._timeout
                )
                async with asyncio.timeout(self._settings.timeout_s):
                    return await self._send_for_json(request)
            # Opened per attempt: httpx reads the file in chunks while sending, and rewinds nothing.
            with upload.open("rb") as stream:
                request = self._client.build_request(
                    method,
                    url,
                    headers=self._headers,
                    data={"purpose": "batch"},
                    files={"file": (upload.name, stream, "application/jsonl")},
                    timeout=self._timeout,
                )
                return await self._send_for_json(request)

        return await self._retrying(once, retries)

    async def _send_for_json(self, request: httpx.Request) -> dict[str, Any]:
        response = await self._client.send(request, stream=True, follow_redirects=False)
        try:
            ok = response.status_code == 200
            raw = await read_capped(response, _JSON_BODY_BYTES, truncate=not ok)
        finally:
            await response.aclose()
        logger.debug("%s %s %s -> %s", self.name, request.method, request.url.path, response)
        if raw is None:
            raise self._failures.error(
                f"the answer to {request.method} {request.url.path} is too large", retryable=False
            )
        if not ok:
            raise self._failures.status_error(response, raw)
        try:
            answer = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError):
            answer = None
        if not isinstance(answer, dict):
            what, text = self._failures.describe_body(raw, response)
            raise self._failures.error(
                f"expected a JSON object from {request.url.path}, got a response {what}"
                + (f": {text}" if text else ""),
                retryable=True,
            )
        return answer

    async def _open(self, path: str) -> httpx.Response:
        """An open, streaming 200 response to GET `path` (the caller closes it)."""
        request = self._client.build_request(
            "GET", endpoint_url(self._base, path), headers=self._headers, timeout=self._timeout
        )
        response = await self._client.send(request, stream=True, follow_redirects=False)
        if response.status_code == 200:
            return response
        try:
            raw = await read_capped(response, 64 * 1024, truncate=True)
        finally:
            await response.aclose()
        raise self._failures.status_error(response, raw or b"")

    async def _retrying(self, attempt: Callable[[], Awaitable[T]], retries: int | None = None) -> T:
        limit = self._settings.max_retries if retries is None else retries
        failures = 0
        while True:
            try:
                try:
                    return await attempt()
                except TimeoutError:
                    raise self._failures.error(
                        f"no response within {self._settings.timeout_s:g}s", retryable=True
                    ) from None
                except httpx.HTTPError as exc:
                    raise self._failures.transport_error(exc) from exc
            except ProviderError as exc:
                if not exc.retryable or failures >= limit:
                    raise
                delay = self._delay(exc, failures)
                failures += 1
                logger.info("%s; trying again in %.1fs", exc, delay)
                await asyncio.sleep(delay)

    def _delay(self, error: ProviderError, failures: int) -> float:
        if error.retry_after is not None:
            return min(error.retry_after, _MAX_RETRY_AFTER_S)
        return float(min(self._backoff_s * 2**failures, _MAX_BACKOFF_S))

    def _info(self, payload: Any) -> BatchInfo:
        try:
            return batch_info(payload)
        except ValueError as exc:
            raise self._failures.error(f"unexpected batch object: {exc}", retryable=False) from None


def batch_info(payload: Any) -> BatchInfo:
    """A Batch object of the API; ValueError naming the first field that is missing or wrong."""
    if not isinstance(payload, dict):
        raise ValueError("not a JSON object")
    counts = payload.get("request_counts") or {}
    metadata = payload.get("metadata") or {}
    if not isinstance(counts, dict) or not isinstance(metadata, dict):
        raise ValueError("request_counts and metadata must be objects")
    return BatchInfo(
        id=_field(payload, "id", str),
        status=_field(payload, "status", str),
        endpoint=_field(payload, "endpoint", str),
        input_file_id=_field(payload, "input_file_id", str),
        output_file_id=_optional(payload, "output_file_id"),
        error_file_id=_optional(payload, "error_file_id"),
        created_at=_field(payload, "created_at", int),
        request_counts=BatchRequestCounts(
            total=_count(counts, "total"),
            completed=_count(counts, "completed"),
            failed=_count(counts, "failed"),
        ),
        metadata={str(key): str(value) for key, value in metadata.items()},
        errors=_validation_errors(payload.get("errors")),
    )


def _field(payload: dict[str, Any], name: str, kind: type[T]) -> T:
    value = payload.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ValueError(f"`{name}` is missing or not a {kind.__name__}")
    return value


def _optional(payload: dict[str, Any], name: str) -> str | None:
    value = payload.get(name)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"`{name}` is not a string")
    return value or None


def _count(counts: dict[str, Any], name: str) -> int:
    value = counts.get(name, 0)
    if type(value) is not int:
        raise ValueError(f"`request_counts.{name}` is not an integer")
    return value


def _validation_errors(errors: Any) -> tuple[str, ...]:
    """`errors.data` as "line 3: message" (or just the message when it names no line)."""
    items = errors.get("data") if isinstance(errors, dict) else None
    if not isinstance(items, list):
        return ()
    found = []
    for item in items:
        if not isinstance(item, dict):
            continue
        message = _with_code(item.get("code"), str(item.get("message") or "invalid"))
        line = item.get("line")
        found.append(f"line {line}: {message}" if type(line) is int else message)
    return tuple(found)
