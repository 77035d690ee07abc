"""The `openai` provider: one attempt at an OpenAI-compatible images endpoint, failures classified.

Retrying, pacing and writing belong to apply; this module only has to say precisely what went wrong and
whether trying again can help. The API key is read once, sent only to the configured origin, and
scrubbed from every message that could reach a terminal, log or lockfile.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import ipaddress
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from promptform import __version__
from promptform.core.config import ProviderSettings
from promptform.core.errors import ConfigError
from promptform.core.images import (
    MEDIA_TYPES,
    ImageError,
    UnexpectedFormatError,
    check_format,
    sniff,
)
from promptform.providers.base import Generation, ImageRequest, InputFile, ProviderError
from promptform.providers.keys import KEY_CHARS

GENERATIONS = "images/generations"
EDITS = "images/edits"
MAX_IMAGE_BYTES = 50 * 1024 * 1024
MAX_REDIRECTS = 5
SNIPPET_CHARS = 200

# A 429 with one of these says the account is out of money or quota: waiting will not help.
QUOTA_CODES = frozenset({"insufficient_quota", "billing_hard_limit_reached", "quota_exceeded"})
RETRYABLE_STATUSES = frozenset({408, 409, 429})
_ERROR_BODY_BYTES = 64 * 1024
_REDACTED = "[redacted]"
_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]+>")
_SUMMARY_FIELDS = ("created", "output_format", "size", "quality", "background")

logger = logging.getLogger(__name__)


class OpenAIProvider:
    """Talks to `{base_url}/images/generations` and `/images/edits` through an injected client.

    The client belongs to the caller (so one pool serves every target); `aclose` leaves it open.
    """

    kind = "openai"

    def __init__(
        self,
        name: str,
        settings: ProviderSettings,
        client: httpx.AsyncClient,
        environ: Mapping[str, str],
        *,
        max_image_bytes: int = MAX_IMAGE_BYTES,
    ) -> None:
        self.name = name
        self._settings = settings
        self._client = client
        self._base = checked_base_url(name, settings.base_url)
        self._key = api_key(settings.api_key_env, environ)
        self._failures = Failures(name, settings, self._base, self._key)
        self._max_image_bytes = max_image_bytes
        self._timeout = request_timeout(settings)
        self._decoder = PayloadDecoder(
            client, self._failures, self._base, self._headers(), settings, max_image_bytes
        )

    def __repr__(self) -> str:
        return f"OpenAIProvider(name={self.name!r}, base_url={str(self._base)!r})"

    async def aclose(self) -> None:
        return None

    async def generate(self, request: ImageRequest) -> Generation:
        """One attempt. Every failure is a ProviderError whose `retryable` says if another may help."""
        try:
            return await self._attempt(request)
        except ProviderError:
            raise
        except TimeoutError:
            raise self._error(
                f"no response within {self._settings.timeout_s:g}s", retryable=True
            ) from None
        except httpx.HTTPError as exc:
            raise self._failures.transport_error(exc) from exc

    async def _attempt(self, request: ImageRequest) -> Generation:
        endpoint = EDITS if request.inputs else GENERATIONS
        url = endpoint_url(self._base, endpoint)
        n = _int(request.body.get("n"), 1)
        output_format = str(request.body.get("output_format") or "png")
        http_request = await self._build(request, url)
        started = time.monotonic()
        async with asyncio.timeout(self._settings.timeout_s):
            response = await self._client.send(http_request, stream=True, follow_redirects=False)
            try:
                ok = response.status_code == 200
                cap = n * self._max_image_bytes * 4 // 3 + 1024 * 1024 if ok else _ERROR_BODY_BYTES
                raw = await read_capped(response, cap, truncate=not ok)
            finally:
                await response.aclose()
        logger.debug(
            "%s POST %s -> %s in %.2fs",
            self.name,
            endpoint,
            response.status_code,
            time.monotonic() - started,
        )
        if raw is None:
            raise self._error(f"the response is larger than {_amount(cap)}", retryable=False)
        if not ok:
            raise self._failures.status_error(response, raw)
        payload = self._payload(response, raw)
        return await self._decoder.generation(payload, output_format, n)

    def _headers(self) -> dict[str, str]:
        return request_headers(self._settings, self._key)

    async def _build(self, request: ImageRequest, url: httpx.URL) -> httpx.Request:
        headers = self._headers()
        if not request.inputs:
            return self._client.build_request(
                "POST", url, headers=headers, json=request.body, timeout=self._timeout
            )
        fields = {
            key: form_value(value) for key, value in request.body.items() if value is not None
        }
        files = [await self._file_part(item) for item in request.inputs]
        return self._client.build_request(
            "POST", url, headers=headers, data=fields, files=files, timeout=self._timeout
        )

    async def _file_part(self, item: InputFile) -> tuple[str, tuple[str, bytes, str]]:
        if item.role not in ("image", "mask"):
            raise self._error(f"unknown input role {item.role!r} for {item.path}", retryable=False)
        try:
            content = await asyncio.to_thread(item.path.read_bytes)
        except OSError as exc:
            raise self._error(
                f"cannot read {item.role} {item.path}: {exc.strerror or exc}", retryable=False
            ) from None
        if _is_sha256(item.sha256) and hashlib.sha256(content).hexdigest() != item.sha256:
            raise self._error(
                f"{item.role} {item.path} changed since it was planned; run plan again",
                retryable=False,
            )
        try:
            info = sniff(content)
        except ImageError as exc:
            raise self._error(f"{item.role} {item.path}: {exc}", retryable=False) from None
        field = "image[]" if item.role == "image" else "mask"
        return field, (item.path.name, content, MEDIA_TYPES[info.format])

    def _payload(self, response: httpx.Response, raw: bytes) -> dict[str, Any]:
        try:
            payload = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise self._error(
                f"the response is not valid JSON: {self._failures.describe_body(raw, response)[1]}",
                retryable=True,
            ) from None
        return self._decoder.checked(
            payload, lambda: self._failures.describe_body(raw, response)[1]
        )

    def _error(self, message: str, **kwargs: Any) -> ProviderError:
        return self._failures.error(message, **kwargs)


class Failures:
    """What went wrong talking to one provider, as one-line ProviderErrors with the key scrubbed."""

    def __init__(
        self, name: str, settings: ProviderSettings, base: httpx.URL, key: str | None
    ) -> None:
        self.name = name
        self._settings = settings
        self._base = base
        self._key = key

    def error(self, message: str, **kwargs: Any) -> ProviderError:
        return ProviderError(self.redact(f"{self.name}: {message}"), **kwargs)

    def redact(self, text: str) -> str:
        return text.replace(self._key, _REDACTED) if self._key else text

    def status_error(self, response: httpx.Response, raw: bytes) -> ProviderError:
        status = response.status_code
        message, code = error_fields(_json_or_none(raw))
        if 300 <= status < 400:
            summary = (
                f"HTTP {status}: unexpected redirect to {response.headers.get('location', '?')}"
            )
        elif message:
            summary = f"HTTP {status} {code}: {message}" if code else f"HTTP {status}: {message}"
        else:
            what, text = self.describe_body(raw, response)
            summary = f"HTTP {status} {what}" + (f": {text}" if text else "")
        if status in (401, 403) and self._settings.api_key_env:
            summary += f" (check {self._settings.api_key_env})"
        quota = code in QUOTA_CODES
        retryable = (status in RETRYABLE_STATUSES or status >= 500) and not quota
        return self.error(
            summary,
            retryable=retryable,
            status=status,
            code=code,
            retry_after=retry_after(response.headers) if retryable else None,
            rate_limited=status == 429 and not quota,
        )

    def transport_error(self, exc: httpx.HTTPError) -> ProviderError:
        host = self._base.host
        if isinstance(exc, httpx.TimeoutException):
            phase = type(exc).__name__.removesuffix("Timeout").lower() or "request"
            message = f"no response within {self._settings.timeout_s:g}s ({phase} timeout)"
            return self.error(message, retryable=True)
        if isinstance(exc, httpx.RemoteProtocolError):
            return self.error(
                f"the connection to {host} closed without a complete response", retryable=True
            )
        if isinstance(exc, httpx.ConnectError):
            return self.error(f"cannot connect to {host}: {_reason(exc)}", retryable=True)
        if isinstance(exc, httpx.TransportError) and not isinstance(
            exc, httpx.LocalProtocolError | httpx.UnsupportedProtocol
        ):
            return self.error(f"network error talking to {host}: {_reason(exc)}", retryable=True)
        return self.error(f"request failed: {_reason(exc)}", retryable=False)

    def describe_body(self, raw: bytes, response: httpx.Response) -> tuple[str, str]:
        """(`with an HTML page`, TITLE), (`with a text/plain body`, TEXT), (`with an empty body`, ""):
        a short, single-line, key-free account of a body that is not the JSON expected."""
        if not raw.strip():
            return "with an empty body", ""
        kind = response.headers.get("content-type", "").split(";")[0].strip()
        title = _TITLE.search(raw[:_ERROR_BODY_BYTES])
        if title or "html" in kind or raw.lstrip()[:1] == b"<":
            source = title[1] if title else raw
            text = _TAG.sub(" ", source.decode("utf-8", errors="replace"))
            what = "with an HTML page"
        else:
            text = raw.decode("utf-8", errors="replace")
            what = f"with a {kind} body" if kind else "with a body"
        return what, self.snippet(text)

    def snippet(self, text: str) -> str:
        """`text` on one line, key-free, cut to SNIPPET_CHARS."""
        # Redact before cutting, so a key can never survive half-cut at the boundary.
        text = " ".join(self.redact(text).split())
        if len(text) > SNIPPET_CHARS:
            text = text[: SNIPPET_CHARS - 3].rstrip() + "..."
        return text


class PayloadDecoder:
    """The images of an images response body (a direct response's, or a batch output line's):
    b64_json decoded, urls downloaded, count and format checked, the same way for both."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        failures: Failures,
        base: httpx.URL,
        headers: dict[str, str],
        settings: ProviderSettings,
        max_image_bytes: int = MAX_IMAGE_BYTES,
    ) -> None:
        self._client = client
        self._failures = failures
        self._base = base
        self._headers = headers
        self._timeout_s = settings.timeout_s
        self._timeout = request_timeout(settings)
        self._max_image_bytes = max_image_bytes

    def checked(self, payload: Any, shown: Callable[[], str]) -> dict[str, Any]:
        """`payload` if it is an images body with a `data` list; `shown()` describes it if not."""
        if isinstance(payload, dict) and "error" in payload and not payload.get("data"):
            # Some gateways answer 200 with an error object when the upstream call failed.
            message, code = error_fields(payload)
            permanent = code in QUOTA_CODES or code == "moderation_blocked"
            raise self._error(
                f"HTTP 200 {_with_code(code, message or 'error without a message')}",
                retryable=not permanent,
                status=200,
                code=code,
            )
        if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
            raise self._error(f"the response has no `data` list: {shown()}", retryable=True)
        return payload

    async def generation(self, payload: dict[str, Any], output_format: str, n: int) -> Generation:
        """The images of a `checked` payload, with what the API said about them."""
        images = await self.images(payload, output_format, n)
        return Generation(
            images=images,
            revised_prompt=_revised_prompt(payload["data"]),
            usage=_writable_json(payload["usage"])
            if isinstance(payload.get("usage"), dict)
            else None,
            extra={key: payload[key] for key in _SUMMARY_FIELDS if key in payload},
        )

    async def images(self, payload: dict[str, Any], output_format: str, n: int) -> list[bytes]:
        items: list[Any] = payload["data"]
        # The answer was billed: every image in it that decodes is handed back with any error
        # below (ProviderError.paid), so a bad item or a wrong count loses none of it. Past the
        # `n` asked for, only images inline in the answer are kept: an answer of a thousand
        # links is not a thousand downloads.
        images: list[bytes] = []
        failure: ProviderError | None = None
        for index, item in enumerate(items, 1):
            if index > n and not (isinstance(item, dict) and isinstance(item.get("b64_json"), str)):
                continue
            try:
                images.append(await self._image_bytes(item, index))
            except ProviderError as exc:
                failure = failure or exc
        if len(items) != n:  # first: the same request would answer the same way, never retried
            raise self._error(
                f"asked for {n} image{'s' if n != 1 else ''} but got {len(items)}"
                + ("; the provider may not support n > 1" if n > 1 and len(items) >= 1 else ""),
                retryable=False,
                paid=tuple(images),
            )
        if failure is not None:
            failure.paid = tuple(images)
            raise failure
        for index, data in enumerate(images, start=1):
            try:
                check_format(data, output_format)
            except UnexpectedFormatError as exc:
                raise self._error(
                    f"image {index} is {exc.actual} but output_format is {exc.expected}",
                    retryable=False,
                    paid=tuple(images),
                ) from None
            except ImageError as exc:
                raise self._error(
                    f"image {index} is damaged: {exc}", retryable=True, paid=tuple(images)
                ) from None
        return images

    async def _image_bytes(self, item: Any, index: int) -> bytes:
        """One item's bytes; a ProviderError for any failure, a download's too."""
        try:
            return await self._item_bytes(item, index)
        except TimeoutError:
            raise self._error(
                f"downloading image {index} took longer than {self._timeout_s:g}s", retryable=True
            ) from None
        except httpx.HTTPError as exc:
            error = self._failures.transport_error(exc)
            error.message = f"{error.message} (downloading image {index})"
            raise error from exc

    async def _item_bytes(self, item: Any, index: int) -> bytes:
        if isinstance(item, dict) and isinstance(item.get("b64_json"), str):
            data = decode_base64(item["b64_json"])
            if data is None:
                # A corrupted transfer, most likely: a fresh attempt usually comes back whole.
                raise self._error(
                    f"image {index} is not valid base64 (truncated or corrupted)", retryable=True
                )
            return data
        if isinstance(item, dict) and isinstance(item.get("url"), str):
            return await self._download(item["url"], index)
        raise self._error(f"image {index} has neither b64_json nor url", retryable=True)

    async def _download(self, url: str, index: int) -> bytes:
        try:
            target = httpx.URL(url)
        except httpx.InvalidURL:
            raise self._error(f"image {index} has an invalid url", retryable=False) from None
        async with asyncio.timeout(self._timeout_s):
            for _ in range(MAX_REDIRECTS + 1):
                if not _allowed_scheme(target):
                    raise self._error(
                        f"image {index} url {_display(target)} is not https; refusing to download",
                        retryable=False,
                    )
                # The key goes to the configured origin only: image URLs often point at a CDN.
                headers = self._headers if _same_origin(target, self._base) else {}
                request = self._client.build_request(
                    "GET", target, headers=headers, timeout=self._timeout
                )
                response = await self._client.send(request, stream=True, follow_redirects=False)
                try:
                    if response.is_redirect and "location" in response.headers:
                        target = target.join(response.headers["location"])
                        continue
                    if response.status_code != 200:
                        raise self._error(
                            f"downloading image {index} failed with HTTP {response.status_code}",
                            retryable=True,
                            status=response.status_code,
                        )
                    data = await read_capped(response, self._max_image_bytes, truncate=False)
                finally:
                    await response.aclose()
                if data is None:
                    limit = _amount(self._max_image_bytes)
                    raise self._error(
                        f"image {index} is larger than the {limit} limit", retryable=False
                    )
                return data
        raise self._error(f"image {index} url redirects too many times", retryable=False)

    def _error(self, message: str, **kwargs: Any) -> ProviderError:
        return self._failures.error(message, **kwargs)


def endpoint_url(base: httpx.URL, endpoint: str) -> httpx.URL:
    # copy_with keeps a query string such as Azure's `?api-version=...` on every endpoint.
    return base.copy_with(path=base.path.rstrip("/") + "/" + endpoint)


def request_headers(settings: ProviderSettings, key: str | None) -> dict[str, str]:
    """Accept, user agent and the key in the header the provider reads it from."""
    headers = {"accept": "application/json", "user-agent": f"promptform/{__version__}"}
    if key is not None:
        if settings.auth_header == "api-key":
            headers["api-key"] = key
        else:
            headers["authorization"] = f"Bearer {key}"
    return headers


def request_timeout(settings: ProviderSettings) -> httpx.Timeout:
    return httpx.Timeout(settings.timeout_s, connect=min(settings.timeout_s, 30.0))


def checked_base_url(name: str, base_url: str | None) -> httpx.URL:
    """The base URL, if it is safe to send a key to: https, or http to a loopback host only."""
    where = f"[providers.{name}] base_url"
    if not base_url:
        raise ConfigError(f"{where} is required for kind 'openai'")
    try:
        url = httpx.URL(base_url)
    except httpx.InvalidURL:
        raise ConfigError(f"{where} {base_url!r} is not a valid URL") from None
    if url.scheme not in ("https", "http") or not url.host:
        raise ConfigError(f"{where} must be an https:// URL, not {base_url!r}")
    if url.userinfo:
        raise ConfigError(f"{where} must not contain credentials; put the key in the env var")
    if not _allowed_scheme(url):
        raise ConfigError(
            f"{where} {base_url} uses plain http, which would send the API key unencrypted; "
            "use https:// (http:// is allowed only for 127.0.0.1, ::1 and localhost)"
        )
    return url


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def retry_after(headers: httpx.Headers, now: float | None = None) -> float | None:
    """Seconds to wait from `retry-after-ms`, else `retry-after` (seconds or an HTTP date)."""
    millis = _float(headers.get("retry-after-ms"))
    if millis is not None and millis >= 0:
        return millis / 1000
    value = headers.get("retry-after")
    if value is None:
        return None
    seconds = _float(value)
    if seconds is not None:
        return seconds if seconds >= 0 else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def decode_base64(text: str) -> bytes | None:
    """Strict base64 (a data: URL prefix and line breaks tolerated); None if it is not valid."""
    if text.startswith("data:"):
        text = text.partition(",")[2]
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        pass
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except binascii.Error:
        return None


def form_value(value: Any) -> str:
    """A JSON body value as a multipart form field: what the API parses back to the same value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


async def read_capped(response: httpx.Response, cap: int, *, truncate: bool) -> bytes | None:
    """The body, streamed; past `cap` bytes either the first `cap` (truncate) or None."""
    declared = _int(response.headers.get("content-length"), -1)
    if declared > cap and not truncate:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size > cap:
            return b"".join(chunks)[:cap] if truncate else None
    return b"".join(chunks)


def api_key(env: str | None, environ: Mapping[str, str]) -> str | None:
    if env is None:
        return None  # a gateway without authentication, such as a local proxy
    key = environ.get(env, "").strip()
    if not key:
        raise ProviderError(
            f"{env} is not set; export it or use --provider offline",
            retryable=False,
            code="missing_api_key",
        )
    if not KEY_CHARS.match(key):
        # Never echo the value: it may be a real key with a stray character.
        raise ProviderError(
            f"{env} contains spaces or characters not allowed in an HTTP header; check its value",
            retryable=False,
            code="invalid_api_key",
        )
    return key


def error_fields(payload: Any) -> tuple[str, str | None]:
    """(message, code) from the usual error shapes: OpenAI's, and the plainer ones gateways use."""
    if not isinstance(payload, dict):
        return "", None
    error = payload.get("error", payload)
    if isinstance(error, str):
        return error, None
    if not isinstance(error, dict):
        return "", None
    message = error.get("message") or error.get("detail") or ""
    code = error.get("code") or error.get("type")
    if error.get("type") in QUOTA_CODES:
        code = error["type"]
    return str(message), str(code) if code is not None else None


def _with_code(code: str | None, message: str) -> str:
    return f"{code}: {message}" if code else message


def _json_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None


def _revised_prompt(items: list[Any]) -> str | None:
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("revised_prompt"), str):
            return _writable_text(item["revised_prompt"])
    return None


# What the API says about an image goes into the lock after the image is paid for: it must be
# something the lock can write, or recording the image fails. JSON allows lone surrogates
# (`"\ud800"`), which UTF-8 cannot hold, and any depth, which JSON encoders refuse past a limit.
_USAGE_DEPTH = 16


def _writable_text(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "".join("\ufffd" if "\ud800" <= char <= "\udfff" else char for char in text)
    return text


def _writable_json(value: Any, depth: int = 0) -> Any:
    """`value` with its strings made writable and anything nested deeper than _USAGE_DEPTH
    levels replaced by None."""
    if isinstance(value, str):
        return _writable_text(value)
    if isinstance(value, dict | list) and depth >= _USAGE_DEPTH:
        return None
    if isinstance(value, dict):
        return {
            _writable_text(str(key)): _writable_json(item, depth + 1) for key, item in value.items()
        }
    if isinstance(value, list):
        return [_writable_json(item, depth + 1) for item in value]
    return value


def _allowed_scheme(url: httpx.URL) -> bool:
    return url.scheme == "https" or (url.scheme == "http" and is_loopback(url.host))


def _same_origin(a: httpx.URL, b: httpx.URL) -> bool:
    return (a.scheme, a.host, a.port) == (b.scheme, b.host, b.port)


def _display(url: httpx.URL) -> str:
    """A URL without its query string, which for signed download links is a credential."""
    return str(url.copy_with(query=None, fragment=None))


def _amount(size: int) -> str:
    return f"{size / (1024 * 1024):g} MB" if size >= 1024 * 1024 else f"{size} bytes"


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return text or type(exc).__name__


def _is_sha256(value: str) -> bool:
    return len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def _float(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if number == number and number not in (float("inf"), float("-inf")) else None


def _int(value: Any, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except (TypeError, ValueError):
        return default
