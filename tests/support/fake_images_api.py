"""A real HTTP fake of the OpenAI images API on loopback, for end-to-end tests and benchmarks.

It serves POST /v1/images/generations (JSON) and /v1/images/edits (multipart) on 127.0.0.1 from a
background thread, checks every request body against the official OpenAPI schema, records every
request, and answers with real PNG/JPEG/WEBP images, unless told to misbehave:

    server.enqueue(rate_limited(retry_after="2"), server_error(503), ok())  # the next three requests
    server.default = ok(latency=0.25)                                        # every request after them
    server.behave = lambda request: moderation_blocked() if "nsfw" in request.prompt else None
    server.rate_limit(per_second=5)                                          # 429 above 5 requests/s

In tests use the `fake_images_api` fixture: import `fake_images_api_fixture` from this module into the
test module (or list this module in the root conftest's `pytest_plugins`). From a shell or a benchmark: `python -m tests.support.fake_images_api --port 8089 --latency 0.25`,
which prints `FAKE_IMAGES_API=http://127.0.0.1:8089/v1`; GET /_fake/stats returns the counters and
POST /_fake/script {"queue": [BEHAVIOUR...], "default": BEHAVIOUR} scripts it from another process.

It also serves the Files and Batch API (/v1/files, /v1/files/{id}/content, /v1/batches,
/v1/batches/{id}, /v1/batches/{id}/cancel); tests/support/fake_batches.py describes how batches
behave. Batches are scripted like images requests:

    server.batches.enqueue(partial_failure(prompt_containing="nsfw"), expire(done_lines=2))
    server.batches.default = complete(polls_per_step=0)                     # finished when created
    server.fail_batch_calls(rate_limited(retry_after="0"), server_error(503))  # next Files/Batch calls

and from another process with POST /_fake/script {"batch_queue": [SCENARIO...], "batch_default":
SCENARIO, "batch_faults": [BEHAVIOUR...]}, a SCENARIO being BatchScenario's fields as JSON.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import json
import math
import re
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from email.utils import formatdate
from functools import cache
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jsonschema
import pytest
from PIL import Image

from tests.support.fake_batches import BatchScenario, BatchStore, FakeAPIError
from tests.support.openapi import OPENAPI_PATH
from tests.support.waiting import join_thread, stop_serving

GENERATIONS_PATH = "/v1/images/generations"
EDITS_PATH = "/v1/images/edits"
FILES_PATH = "/v1/files"
BATCHES_PATH = "/v1/batches"
_FILE_CONTENT = re.compile(r"^/v1/files/([^/]+)/content$")
_FILE = re.compile(r"^/v1/files/([^/]+)$")
_BATCH = re.compile(r"^/v1/batches/([^/]+)$")
_BATCH_CANCEL = re.compile(r"^/v1/batches/([^/]+)/cancel$")
MEDIA_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
_SIZE = re.compile(r"^(\d+)x(\d+)$")
_RESPONSE_SIZES = {"1024x1024", "1024x1536", "1536x1024"}
# Once stop() has woken sleeping behaviours and shut connections, handlers return in milliseconds.
HANDLER_SECONDS = 10.0


# --- behaviours ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Behaviour:
    """What the server does with one images request. Build them with the functions below.

    kind: ok | error | timeout | drop | malformed_json | html | truncated_b64 | wrong_format | url
        | wrong_count
    """

    kind: str = "ok"
    latency: float = 0.0
    status: int = 200
    code: str | None = None
    message: str | None = None
    error_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    image_format: str | None = None  # wrong_format: the format sent instead of the requested one
    url_host: str | None = None  # url: host of the image link (None: the server's own address)
    url_scheme: str = "http"
    revised_prompt: str | None = None
    sleep: float = 30.0  # timeout: how long to hold the request before dropping it
    count: int | None = None  # wrong_count: how many images to answer with, whatever n asked


def ok(latency: float = 0.0, revised_prompt: str | None = None) -> Behaviour:
    return Behaviour(latency=latency, revised_prompt=revised_prompt)


def api_error(
    status: int,
    code: str | None,
    message: str,
    error_type: str = "invalid_request_error",
    headers: dict[str, str] | None = None,
    latency: float = 0.0,
) -> Behaviour:
    return Behaviour(
        "error",
        latency=latency,
        status=status,
        code=code,
        message=message,
        error_type=error_type,
        headers=headers or {},
    )


def rate_limited(
    retry_after: str | None = None, retry_after_ms: str | None = None, latency: float = 0.0
) -> Behaviour:
    headers = {}
    if retry_after is not None:
        headers["retry-after"] = retry_after
    if retry_after_ms is not None:
        headers["retry-after-ms"] = retry_after_ms
    return api_error(
        429,
        "rate_limit_exceeded",
        "Rate limit reached for requests per min. Please try again later.",
        "requests",
        headers,
        latency,
    )


def quota_exhausted() -> Behaviour:
    return api_error(
        429,
        "insufficient_quota",
        "You exceeded your current quota, please check your plan and billing details.",
        "insufficient_quota",
    )


def server_error(status: int = 500, latency: float = 0.0) -> Behaviour:
    return api_error(
        status,
        None,
        "The server had an error while processing your request. Sorry about that!",
        "server_error",
        latency=latency,
    )


def moderation_blocked() -> Behaviour:
    return api_error(
        400,
        "moderation_blocked",
        "Your request was rejected as a result of our safety system.",
        "image_generation_user_error",
    )


def timeout(sleep: float = 30.0) -> Behaviour:
    """Hold the request longer than the client waits, then close the connection."""
    return Behaviour("timeout", sleep=sleep)


def dropped(latency: float = 0.0) -> Behaviour:
    """Close the connection without sending a response."""
    return Behaviour("drop", latency=latency)


def malformed_json(status: int = 200) -> Behaviour:
    return Behaviour("malformed_json", status=status)


def html_error(status: int = 502) -> Behaviour:
    return Behaviour("html", status=status)


def truncated_base64(valid_padding: bool = False) -> Behaviour:
    """Cut the base64 in half: mid-quantum (invalid base64), or on a quantum (a truncated image)."""
    return Behaviour("truncated_b64", code="valid_padding" if valid_padding else None)


def wrong_format(image_format: str = "jpeg") -> Behaviour:
    return Behaviour("wrong_format", image_format=image_format)


def wrong_count(count: int) -> Behaviour:
    """Answer with `count` good images, whatever `n` the request asked for (billed all the same)."""
    return Behaviour("wrong_count", count=count)


def url_response(host: str | None = None, scheme: str = "http") -> Behaviour:
    """Answer with `url`s to the images, served by this server under /files/."""
    return Behaviour("url", url_host=host, url_scheme=scheme)


# --- records --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FilePart:
    field: str
    filename: str | None
    content_type: str | None
    data: bytes


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: dict[str, Any] | None  # JSON body, or multipart text fields (as sent, strings)
    files: tuple[FilePart, ...] = ()
    violations: tuple[str, ...] = ()
    behaviour: str = ""

    @property
    def prompt(self) -> str:
        return str((self.body or {}).get("prompt", ""))


# --- the server -----------------------------------------------------------------------------------


class FakeImagesAPI:
    """The fake server; use as a context manager or call start()/stop()."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        default: Behaviour | None = None,
        api_key: str | None = None,
        match_size: bool = False,
        image_bytes: int | None = None,
        strict_fields: bool = True,
    ) -> None:
        """`api_key`: require it (Bearer or api-key header) and answer 401 otherwise.
        `match_size`: images of the requested size (slower) instead of small 64x64 ones.
        `image_bytes`: pad PNG and JPEG images to about this many bytes (memory benchmarks).
        `strict_fields`: report fields the schema does not define (it allows them; we should not).
        """
        self.host = host
        self.default = default or ok()
        self.behave: Callable[[RecordedRequest], Behaviour | None] | None = None
        self.api_key = api_key
        self.match_size = match_size
        self.image_bytes = image_bytes
        self.strict_fields = strict_fields
        self._lock = threading.Lock()
        self._queue: deque[Behaviour] = deque()
        self._requests: list[RecordedRequest] = []
        self._files: dict[str, tuple[bytes, str]] = {}
        self._bucket: _TokenBucket | None = None
        self._stopping = threading.Event()
        self._sequence = 0
        self.generations = 0
        self.images_served = 0
        self.rate_limited_count = 0
        self._batch_faults: deque[Behaviour] = deque()
        self._lost_answers: deque[Behaviour] = deque()
        self._files_dir: Path | None = None
        self.batches = BatchStore(
            self._batch_files_dir, self._batch_body_problems, self._batch_result, _refused_body
        )
        self._httpd = _Server((host, port), _Handler, self)
        self.port = self._httpd.server_address[1]
        self._thread: threading.Thread | None = None

    # lifecycle

    def start(self) -> FakeImagesAPI:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes requests sleeping in latency or timeout behaviours
        if self._thread is not None:
            stop_serving(self._httpd, self._thread, "the fake images API")
            self._thread = None
        self._httpd.close_connections()
        self._httpd.server_close()
        if self._files_dir is not None:
            shutil.rmtree(self._files_dir, ignore_errors=True)
            self._files_dir = None

    def __enter__(self) -> FakeImagesAPI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.origin}/v1"

    # scripting

    def enqueue(self, *behaviours: Behaviour) -> None:
        """Behaviours for the next images requests, in order; after them `default` applies."""
        with self._lock:
            self._queue.extend(behaviours)

    def rate_limit(self, per_second: float | None, burst: int = 1) -> None:
        """Answer 429 (with retry-after-ms and retry-after) above `per_second` requests (None: off)."""
        with self._lock:
            self._bucket = _TokenBucket(per_second, burst) if per_second else None

    def fail_batch_calls(self, *behaviours: Behaviour) -> None:
        """Errors (error, drop, html...) for the next Files and Batch API calls, in order."""
        with self._lock:
            self._batch_faults.extend(behaviours)

    def lose_batch_answers(self, *behaviours: Behaviour) -> None:
        """Like fail_batch_calls, but each call is carried out first and only its answer is lost."""
        with self._lock:
            self._lost_answers.extend(behaviours)

    def reset(self) -> None:
        self.batches.reset()
        with self._lock:
            self._batch_faults.clear()
            self._lost_answers.clear()
            self._queue.clear()
            self._requests.clear()
            self._files.clear()
            self.generations = self.images_served = self.rate_limited_count = 0

    # what happened

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def image_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path in (GENERATIONS_PATH, EDITS_PATH)]

    @property
    def downloads(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.startswith("/files/")]

    @property
    def violations(self) -> list[str]:
        return [f"{r.path}: {v}" for r in self.requests for v in r.violations]

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": len(self._requests),
                "generations": self.generations,
                "images": self.images_served,
                "rate_limited": self.rate_limited_count,
                "violations": [v for r in self._requests for v in r.violations],
                **self.batches.stats(),
            }

    # used by the handler

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _next_behaviour(self, request: RecordedRequest) -> Behaviour:
        with self._lock:
            if self._bucket is not None:
                wait = self._bucket.take()
                if wait > 0:
                    self.rate_limited_count += 1
                    return rate_limited(
                        retry_after=str(math.ceil(wait)), retry_after_ms=str(round(wait * 1000))
                    )
            if self._queue:
                return self._queue.popleft()
        if self.behave is not None:
            chosen = self.behave(request)
            if chosen is not None:
                return chosen
        return self.default

    def _count_success(self, images: int) -> int:
        with self._lock:
            self.generations += 1
            self.images_served += images
            self._sequence += 1
            return self._sequence

    def _store_file(self, data: bytes, fmt: str) -> str:
        with self._lock:
            name = f"{len(self._files) + 1}.{fmt}"
            self._files[name] = (data, MEDIA_TYPES[fmt])
            return name

    def _file(self, name: str) -> tuple[bytes, str] | None:
        with self._lock:
            return self._files.get(name)

    def _next_batch_fault(self) -> Behaviour | None:
        with self._lock:
            return self._batch_faults.popleft() if self._batch_faults else None

    def _next_lost_answer(self) -> Behaviour | None:
        with self._lock:
            return self._lost_answers.popleft() if self._lost_answers else None

    def _batch_files_dir(self) -> Path:
        with self._lock:
            if self._files_dir is None:
                self._files_dir = Path(tempfile.mkdtemp(prefix="fake-images-api-"))
            return self._files_dir

    def _batch_body_problems(self, endpoint: str, body: Any) -> list[str]:
        """What the API would refuse in the body of a batch line sent to `endpoint`."""
        if endpoint == GENERATIONS_PATH:
            return schema_violations("CreateImageRequest", body, self.strict_fields)
        found = schema_violations("EditImageBodyJsonParam", body, self.strict_fields)
        references = [*body.get("images", [])] if isinstance(body.get("images"), list) else []
        named = [(f"images/{index}", ref) for index, ref in enumerate(references)]
        if "mask" in body:
            named.append(("mask", body["mask"]))
        return found + [
            problem for where, ref in named for problem in self._image_ref_problems(where, ref)
        ]

    def _image_ref_problems(self, where: str, ref: Any) -> list[str]:
        if not isinstance(ref, dict):
            return []  # the schema check reports it
        if isinstance(ref.get("file_id"), str) and not self.batches.has_file(ref["file_id"]):
            return [f"{where}/file_id: no file {ref['file_id']!r}"]
        url = ref.get("image_url")
        if not isinstance(url, str):
            return []
        header, _, encoded = url.partition(",")
        match = re.fullmatch(r"data:(image/[a-z]+);base64", header)
        if not match:
            return [f"{where}/image_url: the fake takes base64 data: URLs only"]
        try:
            data = base64.b64decode(encoded, validate=True)
        except ValueError:
            return [f"{where}/image_url: not valid base64"]
        actual = _sniff_format(data)
        if actual is None or MEDIA_TYPES[actual] != match[1]:
            return [f"{where}/image_url: the data is {actual or 'not an image'}, not {match[1]}"]
        return []

    def _batch_result(self, body: dict[str, Any], seed: int) -> dict[str, Any]:
        """The images response a batch line gets: what the direct endpoint would answer."""
        n = int(body.get("n") or 1)
        fmt = str(body.get("output_format") or "png")
        items = [
            {
                "b64_json": base64.b64encode(
                    _batch_image(fmt, seed * 16 + index, self.image_bytes)
                ).decode()
            }
            for index in range(n)
        ]
        return _images_response(body, items, fmt)

    def _wait(self, seconds: float) -> bool:
        """Sleep; False if the server is stopping."""
        return not self._stopping.wait(seconds) if seconds > 0 else True


class _Server(ThreadingHTTPServer):
    # Non-daemon handler threads are joined by server_close, so a stopped server leaves nothing behind.
    daemon_threads = False
    allow_reuse_address = True
    # socketserver's default backlog of 5 drops simultaneous connects, costing a 200 ms retransmit.
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], handler: type, fake: FakeImagesAPI) -> None:
        self.fake = fake
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def server_close(self) -> None:
        # ThreadingMixIn.server_close joins the handler threads without a deadline: a handler that
        # never returns would hang the test's teardown instead of failing it.
        HTTPServer.server_close(self)
        deadline = time.monotonic() + HANDLER_SECONDS
        for handler in list(vars(self).get("_threads", ())):
            remaining = max(0.0, deadline - time.monotonic())
            join_thread(handler, "a request handler of the fake images API", remaining)

    def close_connections(self) -> None:
        # Idle keep-alive connections would keep their handler threads (and server_close) waiting.
        with self._connections_lock:
            for connection in list(self._connections):
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return  # the client went away (it timed out, or a test dropped it): expected here
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real clients pool connections
    # Without these, headers and body leave in separate segments and Nagle's algorithm adds ~40 ms.
    disable_nagle_algorithm = True
    wbufsize = 256 * 1024
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return None

    @property
    def fake(self) -> FakeImagesAPI:
        return self.server.fake

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        headers = {k.lower(): v for k, v in self.headers.items()}
        if path == "/_fake/stats":
            self._json(200, self.fake.stats())
            return
        if path.startswith(FILES_PATH) or path.startswith(BATCHES_PATH):
            self._batch_api("GET", path, headers, b"")
            return
        if path.startswith("/files/"):
            self.fake._record(RecordedRequest("GET", path, headers, None))
            found = self.fake._file(path.removeprefix("/files/"))
            if found is None:
                self._json(404, _error_body("not_found", "No such file", "invalid_request_error"))
            else:
                self._send(200, found[0], found[1])
            return
        self._json(404, _error_body("not_found", f"Unknown path {path}", "invalid_request_error"))

    def do_POST(self) -> None:
        path = self.path.split("?")[0]
        headers = {k.lower(): v for k, v in self.headers.items()}
        if path == FILES_PATH:
            self._batch_api("POST", path, headers, b"")  # streamed from rfile to disk
            return
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        if path.startswith(BATCHES_PATH):
            self._batch_api("POST", path, headers, raw)
            return
        if path == "/_fake/script":
            self._script(json.loads(raw))
            return
        if path not in (GENERATIONS_PATH, EDITS_PATH):
            self.fake._record(RecordedRequest("POST", path, headers, None, (), ("unknown path",)))
            self._json(
                404, _error_body("not_found", f"Unknown path {path}", "invalid_request_error")
            )
            return
        body, files, violations = _parse(path, headers, raw, self.fake.strict_fields)
        partial = RecordedRequest("POST", path, headers, body, files, tuple(violations))
        behaviour = self.fake._next_behaviour(partial)
        self.fake._record(replace(partial, behaviour=behaviour.kind))
        if not self.fake._wait(behaviour.latency):
            self.close_connection = True
            return
        if not self._authorised(headers):
            return
        if violations:
            self._json(
                400, _error_body(None, "; ".join(violations), "invalid_request_error", "body")
            )
            return
        self._act(behaviour, body or {})

    def _batch_api(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> None:
        """One Files or Batch API call: recorded, checked for the key, then served or faulted."""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        self.fake._record(RecordedRequest(method, path, headers, body))
        try:
            if method == "POST" and path == FILES_PATH:
                # Read before anything else may answer, so a keep-alive connection stays usable.
                length = int(headers.get("content-length") or 0)
                upload = self.fake.batches.receive_upload(
                    self.rfile, length, headers.get("content-type", "")
                )
            fault = self.fake._next_batch_fault()
            if fault is not None:
                self._act(fault, {})
                return
            if not self._authorised(headers):
                return
            if method == "POST" and path == FILES_PATH:
                self._json(200, upload)
            elif method == "GET" and (found := _FILE_CONTENT.match(path)):
                self._stream_file(found[1])
            else:
                answer = self._batch_answer(method, path, raw)
                if (lost := self.fake._next_lost_answer()) is not None:
                    self._act(lost, {})
                    return
                self._json(200, answer)
        except FakeAPIError as exc:
            self._json(
                exc.status, _error_body(exc.code, exc.message, "invalid_request_error", exc.param)
            )

    def _batch_answer(self, method: str, path: str, raw: bytes) -> dict[str, Any]:
        store = self.fake.batches
        if method == "POST" and path == BATCHES_PATH:
            return store.create(_create_batch_body(raw))
        if method == "GET" and path == BATCHES_PATH:
            query = parse_qs(urlsplit(self.path).query)
            after = query.get("after", [None])[0]
            limit = query.get("limit", ["20"])[0]
            if not limit.isdigit():
                raise FakeAPIError(400, "invalid_request", "limit must be an integer", "limit")
            return store.listing(after, int(limit))
        if method == "GET" and (found := _BATCH.match(path)):
            return store.retrieve(found[1])
        if method == "GET" and (found := _FILE.match(path)):
            return store.file(found[1]).describe()
        if method == "POST" and (found := _BATCH_CANCEL.match(path)):
            return store.cancel(found[1])
        raise FakeAPIError(404, "not_found", f"Unknown path {method} {path}")

    def _stream_file(self, file_id: str) -> None:
        stored = self.fake.batches.file(file_id)
        self.send_response(200)
        self.send_header("content-type", "application/octet-stream")
        self.send_header("content-length", str(stored.length))
        self.send_header("date", formatdate(usegmt=True))
        self.end_headers()
        for chunk in stored.chunks(256 * 1024):
            self.wfile.write(chunk)

    def _authorised(self, headers: dict[str, str]) -> bool:
        key = self.fake.api_key
        if key is None:
            return True
        given = headers.get("api-key") or headers.get("authorization", "").removeprefix("Bearer ")
        if given == key:
            return True
        # Real APIs echo (part of) the key they got; a client must not print it back.
        self._json(
            401,
            _error_body(
                "invalid_api_key",
                f"Incorrect API key provided: {given}. You can find your API key in your account.",
                "invalid_request_error",
            ),
        )
        return False

    def _act(self, behaviour: Behaviour, body: dict[str, Any]) -> None:
        kind = behaviour.kind
        if kind == "error":
            payload = _error_body(behaviour.code, behaviour.message or "", behaviour.error_type)
            self._json(behaviour.status, payload, behaviour.headers)
        elif kind == "timeout":
            self.fake._wait(behaviour.sleep)
            self.close_connection = True
        elif kind == "drop":
            self.close_connection = True
        elif kind == "malformed_json":
            self._send(
                behaviour.status, b'{"created": 1, "data": [{"b64_json": "iVBO', "application/json"
            )
        elif kind == "html":
            page = (
                f"<html>\r\n<head><title>{behaviour.status} Bad Gateway</title></head>\r\n"
                f"<body>\r\n<center><h1>{behaviour.status} Bad Gateway</h1></center>\r\n"
                "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
            )
            self._send(behaviour.status, page.encode(), "text/html")
        else:
            self._images(behaviour, body)

    def _images(self, behaviour: Behaviour, body: dict[str, Any]) -> None:
        n = int(body.get("n", 1))
        if behaviour.kind == "wrong_count" and behaviour.count is not None:
            n = behaviour.count
        fmt = str(body.get("output_format") or "png")
        sent_fmt = behaviour.image_format if behaviour.kind == "wrong_format" else fmt
        width, height = _size(body.get("size")) if self.fake.match_size else (64, 64)
        sequence = self.fake._count_success(n) if behaviour.kind in ("ok", "url") else 0
        items = []
        for index in range(n):
            data = _image(sent_fmt or "jpeg", width, height, sequence * 16 + index)
            data = _padded(data, sent_fmt or "jpeg", self.fake.image_bytes)
            if behaviour.kind == "url":
                name = self.fake._store_file(data, fmt)
                host = behaviour.url_host or self.fake.host
                items.append(
                    {"url": f"{behaviour.url_scheme}://{host}:{self.fake.port}/files/{name}"}
                )
                continue
            encoded = base64.b64encode(data).decode()
            if behaviour.kind == "truncated_b64":
                half = len(encoded) // 8 * 4
                encoded = (
                    encoded[:half] if behaviour.code == "valid_padding" else encoded[: half - 1]
                )
            item: dict[str, Any] = {"b64_json": encoded}
            if behaviour.revised_prompt is not None:
                item["revised_prompt"] = behaviour.revised_prompt
            items.append(item)
        self._json(200, _images_response(body, items, fmt))

    def _script(self, spec: dict[str, Any]) -> None:
        self.fake.enqueue(*(Behaviour(**item) for item in spec.get("queue", [])))
        if "default" in spec:
            self.fake.default = Behaviour(**spec["default"])
        if "rate_limit" in spec:
            self.fake.rate_limit(spec["rate_limit"], int(spec.get("burst", 1)))
        self.fake.batches.enqueue(*(BatchScenario(**item) for item in spec.get("batch_queue", [])))
        if "batch_default" in spec:
            self.fake.batches.default = BatchScenario(**spec["batch_default"])
        self.fake.fail_batch_calls(*(Behaviour(**item) for item in spec.get("batch_faults", [])))
        self._json(200, {"queued": len(spec.get("queue", []))})

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json", headers)

    def _send(
        self, status: int, data: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
        self.send_header("date", formatdate(usegmt=True))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


class _TokenBucket:
    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self.tokens = float(self.burst)
        self.last = time.monotonic()

    def take(self) -> float:
        """0 if a request may go now (and take a token), else seconds until the next token."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


# --- request parsing and schema checks --------------------------------------------------------------


@cache
def _openapi() -> dict[str, Any]:
    return json.loads(OPENAPI_PATH.read_text(encoding="utf-8"))


@cache
def validator(schema_name: str) -> jsonschema.protocols.Validator:
    """A validator for components/schemas/`schema_name` of the shared OpenAPI document."""
    document = _openapi()
    schema = {"$ref": f"#/components/schemas/{schema_name}", "components": document["components"]}
    cls = jsonschema.validators.validator_for(
        {"$schema": "https://json-schema.org/draft/2020-12/schema"}
    )
    return cls(schema)


def schema_properties(schema_name: str) -> dict[str, Any]:
    return _openapi()["components"]["schemas"][schema_name]["properties"]


def schema_violations(schema_name: str, instance: Any, strict_fields: bool = True) -> list[str]:
    found = [
        f"{'/'.join(str(p) for p in error.absolute_path) or '(body)'}: {error.message}"
        for error in validator(schema_name).iter_errors(instance)
    ]
    if strict_fields and isinstance(instance, dict):
        known = schema_properties(schema_name)
        found += [f"{key}: not a field of {schema_name}" for key in instance if key not in known]
    return found


def _parse(
    path: str, headers: dict[str, str], raw: bytes, strict_fields: bool
) -> tuple[dict[str, Any] | None, tuple[FilePart, ...], list[str]]:
    content_type = headers.get("content-type", "")
    if path == GENERATIONS_PATH:
        if not content_type.startswith("application/json"):
            return None, (), [f"content-type must be application/json, not {content_type!r}"]
        try:
            body = json.loads(raw)
        except ValueError as exc:
            return None, (), [f"body is not JSON: {exc}"]
        violations = schema_violations("CreateImageRequest", body, strict_fields)
        return (body if isinstance(body, dict) else None), (), violations
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not content_type.startswith("multipart/form-data") or not match:
        return None, (), [f"content-type must be multipart/form-data, not {content_type!r}"]
    try:
        fields, files = parse_multipart(raw, match[1].encode())
    except ValueError as exc:
        return None, (), [f"malformed multipart body: {exc}"]
    return fields, files, _edit_violations(fields, files, strict_fields)


def parse_multipart(raw: bytes, boundary: bytes) -> tuple[dict[str, str], tuple[FilePart, ...]]:
    """Text fields and file parts of a multipart/form-data body, byte for byte."""
    delimiter = b"\r\n--" + boundary
    sections = (b"\r\n" + raw).split(delimiter)
    if len(sections) < 2 or not sections[-1].startswith(b"--"):
        raise ValueError("missing closing boundary")
    fields: dict[str, str] = {}
    files: list[FilePart] = []
    for section in sections[1:-1]:
        if not section.startswith(b"\r\n"):
            raise ValueError("boundary not followed by CRLF")
        head, separator, data = section[2:].partition(b"\r\n\r\n")
        if not separator:
            raise ValueError("part without a blank line after its headers")
        part_headers = {}
        for line in head.decode("utf-8").split("\r\n"):
            name, _, value = line.partition(":")
            part_headers[name.strip().lower()] = value.strip()
        disposition = part_headers.get("content-disposition", "")
        name_match = re.search(r'\bname="([^"]*)"', disposition)
        if not disposition.startswith("form-data") or not name_match:
            raise ValueError(f"bad content-disposition {disposition!r}")
        file_match = re.search(r'\bfilename="([^"]*)"', disposition)
        if file_match:
            files.append(
                FilePart(name_match[1], file_match[1], part_headers.get("content-type"), data)
            )
        else:
            fields[name_match[1]] = data.decode("utf-8")
    return fields, tuple(files)


def _edit_violations(
    fields: dict[str, str], files: tuple[FilePart, ...], strict_fields: bool
) -> list[str]:
    found: list[str] = []
    properties = schema_properties("CreateImageEditRequest")
    instance: dict[str, Any] = {}
    for key, value in fields.items():
        if key in ("image", "image[]", "mask"):
            found.append(f"{key}: sent as a text field, not a file")
            continue
        instance[key] = _coerce(value, properties.get(key, {}))
    images = [part for part in files if part.field in ("image", "image[]")]
    masks = [part for part in files if part.field == "mask"]
    for part in files:
        if part.field not in ("image", "image[]", "mask"):
            found.append(f"{part.field}: unexpected file part")
        found += _file_violations(part)
    if images:
        as_array = len(images) > 1 or images[0].field == "image[]"
        instance["image"] = ["<binary>"] * len(images) if as_array else "<binary>"
    if len(masks) > 1:
        found.append("mask: sent more than once")
    if masks:
        instance["mask"] = "<binary>"
        if _sniff_format(masks[0].data) != "png":
            found.append("mask: must be a PNG file")
    return found + schema_violations("CreateImageEditRequest", instance, strict_fields)


def _file_violations(part: FilePart) -> list[str]:
    actual = _sniff_format(part.data)
    if actual is None:
        return [f"{part.field}: {part.filename!r} is not a PNG, JPEG or WEBP image"]
    if not part.filename:
        return [f"{part.field}: file part without a filename"]
    if part.content_type != MEDIA_TYPES[actual]:
        return [f"{part.field}: {part.filename!r} is {actual} but sent as {part.content_type!r}"]
    return []


def _sniff_format(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def _coerce(value: str, schema: dict[str, Any]) -> Any:
    """A form field as the type its schema wants, so the JSON Schema applies to multipart too."""
    types = {schema.get("type")} | {option.get("type") for option in schema.get("anyOf", [])}
    if "integer" in types and re.fullmatch(r"-?\d+", value):
        return int(value)
    if "number" in types and re.fullmatch(r"-?\d+(\.\d+)?", value):
        return float(value)
    if "boolean" in types and value in ("true", "false"):
        return value == "true"
    return value


# --- responses ------------------------------------------------------------------------------------


def _error_body(
    code: str | None, message: str, error_type: str | None, param: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def _images_response(body: dict[str, Any], items: list[Any], fmt: str) -> dict[str, Any]:
    prompt_tokens = len(str(body.get("prompt", ""))) // 4 + 1
    n = len(items)
    response: dict[str, Any] = {
        "created": int(time.time()),
        "data": items,
        "output_format": fmt,
        "usage": {
            "input_tokens": prompt_tokens,
            "input_tokens_details": {"text_tokens": prompt_tokens, "image_tokens": 0},
            "output_tokens": 1056 * n,
            "total_tokens": prompt_tokens + 1056 * n,
        },
    }
    if body.get("size") in _RESPONSE_SIZES:
        response["size"] = body["size"]
    if body.get("quality") in ("low", "medium", "high"):
        response["quality"] = body["quality"]
    return response


def _refused_body() -> dict[str, Any]:
    return _error_body(
        "moderation_blocked",
        "Your request was rejected as a result of our safety system.",
        "image_generation_user_error",
    )


def _create_batch_body(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except ValueError:
        raise FakeAPIError(400, "invalid_request", "the body is not JSON") from None
    problems = schema_violations("CreateBatchRequest", body)
    if problems or not isinstance(body, dict):
        raise FakeAPIError(400, "invalid_request", "; ".join(problems) or "not a JSON object")
    return body


@cache
def _batch_image(fmt: str, seed: int, size: int | None) -> bytes:
    # Colours repeat every 256 seeds, so a 50,000-line batch makes at most 256 images per format.
    return _padded(_image(fmt, 64, 64, seed % 256), fmt, size)


def _size(value: Any) -> tuple[int, int]:
    match = _SIZE.match(str(value or ""))
    return (int(match[1]), int(match[2])) if match else (1024, 1024)


def _image(fmt: str, width: int, height: int, seed: int) -> bytes:
    """A real image, distinct per seed, as the real API never returns the same picture twice."""
    colour = ((seed * 67) % 256, (seed * 131) % 256, (seed * 29 + 80) % 256)
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, fmt.upper())
    return buffer.getvalue()


def _padded(data: bytes, fmt: str, target: int | None) -> bytes:
    """The image grown to about `target` bytes with ignorable metadata (PNG and JPEG only)."""
    if target is None or len(data) >= target:
        return data
    missing = target - len(data)
    filler = _filler(missing)
    if fmt == "png":
        chunk = b"paDd" + filler
        crc = zlib.crc32(chunk).to_bytes(4, "big")
        segment = len(filler).to_bytes(4, "big") + chunk + crc
        return data[:-12] + segment + data[-12:]  # before IEND
    if fmt == "jpeg":
        # COM segments hold at most 65533 bytes each.
        parts = [filler[i : i + 65533] for i in range(0, len(filler), 65533)]
        comments = b"".join(b"\xff\xfe" + (len(p) + 2).to_bytes(2, "big") + p for p in parts)
        return data[:2] + comments + data[2:]
    return data


@cache
def _filler(size: int) -> bytes:
    return bytes(range(256)) * (size // 256) + bytes(size % 256)


# --- entry points --------------------------------------------------------------------------------


@pytest.fixture(name="fake_images_api")
def fake_images_api_fixture() -> Iterator[FakeImagesAPI]:
    """A started fake images API on 127.0.0.1, stopped (connections closed) after the test."""
    with FakeImagesAPI() as server:
        yield server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.fake_images_api", description=__doc__
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per request")
    parser.add_argument("--rate-limit", type=float, help="requests per second before 429s")
    parser.add_argument("--burst", type=int, default=1)
    parser.add_argument("--image-bytes", type=int, help="pad images to about this size")
    parser.add_argument("--match-size", action="store_true", help="images of the requested size")
    parser.add_argument("--api-key", help="require this key")
    parser.add_argument(
        "--batch-polls-per-step",
        type=int,
        default=1,
        help="batch retrievals per status step (0: batches finish when created)",
    )
    args = parser.parse_args(argv)
    server = FakeImagesAPI(
        host=args.host,
        port=args.port,
        default=ok(latency=args.latency),
        api_key=args.api_key,
        match_size=args.match_size,
        image_bytes=args.image_bytes,
    )
    server.rate_limit(args.rate_limit, args.burst)
    server.batches.default = BatchScenario(polls_per_step=args.batch_polls_per_step)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with server:
        print(f"FAKE_IMAGES_API={server.base_url}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
        print(json.dumps(server.stats()), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
