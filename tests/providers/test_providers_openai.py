"""The openai provider: requests, authentication, key hygiene and failure classification.

Unit tests answer through httpx.MockTransport; end-to-end tests talk to the loopback fake server.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from PIL import Image

from promptform.core.config import ProviderSettings
from promptform.core.errors import ConfigError
from promptform.core.images import sniff
from promptform.providers.base import Generation, ImageRequest, InputFile, ProviderError
from promptform.providers.factory import make_provider
from promptform.providers.offline import OfflineProvider
from promptform.providers.openai import OpenAIProvider, form_value, retry_after
from tests.support.fake_images_api import (
    FakeImagesAPI,
    dropped,
    fake_images_api_fixture,  # noqa: F401  (provides the fake_images_api fixture)
    html_error,
    malformed_json,
    moderation_blocked,
    ok,
    quota_exhausted,
    rate_limited,
    server_error,
    timeout,
    truncated_base64,
    url_response,
    wrong_format,
)

T = TypeVar("T")
KEY = "sk-test-0123456789abcdef"
ENV = {"WISGATE_API_KEY": KEY}
Handler = Callable[[httpx.Request], httpx.Response]


def png(size: tuple[int, int] = (8, 8), colour: tuple[int, int, int] = (10, 20, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


PNG = png()
JPEG_BUFFER = io.BytesIO()
Image.new("RGB", (8, 8)).save(JPEG_BUFFER, "JPEG")
JPEG = JPEG_BUFFER.getvalue()


def settings(base_url: str = "https://api.example.test/v1", **changes: Any) -> ProviderSettings:
    values: dict[str, Any] = {
        "kind": "openai",
        "base_url": base_url,
        "api_key_env": "WISGATE_API_KEY",
    }
    return ProviderSettings(**{**values, **changes})


def request(**body: Any) -> ImageRequest:
    return ImageRequest(
        address="hero",
        endpoint="images/generations",
        body={"model": "gpt-image-2", "prompt": "a lighthouse", "n": 1, **body},
    )


def images_json(*images: bytes, **extra: Any) -> dict[str, Any]:
    data = [{"b64_json": base64.b64encode(image).decode()} for image in images]
    return {"created": 1, "data": data, **extra}


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


async def call(
    handler: Handler,
    image_request: ImageRequest | None = None,
    environ: dict[str, str] = ENV,
    **setting_changes: Any,
) -> Generation:
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        provider = OpenAIProvider("wisgate", settings(**setting_changes), client, environ)
        return await provider.generate(image_request or request())


def failure(
    handler: Handler, image_request: ImageRequest | None = None, **changes: Any
) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        run(call(handler, image_request, **changes))
    return caught.value


def answer(status: int, body: Any = None, headers: dict[str, str] | None = None) -> Handler:
    def handler(_: httpx.Request) -> httpx.Response:
        if isinstance(body, bytes | str):
            return httpx.Response(status, content=body, headers=headers)
        return httpx.Response(status, json=body, headers=headers)

    return handler


def error_body(
    code: str | None, message: str, kind: str = "invalid_request_error"
) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


# --- requests and authentication ----------------------------------------------------------------------


def test_generation_posts_the_body_as_json_with_a_bearer_key() -> None:
    seen: list[httpx.Request] = []

    def handler(sent: httpx.Request) -> httpx.Response:
        seen.append(sent)
        return httpx.Response(200, json=images_json(PNG, usage={"total_tokens": 5}))

    generation = run(call(handler, request(quality="high")))
    assert generation.images == [PNG]
    assert generation.usage == {"total_tokens": 5}
    (sent,) = seen
    assert sent.method == "POST"
    assert str(sent.url) == "https://api.example.test/v1/images/generations"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert "api-key" not in sent.headers
    assert json.loads(sent.content) == {
        "model": "gpt-image-2",
        "prompt": "a lighthouse",
        "n": 1,
        "quality": "high",
    }


def test_api_key_header_option_sends_the_key_azure_style() -> None:
    seen: list[httpx.Request] = []

    def handler(sent: httpx.Request) -> httpx.Response:
        seen.append(sent)
        return httpx.Response(200, json=images_json(PNG))

    run(
        call(
            handler,
            auth_header="api-key",
            base_url="https://x.example.test/openai?api-version=2025-04-01",
        )
    )
    assert seen[0].headers["api-key"] == KEY
    assert "authorization" not in seen[0].headers
    assert (
        str(seen[0].url)
        == "https://x.example.test/openai/images/generations?api-version=2025-04-01"
    )


def test_without_a_key_env_no_credentials_are_sent() -> None:
    seen: list[httpx.Request] = []

    def handler(sent: httpx.Request) -> httpx.Response:
        seen.append(sent)
        return httpx.Response(200, json=images_json(PNG))

    run(call(handler, environ={}, api_key_env=None))
    assert "authorization" not in seen[0].headers


def test_missing_key_fails_with_one_line_before_any_request(snapshot: Any) -> None:
    def handler(_: httpx.Request) -> httpx.Response:
        raise AssertionError("no request may be made without a key")

    for environ in ({}, {"WISGATE_API_KEY": "  "}):
        error = failure(handler, environ=environ)
        assert error.retryable is False
        assert error.code == "missing_api_key"
        assert str(error) == snapshot


def test_a_key_with_forbidden_characters_is_refused_without_echoing_it() -> None:
    error = failure(answer(200, images_json(PNG)), environ={"WISGATE_API_KEY": "sk-abc\ndef"})
    assert "sk-abc" not in str(error)
    assert (
        str(error)
        == "WISGATE_API_KEY contains spaces or characters not allowed in an HTTP header; check its value"
    )


@pytest.mark.parametrize(
    "base_url",
    [
        "http://127.0.0.1:8080/v1",
        "http://127.9.9.9/v1",
        "http://[::1]:80/v1",
        "http://localhost/v1",
    ],
)
def test_plain_http_is_allowed_for_loopback_hosts(base_url: str) -> None:
    run(call(answer(200, images_json(PNG)), base_url=base_url))


@pytest.mark.parametrize(
    "base_url",
    [
        "http://api.wisgate.ai/v1",
        "http://10.0.0.5/v1",
        "http://localhost.example.com/v1",
        "ftp://x/v1",
    ],
)
def test_plain_http_to_other_hosts_is_refused(base_url: str, snapshot: Any) -> None:
    with pytest.raises(ConfigError) as caught:
        run(call(answer(200, images_json(PNG)), base_url=base_url))
    assert str(caught.value) == snapshot


def test_credentials_in_the_base_url_are_refused() -> None:
    with pytest.raises(ConfigError, match="must not contain credentials"):
        run(call(answer(200, images_json(PNG)), base_url="https://user:pw@api.example.test/v1"))


@pytest.mark.parametrize(
    ("value", "sent"),
    [
        (2, "2"),
        (True, "true"),
        (False, "false"),
        ("high", "high"),
        (0.5, "0.5"),
        ({"a": 1}, '{"a":1}'),
    ],
)
def test_form_values_are_stringified_the_way_the_api_parses_them(value: object, sent: str) -> None:
    assert form_value(value) == sent


def test_edits_send_fields_and_files_as_multipart(tmp_path: Path) -> None:
    reference, mask = tmp_path / "ref.jpg", tmp_path / "mask.png"
    reference.write_bytes(JPEG)
    mask.write_bytes(PNG)
    seen: list[httpx.Request] = []

    def handler(sent: httpx.Request) -> httpx.Response:
        seen.append(sent)
        return httpx.Response(200, json=images_json(PNG, PNG))

    edit = ImageRequest(
        "hero",
        "images/edits",
        {
            "model": "gpt-image-2",
            "prompt": "add a boat",
            "n": 2,
            "output_compression": 80,
            "moderation": None,
        },
        (
            InputFile("image", reference, hashlib.sha256(JPEG).hexdigest()),
            InputFile("mask", mask, "pending:generated/mask.png"),
        ),
    )
    run(call(handler, edit))
    (sent,) = seen
    assert str(sent.url).endswith("/v1/images/edits")
    content = sent.content
    assert b'name="n"\r\n\r\n2\r\n' in content
    assert b'name="output_compression"\r\n\r\n80\r\n' in content
    assert b'name="moderation"' not in content
    assert (
        b'name="image[]"; filename="ref.jpg"\r\nContent-Type: image/jpeg\r\n\r\n' + JPEG in content
    )
    assert b'name="mask"; filename="mask.png"\r\nContent-Type: image/png\r\n\r\n' + PNG in content


def test_a_reference_image_changed_since_planning_is_refused(tmp_path: Path) -> None:
    reference = tmp_path / "ref.png"
    reference.write_bytes(PNG)
    edit = ImageRequest(
        "hero", "images/edits", {"prompt": "x"}, (InputFile("image", reference, "0" * 64),)
    )
    error = failure(answer(200, images_json(PNG)), edit)
    assert error.retryable is False
    assert "changed since it was planned" in str(error)


# --- responses --------------------------------------------------------------------------------------------


def test_revised_prompt_usage_and_response_details_are_returned() -> None:
    body = images_json(PNG, usage={"input_tokens": 3}, output_format="png", size="1024x1024")
    body["data"][0]["revised_prompt"] = "a lighthouse at dusk"
    generation = run(call(answer(200, body)))
    assert generation.revised_prompt == "a lighthouse at dusk"
    assert generation.usage == {"input_tokens": 3}
    assert generation.extra == {"created": 1, "output_format": "png", "size": "1024x1024"}


def test_what_the_api_says_about_an_image_is_kept_only_as_the_lock_can_write_it() -> None:
    # Valid JSON, but not text UTF-8 can hold (a lone surrogate), and deeper than JSON encoders
    # go: either would make the lock unwritable after the image was paid for.
    deep: Any = 1
    for _ in range(600):
        deep = {"x": deep}
    body = images_json(PNG, usage={"input_tokens": 3, "odd\ud800": "x\udfff", "deep": deep})
    body["data"][0]["revised_prompt"] = "a lighthouse \ud800at dusk"
    raw = json.dumps(body)  # json escapes the surrogates: the API sends them that way

    generation = run(call(answer(200, raw)))

    assert generation.revised_prompt == "a lighthouse \ufffdat dusk"
    assert generation.usage is not None
    kept = generation.usage.pop("deep")
    assert generation.usage == {"input_tokens": 3, "odd\ufffd": "x\ufffd"}
    levels = 0
    while isinstance(kept, dict):
        kept, levels = kept["x"], levels + 1
    assert (kept, levels) == (None, 15)  # cut where it gets deeper than any real usage report
    json.dumps(body).encode("utf-8", "surrogatepass")  # the input really was unwritable


@pytest.mark.parametrize(
    ("body", "retryable", "fragment"),
    [
        (images_json(PNG, PNG), False, "asked for 1 image but got 2"),
        ({"created": 1}, True, "the response has no `data` list"),
        ({"created": 1, "data": [{}]}, True, "image 1 has neither b64_json nor url"),
        ({"created": 1, "data": [{"b64_json": "iVBORw0KGgo"}]}, True, "not valid base64"),
        (images_json(PNG[:-20]), True, "image 1 is damaged: truncated PNG"),
        (images_json(JPEG), False, "image 1 is jpeg but output_format is png"),
        (
            error_body("moderation_blocked", "blocked"),
            False,
            "HTTP 200 moderation_blocked: blocked",
        ),
        (
            error_body("upstream_error", "try later", "server_error"),
            True,
            "upstream_error: try later",
        ),
    ],
)
def test_bad_successful_responses_are_classified(body: Any, retryable: bool, fragment: str) -> None:
    error = failure(answer(200, body))
    assert fragment in str(error)
    assert error.retryable is retryable


OTHER_PNG = png(colour=(200, 10, 10))


@pytest.mark.parametrize(
    ("n", "items", "fragment", "kept"),
    [
        (2, [PNG], "asked for 2 images but got 1", [PNG]),
        (1, [PNG, OTHER_PNG], "asked for 1 image but got 2", [PNG, OTHER_PNG]),
        (2, [PNG, "not base64!"], "image 2 is not valid base64", [PNG]),
        (3, [PNG, {}, OTHER_PNG], "image 2 has neither b64_json nor url", [PNG, OTHER_PNG]),
    ],
)
def test_every_image_a_failed_answer_brings_is_handed_back_to_keep(
    n: int, items: list[Any], fragment: str, kept: list[bytes]
) -> None:
    # The answer was billed: the images in it that decode are kept, whatever is wrong with it.
    data = [
        {"b64_json": base64.b64encode(item).decode()}
        if isinstance(item, bytes)
        else {"b64_json": item}
        if isinstance(item, str)
        else item
        for item in items
    ]
    error = failure(answer(200, {"created": 1, "data": data}), request(n=n))
    assert fragment in str(error)
    assert list(error.paid) == kept


def test_a_wrong_count_is_refused_first_and_never_retried_nor_downloads_past_n() -> None:
    # The count decides: it is never retried (the same request answers the same way), and an
    # answer of many links downloads no more than the images asked for.
    downloads: list[str] = []

    def handler(incoming: httpx.Request) -> httpx.Response:
        if incoming.url.path.endswith("/generations"):
            urls = [{"url": f"https://cdn.example.test/{i}.png"} for i in range(200)]
            return httpx.Response(200, json={"created": 1, "data": urls})
        downloads.append(incoming.url.path)
        if incoming.url.path == "/1.png":
            return httpx.Response(503)
        return httpx.Response(200, content=PNG)

    error = failure(handler, request(n=2))

    assert "asked for 2 images but got 200" in str(error)
    assert error.retryable is False
    assert downloads == ["/0.png", "/1.png"]
    assert list(error.paid) == [PNG]


def test_images_downloaded_before_a_failed_download_are_handed_back_to_keep() -> None:
    def handler(incoming: httpx.Request) -> httpx.Response:
        if incoming.url.path.endswith("/generations"):
            urls = [
                {"url": "https://cdn.example.test/1.png"},
                {"url": "https://cdn.example.test/2.png"},
            ]
            return httpx.Response(200, json={"created": 1, "data": urls})
        if incoming.url.path == "/1.png":
            return httpx.Response(200, content=PNG)
        raise httpx.ReadTimeout("stalled", request=incoming)

    error = failure(handler, request(n=2))
    assert "image 2" in str(error)
    assert error.retryable is True
    assert list(error.paid) == [PNG]


def test_base64_with_line_breaks_or_a_data_url_prefix_is_accepted() -> None:
    encoded = base64.encodebytes(PNG).decode()
    body = {"created": 1, "data": [{"b64_json": encoded}]}
    assert run(call(answer(200, body))).images == [PNG]
    body = {
        "created": 1,
        "data": [{"b64_json": "data:image/png;base64," + base64.b64encode(PNG).decode()}],
    }
    assert run(call(answer(200, body))).images == [PNG]


# --- failures ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "retryable", "rate_limited"),
    [
        (400, "invalid_value", False, False),
        (401, "invalid_api_key", False, False),
        (403, None, False, False),
        (404, "model_not_found", False, False),
        (408, None, True, False),
        (409, None, True, False),
        (429, "rate_limit_exceeded", True, True),
        (429, "insufficient_quota", False, False),
        (500, None, True, False),
        (502, None, True, False),
        (503, None, True, False),
        (504, None, True, False),
    ],
)
def test_http_errors_are_classified(
    status: int, code: str | None, retryable: bool, rate_limited: bool
) -> None:
    error = failure(answer(status, error_body(code, "something happened")))
    assert (error.status, error.code, error.retryable, error.rate_limited) == (
        status,
        code or "invalid_request_error",
        retryable,
        rate_limited,
    )
    assert "something happened" in str(error)


def test_quota_exhaustion_is_recognised_by_error_type_too() -> None:
    error = failure(answer(429, error_body(None, "out of credit", "insufficient_quota")))
    assert (error.retryable, error.code) == (False, "insufficient_quota")


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
        ({"retry-after": "7"}, 7.0),
        ({"retry-after": "0.25"}, 0.25),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:30 GMT"}, 30.0),
        ({"retry-after": "Wed, 21 Oct 2015 07:27:00 GMT"}, 0.0),
        ({"retry-after": "soon"}, None),
        ({"retry-after-ms": "nan", "retry-after": "2"}, 2.0),
        ({}, None),
    ],
)
def test_retry_after_headers_are_parsed(headers: dict[str, str], expected: float | None) -> None:
    now = 1445412480.0  # Wed, 21 Oct 2015 07:28:00 GMT
    assert retry_after(httpx.Headers(headers), now=now) == expected


def test_a_rate_limited_error_carries_retry_after() -> None:
    error = failure(
        answer(429, error_body("rate_limit_exceeded", "slow down"), {"retry-after-ms": "250"})
    )
    assert error.retry_after == 0.25
    error = failure(answer(400, error_body("bad", "no"), {"retry-after": "5"}))
    assert error.retry_after is None


@pytest.mark.parametrize(
    ("exc", "fragment"),
    [
        (httpx.ReadTimeout("timed out"), "no response within 300s (read timeout)"),
        (httpx.ConnectTimeout("timed out"), "no response within 300s (connect timeout)"),
        (
            httpx.ConnectError("[Errno 111] Connection refused"),
            "cannot connect to api.example.test",
        ),
        (httpx.RemoteProtocolError("Server disconnected"), "closed without a complete response"),
        (httpx.ReadError("reset"), "network error talking to api.example.test: reset"),
    ],
)
def test_transport_failures_are_retryable_provider_errors(exc: Exception, fragment: str) -> None:
    def handler(_: httpx.Request) -> httpx.Response:
        raise exc

    error = failure(handler)
    assert error.retryable is True
    assert fragment in str(error)
    assert isinstance(error.__cause__, httpx.HTTPError)


def test_a_local_protocol_error_is_not_retryable() -> None:
    def handler(_: httpx.Request) -> httpx.Response:
        raise httpx.LocalProtocolError("bad request line")

    assert failure(handler).retryable is False


def test_html_error_pages_are_summarised_by_their_title() -> None:
    page = "<html><head><title>502 Bad Gateway</title></head><body>" + "x" * 5000 + "</body></html>"
    error = failure(answer(502, page, {"content-type": "text/html"}))
    assert str(error) == "wisgate: HTTP 502 with an HTML page: 502 Bad Gateway"


@pytest.mark.parametrize("status", [200, 500])
def test_a_body_nested_too_deeply_to_parse_is_a_provider_error(status: int) -> None:
    # json gives up on it with RecursionError, which must not become an internal error.
    error = failure(answer(status, "[" * 100_000 + "]" * 100_000))
    assert str(error).startswith("wisgate: ")
    assert len(str(error)) < 300


def test_long_non_json_bodies_are_cut_to_one_short_line() -> None:
    error = failure(
        answer(503, "upstream\nconnect error " + "y" * 1000, {"content-type": "text/plain"})
    )
    assert str(error).startswith(
        "wisgate: HTTP 503 with a text/plain body: upstream connect error yyy"
    )
    assert str(error).endswith("...")
    assert len(str(error)) < 260


def test_the_key_is_redacted_from_echoed_error_bodies_everywhere() -> None:
    echoed = f"Incorrect API key provided: {KEY}."
    for handler in (
        answer(401, error_body("invalid_api_key", echoed)),
        answer(500, f"<html><title>error for {KEY}</title></html>", {"content-type": "text/html"}),
        answer(502, ("z" * 190 + KEY).encode(), {"content-type": "text/plain"}),
        answer(200, f"not json {KEY}"),
    ):
        error = failure(handler)
        for text in (str(error), repr(error), error.one_line(), repr(error.args)):
            assert KEY not in text
            assert KEY[:12] not in text  # not half a key cut at the snippet boundary either
    assert "[redacted]" in str(failure(answer(401, error_body("invalid_api_key", echoed))))


def test_provider_repr_shows_no_key() -> None:
    async def build() -> str:
        async with httpx.AsyncClient() as client:
            return repr(OpenAIProvider("wisgate", settings(), client, ENV))

    assert KEY not in run(build())


# --- url responses ---------------------------------------------------------------------------------------------


def url_handler(
    image_url: str, image: bytes = PNG, seen: list[httpx.Request] | None = None
) -> Handler:
    def handler(sent: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(sent)
        if sent.method == "POST":
            return httpx.Response(200, json={"created": 1, "data": [{"url": image_url}]})
        if sent.url.path == "/redirect":
            return httpx.Response(302, headers={"location": "https://cdn.example.test/final.png"})
        return httpx.Response(200, content=image)

    return handler


def test_url_images_on_another_host_are_downloaded_without_credentials() -> None:
    seen: list[httpx.Request] = []
    generation = run(call(url_handler("https://cdn.example.test/a.png?sig=abc", seen=seen)))
    assert generation.images == [PNG]
    download = seen[1]
    assert str(download.url) == "https://cdn.example.test/a.png?sig=abc"
    assert "authorization" not in download.headers
    assert "api-key" not in download.headers


def test_url_images_on_the_api_host_get_the_key() -> None:
    seen: list[httpx.Request] = []
    run(call(url_handler("https://api.example.test/files/a.png", seen=seen)))
    assert seen[1].headers["authorization"] == f"Bearer {KEY}"


def test_redirects_away_from_the_api_host_drop_the_key() -> None:
    seen: list[httpx.Request] = []
    run(call(url_handler("https://api.example.test/redirect", seen=seen), auth_header="api-key"))
    assert [str(r.url) for r in seen[1:]] == [
        "https://api.example.test/redirect",
        "https://cdn.example.test/final.png",
    ]
    assert "api-key" in seen[1].headers
    assert "api-key" not in seen[2].headers


def test_plain_http_image_urls_are_refused_unless_loopback() -> None:
    error = failure(url_handler("http://cdn.example.test/a.png?sig=secret"))
    assert (
        str(error)
        == "wisgate: image 1 url http://cdn.example.test/a.png is not https; refusing to download"
    )
    assert error.retryable is False


def test_downloads_over_the_size_cap_are_refused() -> None:
    async def attempt() -> None:
        transport = httpx.MockTransport(
            url_handler("https://cdn.example.test/a.png", png((64, 64)))
        )
        async with httpx.AsyncClient(transport=transport) as client:
            provider = OpenAIProvider("wisgate", settings(), client, ENV, max_image_bytes=100)
            await provider.generate(request())

    with pytest.raises(
        ProviderError, match=r"^wisgate: image 1 is larger than the 100 bytes limit$"
    ):
        run(attempt())


# --- factory -------------------------------------------------------------------------------------------------------


def test_make_provider_builds_each_kind() -> None:
    async def build() -> tuple[object, object]:
        async with httpx.AsyncClient() as client:
            online = make_provider("wisgate", settings(), client, ENV)
            offline = make_provider("offline", ProviderSettings(kind="offline"), client, {})
            await online.aclose()
            return online, offline

    online, offline = run(build())
    assert isinstance(online, OpenAIProvider)
    assert isinstance(offline, OfflineProvider)
    assert (online.kind, offline.kind) == ("openai", "offline")


# --- end to end against the loopback fake ------------------------------------------------------------------------


async def against(
    server: FakeImagesAPI, image_request: ImageRequest, key: str = KEY, **changes: Any
) -> Generation:
    async with httpx.AsyncClient(trust_env=False) as client:
        provider = OpenAIProvider(
            "wisgate", settings(server.base_url, **changes), client, {"WISGATE_API_KEY": key}
        )
        return await provider.generate(image_request)


def e2e_failure(
    server: FakeImagesAPI, image_request: ImageRequest | None = None, **changes: Any
) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        run(against(server, image_request or request(), **changes))
    return caught.value


BODIES = [
    {},
    {"n": 3, "size": "1536x1024", "quality": "high"},
    {"size": "auto", "quality": "low", "background": "transparent", "output_format": "webp"},
    {
        "output_format": "jpeg",
        "output_compression": 70,
        "moderation": "low",
        "background": "opaque",
    },
    {"model": "dall-e-3", "response_format": "b64_json", "size": "1792x1024", "quality": "hd"},
]


@pytest.mark.parametrize("body", BODIES)
def test_every_generation_body_validates_against_the_official_schema(
    fake_images_api: FakeImagesAPI, body: dict[str, Any]
) -> None:
    generation = run(against(fake_images_api, request(**body)))
    assert len(generation.images) == body.get("n", 1)
    assert {sniff(image).format for image in generation.images} == {
        body.get("output_format", "png")
    }
    assert fake_images_api.violations == []
    assert fake_images_api.image_requests[0].headers["authorization"] == f"Bearer {KEY}"


EDIT_BODIES = [
    {},
    {"n": 2, "size": "1024x1536", "quality": "medium", "input_fidelity": "high"},
    {"background": "transparent", "output_format": "webp"},
    {"output_format": "jpeg", "output_compression": 70, "background": "opaque"},
]


@pytest.mark.parametrize("body", EDIT_BODIES)
def test_every_edit_uploads_the_reference_bytes_and_validates(
    fake_images_api: FakeImagesAPI, tmp_path: Path, body: dict[str, Any]
) -> None:
    first, second, mask = png((16, 16), (1, 2, 3)), JPEG, png((16, 16), (0, 0, 0))
    paths = {"first.png": first, "second.jpg": second, "mask.png": mask}
    for name, data in paths.items():
        (tmp_path / name).write_bytes(data)
    inputs = tuple(
        InputFile(role, tmp_path / name, hashlib.sha256(paths[name]).hexdigest())
        for role, name in (("image", "first.png"), ("image", "second.jpg"), ("mask", "mask.png"))
    )
    edit = ImageRequest(
        "hero",
        "images/edits",
        {"model": "gpt-image-2", "prompt": "add a boat", "n": 1, **body},
        inputs,
    )
    generation = run(against(fake_images_api, edit))
    assert len(generation.images) == body.get("n", 1)
    (recorded,) = fake_images_api.image_requests
    assert recorded.path == "/v1/images/edits"
    assert [(p.field, p.filename, p.content_type, p.data) for p in recorded.files] == [
        ("image[]", "first.png", "image/png", first),
        ("image[]", "second.jpg", "image/jpeg", second),
        ("mask", "mask.png", "image/png", mask),
    ]
    assert recorded.body == {key: form_value(value) for key, value in edit.body.items()}
    assert fake_images_api.violations == []


FAULTS = {
    "rate_limited": (rate_limited(retry_after="3"), True, 429, "rate_limit_exceeded", True, 3.0),
    "rate_limited_ms": (rate_limited("3", "1200"), True, 429, "rate_limit_exceeded", True, 1.2),
    "quota_exhausted": (quota_exhausted(), False, 429, "insufficient_quota", False, None),
    "server_error": (server_error(500), True, 500, "server_error", False, None),
    "bad_gateway": (server_error(502), True, 502, "server_error", False, None),
    "moderation_blocked": (moderation_blocked(), False, 400, "moderation_blocked", False, None),
    "dropped_connection": (dropped(), True, None, None, False, None),
    "malformed_json": (malformed_json(), True, None, None, False, None),
    "html_error_page": (html_error(502), True, 502, None, False, None),
    "truncated_base64": (truncated_base64(), True, None, None, False, None),
    "truncated_image": (truncated_base64(valid_padding=True), True, None, None, False, None),
    "wrong_format": (wrong_format("jpeg"), False, None, None, False, None),
}


@pytest.mark.parametrize("fault", FAULTS)
def test_faults_from_the_fake_are_classified(
    fake_images_api: FakeImagesAPI, fault: str, snapshot: Any
) -> None:
    behaviour, retryable, status, code, rate_limited_, wait = FAULTS[fault]
    fake_images_api.enqueue(behaviour)
    error = e2e_failure(fake_images_api)
    assert (error.retryable, error.status, error.code, error.rate_limited, error.retry_after) == (
        retryable,
        status,
        code,
        rate_limited_,
        wait,
    )
    assert str(error) == snapshot
    # The same request succeeds once the fault has passed.
    assert len(run(against(fake_images_api, request())).images) == 1


def test_a_server_slower_than_the_timeout_gives_a_retryable_timeout(
    fake_images_api: FakeImagesAPI,
) -> None:
    fake_images_api.enqueue(timeout(sleep=10))
    error = e2e_failure(fake_images_api, timeout_s=0.3)
    assert error.retryable is True
    assert str(error).startswith("wisgate: no response within 0.3s")


def test_latency_below_the_timeout_is_fine(fake_images_api: FakeImagesAPI) -> None:
    fake_images_api.enqueue(ok(latency=0.2))
    assert len(run(against(fake_images_api, request(), timeout_s=2)).images) == 1


def test_a_refused_connection_is_retryable() -> None:
    server = FakeImagesAPI()
    server.stop()  # its port is now closed
    with pytest.raises(ProviderError) as caught:
        run(against(server, request()))
    assert caught.value.retryable is True
    assert "cannot connect to 127.0.0.1" in str(caught.value)


def test_url_responses_on_the_same_origin_carry_the_key(fake_images_api: FakeImagesAPI) -> None:
    fake_images_api.enqueue(url_response())
    generation = run(against(fake_images_api, request()))
    assert sniff(generation.images[0]).format == "png"
    (download,) = fake_images_api.downloads
    assert download.headers["authorization"] == f"Bearer {KEY}"


def test_url_responses_on_another_loopback_host_get_no_key(fake_images_api: FakeImagesAPI) -> None:
    fake_images_api.enqueue(url_response(host="localhost"))
    run(against(fake_images_api, request(), auth_header="api-key"))
    (download,) = fake_images_api.downloads
    assert "authorization" not in download.headers
    assert "api-key" not in download.headers


def test_url_responses_over_plain_http_to_a_public_host_are_refused(
    fake_images_api: FakeImagesAPI,
) -> None:
    fake_images_api.enqueue(url_response(host="images.example.com"))
    error = e2e_failure(fake_images_api)
    assert error.retryable is False
    assert "is not https; refusing to download" in str(error)
    assert fake_images_api.downloads == []


def test_a_wrong_key_echoed_by_the_server_is_redacted(snapshot: Any) -> None:
    with FakeImagesAPI(api_key="sk-the-right-one") as server:
        error = e2e_failure(server)
    assert KEY not in str(error)
    assert (error.status, error.retryable) == (401, False)
    assert str(error) == snapshot


def test_the_rate_limit_mode_reports_when_to_come_back() -> None:
    with FakeImagesAPI() as server:
        server.rate_limit(per_second=1)
        run(against(server, request()))
        error = e2e_failure(server)
    assert error.rate_limited is True
    assert error.retry_after is not None
    assert 0 < error.retry_after <= 1
