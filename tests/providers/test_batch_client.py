"""The Batch API client: files, batches, results and failures, against the loopback fake.

Result-line parsing and line splitting are unit-tested with httpx.MockTransport; everything else
talks to the real fake server over loopback.
"""

from __future__ import annotations

import base64
import io
import json
import time
import tracemalloc
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from PIL import Image

from promptform.core.config import ProviderSettings
from promptform.core.errors import ConfigError
from promptform.core.images import sniff
from promptform.providers import batch as batch_module
from promptform.providers.base import ProviderError
from promptform.providers.batch import (
    BATCH_MAX_LINES,
    BatchClient,
    BatchInfo,
    BatchLineResult,
    parse_result_line,
)
from tests.support.fake_batches import (
    BatchScenario,
    cancelled,
    complete,
    expire,
    fail_validation,
    partial_failure,
)
from tests.support.fake_images_api import (
    FakeImagesAPI,
    dropped,
    fake_images_api_fixture,  # noqa: F401  (provides the fake_images_api fixture)
    quota_exhausted,
    rate_limited,
    server_error,
)
from tests.support.waiting import run_within

T = TypeVar("T")
KEY = "sk-batch-0123456789abcdef"
ENV = {"BATCH_API_KEY": KEY}
GENERATIONS = "/v1/images/generations"
EDITS = "/v1/images/edits"


def settings(base_url: str, **changes: Any) -> ProviderSettings:
    values: dict[str, Any] = {
        "kind": "openai",
        "base_url": base_url,
        "api_key_env": "BATCH_API_KEY",
        "batch": True,
        "max_retries": 3,
        "timeout_s": 20.0,
    }
    return ProviderSettings(**{**values, **changes})


def client_for(server: FakeImagesAPI, **changes: Any) -> BatchClient:
    return BatchClient("fake", settings(server.base_url, **changes), ENV, backoff_s=0.01)


def line(custom_id: str, prompt: str = "a lighthouse", url: str = GENERATIONS, **body: Any) -> Any:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": url,
        "body": {"model": "gpt-image-2", "prompt": prompt, "n": 1, **body},
    }


def write_lines(path: Path, lines: list[Any]) -> Path:
    path.write_text("".join(json.dumps(item) + "\n" for item in lines), encoding="utf-8")
    return path


def run(
    server: FakeImagesAPI,
    work: Callable[[BatchClient], Coroutine[Any, Any, T]],
    **changes: Any,
) -> T:
    async def with_client() -> T:
        client = client_for(server, **changes)
        try:
            return await work(client)
        finally:
            await client.aclose()

    return run_within(with_client(), "the batch client")


async def submit(
    client: BatchClient, path: Path, endpoint: str = GENERATIONS, **metadata: str
) -> BatchInfo:
    file_id = await client.upload_input(path)
    return await client.create_batch(file_id, endpoint, metadata)


async def finish(client: BatchClient, info: BatchInfo, polls: int = 10) -> list[BatchInfo]:
    """Every state seen while polling `info` until it is finished."""
    seen = [info]
    while not seen[-1].finished:
        assert len(seen) <= polls, f"still {seen[-1].status} after {polls} polls"
        seen.append(await client.retrieve(info.id))
    return seen


async def results(client: BatchClient, file_id: str | None) -> list[BatchLineResult]:
    if file_id is None:
        return []
    return [parse_result_line(item) async for item in client.stream_lines(file_id)]


def three_lines(tmp_path: Path, *prompts: str) -> Path:
    chosen = prompts or ("a lighthouse", "a harbour", "a boat")
    return write_lines(
        tmp_path / "in.jsonl", [line(f"target-{n}", p) for n, p in enumerate(chosen, 1)]
    )


# --- the happy path -------------------------------------------------------------------------------


def test_a_batch_goes_from_upload_through_each_status_to_images(
    fake_images_api: FakeImagesAPI, tmp_path: Path
) -> None:
    source = three_lines(tmp_path)

    async def work(client: BatchClient) -> tuple[list[BatchInfo], list[BatchLineResult], Any]:
        seen = await finish(client, await submit(client, source, run="r1"))
        lines = await results(client, seen[-1].output_file_id)
        generation = await client.generation(lines[0], "png", 1)
        return seen, lines, generation

    seen, lines, generation = run(fake_images_api, work)

    assert [info.status for info in seen] == [
        "validating",
        "in_progress",
        "finalizing",
        "completed",
    ]
    final = seen[-1]
    assert final.metadata == {"run": "r1"}
    assert final.endpoint == GENERATIONS
    assert (final.request_counts.total, final.request_counts.completed) == (3, 3)
    assert final.request_counts.failed == 0
    assert final.error_file_id is None and final.errors == ()
    assert [result.custom_id for result in lines] == ["target-1", "target-2", "target-3"]
    assert all(result.ok and result.status_code == 200 for result in lines)
    assert sniff(generation.images[0]).format == "png"
    assert generation.usage is not None and generation.usage["output_tokens"] == 1056
    stats = fake_images_api.stats()
    assert (stats["uploads"], stats["batches_created"], stats["batch_polls"]) == (1, 1, 3)
    assert fake_images_api.violations == []


def test_a_batch_with_zero_polls_per_step_is_finished_when_created(
    fake_images_api: FakeImagesAPI, tmp_path: Path
) -> None:
    fake_images_api.batches.default = complete(polls_per_step=0)
    info = run(fake_images_api, lambda client: submit(client, three_lines(tmp_path)))
    assert info.status == "completed" and info.finished
    assert info.output_file_id is not None


def test_the_upload_is_multipart_with_purpose_batch_and_the_key(
    fake_images_api: FakeImagesAPI, tmp_path: Path
) -> None:
    fake_images_api.api_key = KEY
    source = three_lines(tmp_path)

    async def work(client: BatchClient) -> bytes:
        file_id = await client.upload_input(source)
        return b"".join([item + b"\n" async for item in client.stream_lines(file_id)])

    assert run(fake_images_api, work) == source.read_bytes()
    upload = next(r for r in fake_images_api.requests if r.path == "/v1/files")
    assert upload.headers["authorization"] == f"Bearer {KEY}"
    assert upload.headers["content-type"].startswith("multipart/form-data")
    assert int(upload.headers["content-length"]) > source.stat().st_size


def test_file_bytes_is_the_size_the_files_api_reports(
    fake_images_api: FakeImagesAPI, tmp_path: Path
) -> None:
    source = three_lines(tmp_path)

    async def work(client: BatchClient) -> int | None:
        return await client.file_bytes(await client.upload_input(source))

    assert run(fake_images_api, work) == source.stat().st_size


def test_list_batches_follows_pages_newest_first(
    fake_images_api: FakeImagesAPI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batch_module, "LIST_PAGE_SIZE", 2)
    source = three_lines(tmp_path)

    async def work(client: BatchClient) -> tuple[list[str], list[str]]:
        file_id = await client.upload_input(source)
        created = [
            (await client.create_batch(file_id, GENERATIONS, {"n": str(n)})).id for n in range(5)
        ]
        return created, [info.id async for info in client.list_batches()]

    created, listed = run(fake_images_api, work)
    assert listed == created[::-1]
    pages = [r for r in fake_images_api.requests if r.method == "GET" and r.path == "/v1/batches"]
    assert len(pages) == 3


# --- scenarios -------------------------------------------------------------------------------------


def test_chosen_lines_fail_as_the_images_api_refuses_them(
    fake_images_api: FakeImagesAPI, tmp_path: Path
) -> None:
    fake_images_api.batches.enqueue(partial_failure(prompt_containing="nsfw"))
    source = three_lines(tmp_path, "a lighthouse", "nsfw thing", "a boat")

    async def work(client: BatchClient) -> tuple[BatchInfo, list[BatchLineResult], ProviderError]:
        final = (await finish(client, await submit(client, source)))[-1]
        failed = await results(client, final.error_file_id)
        return (
            final,
            await results(client, final.output_file_id) + failed,
            client.line_error(failed[0]),
        )

    final, lines, error = run(fake_images_api, work)
    assert (final.status, final.request_counts.completed, final.request_counts.failed) == (
        "completed",
        2,
        1,
    )
    refused = next(result for result in lines if not result.ok)
    assert refused.custom_id == "target-2"
    assert refused.status_code == 400
    assert refused.error_code == "moderation_blocked"
    assert refused.error_message is not None and "safety system" in refused.error_message
    assert refused.body is not None and refused.body["error"]["code"] == "moderation_blocked"
    assert not error.retryable and "target-2" in str(error)


def test_an_expired_batch_keeps_the_lines_done_and_reports_the_rest_as_expired(
    fake_images_api: FakeImagesAPI, tmp_path: Path
) -> None:
    fake_images_api.batches.enqueue(expire(done_lines=1))
    source = three_lines(tmp_path)

    async def work(client: BatchClient) -> tuple[BatchInfo, list[BatchLineResult], list[Any]]:
        final = (await finish(client, await submit(client, source)))[-1]
        expired = await results(client, final.error_file_id)
        return final, await results(client, final.output_file_id), expired

    final, done, expired = run(fake_images_api, work)
    assert final.status == "expired"
    assert [result.custom_id for result in done] == ["target-1"]
    assert [result.custom_id for result in expired] == ["target-2", "target-3"]
    assert all(r.status_code is None and r.error_code == "batch_expired" for r in expired)
    assert not expired[0].ok


def test_an_expired_line_may_be_sent_again_but_a_refused_one_may_not(
    fake_images_api: FakeImagesAPI,
) -> None:
    client = client_for(fake_images_api)
    expired = BatchLineResult("a", None, None, "batch_expired: late", "batch_expired")
    refused = BatchLineResult("b", 400, {}, "HTTP 400 moderation_blocked: no", "moderation_blocked")
    busy = BatchLineResult("c", 503, {}, "HTTP 503: busy", None)
    assert client.line_error(expired).retryable
    assert not client.line_error(refused).retryable
    assert client.line_error(busy).retryable
    run_within(client.aclose(), "closing the client")


def test_a_batch_failing_validation_has_errors_and_no_output(
    fake_images_api: FakeImagesAPI, tmp_path: Path
) -> None:
    fake_images_api.batches.enqueue(fail_validation("The input file is not usable."))
    source = three_lines(tmp_path)
    seen = run(fake_images_api, lambda client: submitted_and_finished(client, source))
    assert [info.status for info in seen] == ["validating", "failed"]
    assert seen[-1].errors == ("line 1: invalid_request: The input file is not usable.",)
    assert seen[-1].output_file_id is None and seen[-1].error_file_id is None


@pytest.mark.parametrize(
    ("second", "expected"),
    [
        (
            line("b", quality="ultra"),
            "line 2: invalid_request: body.quality: 'ultra' is not one of",
        ),
        (line("b", n=0), "line 2: invalid_request: body.n: 0 is less than the minimum of 1"),
        (line("b", colour="red"), "body.colour: not a field of CreateImageRequest"),
        (line("a"), "custom_id 'a' is used by an earlier line; it must be unique"),
        (line("b", url=EDITS), "url '/v1/images/edits' differs from the batch endpoint"),
        ({**line("b"), "method": "GET"}, "method must be POST, not 'GET'"),
        ("not json", "line 2: invalid_request: not valid JSON"),
    ],
)
def test_an_input_line_the_api_would_refuse_fails_validation(
    fake_images_api: FakeImagesAPI, tmp_path: Path, second: Any, expected: str
) -> None:
    source = tmp_path / "in.jsonl"
    second_line = second if isinstance(second, str) else json.dumps(second)
    source.write_text(json.dumps(line("a")) + "\n" + second_line + "\n", encoding="utf-8")
    final = run(fake_images_api, lambda client: submitted_and_finished(client, source))[-1]
    assert final.status == "failed"
    assert len(final.errors) == 1 and final.errors[0].startswith("line 2: ")
    assert expected in final.errors[0]


def test_edit_lines_take_images_as_data_urls_or_uploaded_file_ids(
    fake_images_api: FakeImagesAPI, tmp_path: Path
) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(buffer, "PNG")
    data_url = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    good = tmp_path / "good.jsonl"

    async def work(client: BatchClient) -> tuple[BatchInfo, BatchInfo]:
        file_id = await client.upload_input(three_lines(tmp_path))
        write_lines(
            good,
            [
                line("a", url=EDITS, images=[{"image_url": data_url}]),
                line("b", url=EDITS, images=[{"file_id": file_id}], output_format="webp"),
            ],
        )
        ok = (await finish(client, await submit(client, good, EDITS)))[-1]
        bad = write_lines(tmp_path / "bad.jsonl", [line("c", url=EDITS, images=[{"file_id": "x"}])])
        return ok, (await finish(client, await submit(client, bad, EDITS)))[-1]

    ok, bad = run(fake_images_api, work)
    assert ok.status == "completed" and ok.request_counts.completed == 2
    assert bad.status == "failed"
    assert bad.errors == ("line 1: invalid_request: body.images/0/file_id: no file 'x'",)


def test_a_cancelled_batch_keeps_the_lines_already_done(
    fake_images_api: FakeImagesAPI, tmp_path: Path
) -> None:
    fake_images_api.batches.enqueue(BatchScenario(polls_per_step=2, done_lines=2))
    source = three_lines(tmp_path)

    async def work(client: BatchClient) -> tuple[list[str], list[BatchLineResult]]:
        info = await submit(client, source)
        statuses = [info.status]
        for _ in range(2):
            statuses.append((await client.retrieve(info.id)).status)
        statuses.append((await client.cancel(info.id)).status)
        seen = await finish(client, await client.retrieve(info.id))
        statuses += [state.status for state in seen]
        return statuses, await results(client, seen[-1].output_file_id)

    statuses, done = run(fake_images_api, work)
    assert statuses == [
        "validating",
        "validating",
        "in_progress",
        "cancelling",
        "cancelling",
        "cancelled",
    ]
    assert [result.custom_id for result in done] == ["target-1", "target-2"]
    assert fake_images_api.stats()["batch_cancels"] == 1


def test_a_batch_cancelled_elsewhere_goes_through_cancelling_to_cancelled(
    fake_images_api: FakeImagesAPI, tmp_path: Path
) -> None:
    fake_images_api.batches.enqueue(cancelled(done_lines=1))
    seen = run(
        fake_images_api, lambda client: submitted_and_finished(client, three_lines(tmp_path))
    )
    assert [info.status for info in seen] == [
        "validating",
        "in_progress",
        "cancelling",
        "cancelled",
    ]
    assert seen[-1].request_counts.completed == 1


def test_cancelling_a_finished_batch_is_a_clear_permanent_error(
    fake_images_api: FakeImagesAPI, tmp_path: Path
) -> None:
    fake_images_api.batches.default = complete(polls_per_step=0)

    async def work(client: BatchClient) -> BatchInfo:
        return await client.cancel((await submit(client, three_lines(tmp_path))).id)

    with pytest.raises(ProviderError) as caught:
        run(fake_images_api, work)
    assert str(caught.value) == (
        "fake: HTTP 400 invalid_request: Cannot cancel a batch with status 'completed'."
    )
    assert not caught.value.retryable


async def submitted_and_finished(client: BatchClient, source: Path) -> list[BatchInfo]:
    return await finish(client, await submit(client, source))


# --- retries and failures ---------------------------------------------------------------------------


def test_calls_are_retried_on_429_5xx_and_dropped_connections(
    fake_images_api: FakeImagesAPI, tmp_path: Path
) -> None:
    fake_images_api.fail_batch_calls(
        rate_limited(retry_after_ms="300"), server_error(503), dropped()
    )
    started = time.monotonic()
    info = run(fake_images_api, lambda client: submit(client, three_lines(tmp_path)))
    assert time.monotonic() - started >= 0.3  # retry-after-ms was honoured
    assert info.status == "validating"
    uploads = [r for r in fake_images_api.requests if r.path == "/v1/files"]
    assert len(uploads) == 4
    assert fake_images_api.stats()["uploads"] == 4  # each attempt sent the whole file again


def test_a_create_whose_answer_was_lost_finds_its_batch_instead_of_making_a_second(
    fake_images_api: FakeImagesAPI, tmp_path: Path
) -> None:
    # The batch is made, then the answer is lost: trying again blindly would pay for it twice.
    fake_images_api.lose_batch_answers(server_error(502))
    info = run(fake_images_api, lambda client: submit(client, three_lines(tmp_path)))
    assert fake_images_api.stats()["batches_created"] == 1
    assert info.request_counts.total == 3
    creates = [
        r for r in fake_images_api.requests if r.method == "POST" and r.path == "/v1/batches"
    ]
    assert len(creates) == 1


def test_a_create_refused_before_it_was_made_is_tried_again(
    fake_images_api: FakeImagesAPI, tmp_path: Path
) -> None:
    source = three_lines(tmp_path)

    async def work(client: BatchClient) -> BatchInfo:
        file_id = await client.upload_input(source)
        fake_images_api.fail_batch_calls(server_error(503))
        return await client.create_batch(file_id, GENERATIONS, {})

    info = run(fake_images_api, work)
    assert fake_images_api.stats()["batches_created"] == 1
    creates = [
        r for r in fake_images_api.requests if r.method == "POST" and r.path == "/v1/batches"
    ]
    assert len(creates) == 2 and info.status == "validating"


def test_retries_stop_at_max_retries_with_the_last_error(
    fake_images_api: FakeImagesAPI, tmp_path: Path
) -> None:
    fake_images_api.fail_batch_calls(*[server_error(502)] * 3)
    with pytest.raises(ProviderError) as caught:
        run(fake_images_api, lambda client: client.retrieve("batch_x"), max_retries=2)
    assert str(caught.value).startswith("fake: HTTP 502 server_error: The server had an error")
    assert caught.value.retryable
    assert len([r for r in fake_images_api.requests if r.path == "/v1/batches/batch_x"]) == 3


def test_an_exhausted_quota_is_not_retried(fake_images_api: FakeImagesAPI) -> None:
    fake_images_api.fail_batch_calls(quota_exhausted())
    with pytest.raises(ProviderError) as caught:
        run(fake_images_api, lambda client: client.retrieve("batch_x"))
    assert caught.value.code == "insufficient_quota" and not caught.value.retryable
    assert len(fake_images_api.requests) == 1


def test_an_unknown_batch_is_a_404_naming_it(fake_images_api: FakeImagesAPI) -> None:
    with pytest.raises(ProviderError, match="HTTP 404 not_found: No batch found with id 'nope'"):
        run(fake_images_api, lambda client: client.retrieve("nope"))


def test_the_key_never_appears_in_errors_even_when_the_api_echoes_it(
    fake_images_api: FakeImagesAPI, tmp_path: Path
) -> None:
    fake_images_api.api_key = "sk-the-right-key"
    with pytest.raises(ProviderError) as caught:
        run(fake_images_api, lambda client: submit(client, three_lines(tmp_path)))
    message = str(caught.value)
    assert KEY not in message
    assert "[redacted]" in message and "(check BATCH_API_KEY)" in message
    assert KEY not in repr(client_for(fake_images_api))


def test_a_missing_key_is_refused_before_any_request(fake_images_api: FakeImagesAPI) -> None:
    with pytest.raises(ProviderError, match="BATCH_API_KEY is not set"):
        BatchClient("fake", settings(fake_images_api.base_url), {})
    assert fake_images_api.requests == []


def test_plain_http_is_refused_unless_the_host_is_loopback() -> None:
    with pytest.raises(ConfigError, match="uses plain http, which would send the API key"):
        BatchClient("remote", settings("http://api.example.test/v1"), ENV)
    run_within(
        BatchClient("local", settings("http://localhost:9/v1"), ENV).aclose(), "closing the client"
    )


def test_an_offline_provider_has_no_batch_client() -> None:
    with pytest.raises(ConfigError, match="kind 'offline' has no Batch API"):
        BatchClient("offline", ProviderSettings(kind="offline"), ENV)


def test_an_input_over_the_line_limit_is_refused_before_uploading(
    fake_images_api: FakeImagesAPI, tmp_path: Path
) -> None:
    source = tmp_path / "big.jsonl"
    source.write_bytes(b"{}\n" * (BATCH_MAX_LINES + 1))
    with pytest.raises(ProviderError, match=r"has 50001 lines; .* at most 50000, so split it"):
        run(fake_images_api, lambda client: client.upload_input(source))
    assert fake_images_api.requests == []


# --- bounded memory -------------------------------------------------------------------------------


def test_uploading_and_streaming_a_large_file_holds_only_a_little_of_it(
    fake_images_api: FakeImagesAPI, tmp_path: Path
) -> None:
    source = tmp_path / "large.jsonl"
    prompt = "a lighthouse on a cliff at dusk, " * 30
    with source.open("w", encoding="utf-8") as out:
        for number in range(24_000):
            out.write(json.dumps(line(f"t{number}", prompt)) + "\n")
    size = source.stat().st_size
    assert size > 24 * 1024 * 1024

    async def work(client: BatchClient) -> tuple[int, int, int]:
        tracemalloc.start()
        try:
            file_id = await client.upload_input(source)
            upload_peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.reset_peak()
            count = 0
            async for item in client.stream_lines(file_id):
                count += item.startswith(b"{")
            return upload_peak, tracemalloc.get_traced_memory()[1], count
        finally:
            tracemalloc.stop()

    upload_peak, stream_peak, count = run(fake_images_api, work)
    assert count == 24_000
    assert upload_peak < size // 8, f"upload peak {upload_peak} for a {size}-byte file"
    assert stream_peak < size // 8, f"stream peak {stream_peak} for a {size}-byte file"


# --- result lines and line splitting (no server) ------------------------------------------------------


def png_payload() -> dict[str, Any]:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, "PNG")
    return {"created": 1, "data": [{"b64_json": base64.b64encode(buffer.getvalue()).decode()}]}


def result(**fields: Any) -> bytes:
    return json.dumps({"id": "batch_req_1", "custom_id": "hero", **fields}).encode()


def test_a_successful_line_has_its_images_body() -> None:
    parsed = parse_result_line(
        result(response={"status_code": 200, "request_id": "req_1", "body": png_payload()})
    )
    assert parsed.ok and parsed.error_message is None
    assert (parsed.custom_id, parsed.status_code, parsed.request_id) == ("hero", 200, "req_1")


def test_an_error_file_line_with_a_response_carries_the_api_message_and_code() -> None:
    body = {"error": {"message": "Rejected by the safety system.", "code": "moderation_blocked"}}
    parsed = parse_result_line(
        result(response={"status_code": 400, "request_id": "r", "body": body}, error=None)
    )
    assert not parsed.ok
    assert parsed.error_message == "HTTP 400 moderation_blocked: Rejected by the safety system."
    assert parsed.error_code == "moderation_blocked"
    assert parsed.body == body


def test_an_error_file_line_without_a_response_carries_its_error() -> None:
    parsed = parse_result_line(
        result(response=None, error={"code": "batch_expired", "message": "Too late."})
    )
    assert not parsed.ok
    assert (parsed.status_code, parsed.body) == (None, None)
    assert parsed.error_message == "batch_expired: Too late."


def test_a_non_2xx_response_without_a_message_still_fails() -> None:
    parsed = parse_result_line(result(response={"status_code": 500, "body": None}))
    assert not parsed.ok and parsed.error_message == "HTTP 500"


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b'{"custom_id": "hero", "response": {', "is not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "is not valid JSON"),
        (b"[1, 2]", "is not a JSON object"),
        (result(custom_id=None, response=None, error={"code": "x"}), "has no custom_id"),
        (result(response=None, error=None), "hero: has neither a response nor an error"),
        (result(response={"status_code": "200", "body": {}}), "hero: response is not {status_code"),
        (result(response={"status_code": 200, "body": []}), "hero: response is not {status_code"),
        (result(response=None, error="late"), "hero: has neither a response nor an error"),
    ],
)
def test_a_malformed_result_line_is_a_provider_error_quoting_it(raw: bytes, problem: str) -> None:
    with pytest.raises(ProviderError) as caught:
        parse_result_line(raw)
    assert str(caught.value).startswith(f"batch result line {problem}")
    assert "\n" not in str(caught.value)


def mock_client(handler: Callable[[httpx.Request], httpx.Response]) -> BatchClient:
    return BatchClient(
        "mock",
        settings("https://api.example.test/v1"),
        ENV,
        httpx.MockTransport(handler),
        backoff_s=0.0,
    )


class ChunkedBody(httpx.AsyncByteStream):
    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks

    async def __aiter__(self) -> Any:
        for chunk in self._chunks:
            yield chunk


def test_lines_are_split_across_chunks_crlf_and_a_missing_final_newline() -> None:
    chunks = [b'{"a":', b'1}\r\n\n{"b"', b":2}\n", b"   \n", b'{"c":3}']
    client = mock_client(lambda request: httpx.Response(200, stream=ChunkedBody(chunks)))

    async def read() -> list[bytes]:
        try:
            return [item async for item in client.stream_lines("file-1")]
        finally:
            await client.aclose()

    assert run_within(read(), "reading lines") == [b'{"a":1}', b'{"b":2}', b'{"c":3}']


def test_a_batch_answer_without_an_id_is_a_clear_error() -> None:
    client = mock_client(lambda request: httpx.Response(200, json={"status": "completed"}))

    async def retrieve() -> BatchInfo:
        try:
            return await client.retrieve("batch_1")
        finally:
            await client.aclose()

    with pytest.raises(ProviderError, match="mock: unexpected batch object: `id` is missing"):
        run_within(retrieve(), "retrieving")


def test_an_answer_that_is_not_json_is_retried_then_reported() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        return httpx.Response(200, text="<html><title>Gateway</title></html>")

    client = mock_client(handler)

    async def retrieve() -> BatchInfo:
        try:
            return await client.retrieve("batch_1")
        finally:
            await client.aclose()

    with pytest.raises(ProviderError, match="got a response with an HTML page: Gateway"):
        run_within(retrieve(), "retrieving")
    assert calls == ["/v1/batches/batch_1"] * 4


def test_a_line_with_the_wrong_image_format_is_refused_with_its_images_kept() -> None:
    client = mock_client(lambda request: httpx.Response(500))
    parsed = parse_result_line(result(response={"status_code": 200, "body": png_payload()}))

    async def decode() -> Any:
        try:
            return await client.generation(parsed, "jpeg", 1)
        finally:
            await client.aclose()

    with pytest.raises(ProviderError, match="image 1 is png but output_format is jpeg") as caught:
        run_within(decode(), "decoding")
    assert len(caught.value.paid) == 1
