"""The loopback fake of the images API: schema checks, recording, images and scripted faults."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from promptform.core.images import sniff
from tests.support.fake_images_api import (
    FakeImagesAPI,
    dropped,
    fake_images_api_fixture,  # noqa: F401  (provides the fake_images_api fixture)
    moderation_blocked,
    ok,
    schema_violations,
    server_error,
    truncated_base64,
)
from tests.support.waiting import LineReader, join_thread, wait_for

REPO = Path(__file__).resolve().parents[2]
BODY = {"model": "gpt-image-2", "prompt": "a lighthouse", "n": 1}


def post(server: FakeImagesAPI, body: object, path: str = "images/generations") -> httpx.Response:
    with httpx.Client(trust_env=False) as client:
        return client.post(f"{server.base_url}/{path}", json=body)


def test_a_valid_generation_gets_real_images_and_a_schema_valid_response(
    fake_images_api: FakeImagesAPI,
) -> None:
    response = post(fake_images_api, {**BODY, "n": 2, "output_format": "webp", "size": "1024x1024"})
    assert response.status_code == 200
    payload = response.json()
    assert schema_violations("ImagesResponse", payload) == []
    images = [base64.b64decode(item["b64_json"]) for item in payload["data"]]
    assert [sniff(image).format for image in images] == ["webp", "webp"]
    assert images[0] != images[1]
    assert fake_images_api.generations == 1
    assert fake_images_api.images_served == 2
    assert fake_images_api.violations == []


@pytest.mark.parametrize(
    ("body", "violation"),
    [
        ({"model": "gpt-image-2"}, "(body): 'prompt' is a required property"),
        ({**BODY, "n": 0}, "n: 0 is less than the minimum of 1"),
        ({**BODY, "quality": None}, "quality: None is not one of"),
        ({**BODY, "colour": "red"}, "colour: not a field of CreateImageRequest"),
    ],
)
def test_a_body_outside_the_schema_is_recorded_and_refused(
    fake_images_api: FakeImagesAPI, body: dict[str, object], violation: str
) -> None:
    response = post(fake_images_api, body)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert any(
        found.startswith(f"/v1/images/generations: {violation}")
        for found in fake_images_api.violations
    )


def test_multipart_edits_are_parsed_byte_for_byte_and_checked(
    fake_images_api: FakeImagesAPI,
) -> None:
    png = base64.b64decode(post(fake_images_api, BODY).json()["data"][0]["b64_json"])
    binary = png + b"\r\n--not-a-boundary\r\n\x00\xff"  # bytes that look like multipart syntax
    with httpx.Client(trust_env=False) as client:
        response = client.post(
            f"{fake_images_api.base_url}/images/edits",
            data={"model": "gpt-image-2", "prompt": "add a boat", "n": "2"},
            files=[
                ("image[]", ("a.png", binary, "image/png")),
                ("mask", ("m.png", png, "image/png")),
            ],
        )
    assert response.status_code == 200, response.text
    edit = fake_images_api.image_requests[-1]
    assert edit.body == {"model": "gpt-image-2", "prompt": "add a boat", "n": "2"}
    assert [(part.field, part.filename, part.data) for part in edit.files] == [
        ("image[]", "a.png", binary),
        ("mask", "m.png", png),
    ]
    assert fake_images_api.violations == []


def test_multipart_edits_with_wrong_parts_are_refused(fake_images_api: FakeImagesAPI) -> None:
    with httpx.Client(trust_env=False) as client:
        response = client.post(
            f"{fake_images_api.base_url}/images/edits",
            data={"prompt": "x", "n": "two"},
            files=[("image[]", ("a.png", b"GIF89a", "image/png"))],
        )
    assert response.status_code == 400
    assert fake_images_api.violations == [
        "/v1/images/edits: image[]: 'a.png' is not a PNG, JPEG or WEBP image",
        "/v1/images/edits: n: 'two' is not of type 'integer'",
    ]


def test_queued_behaviours_come_first_then_the_default(fake_images_api: FakeImagesAPI) -> None:
    fake_images_api.enqueue(server_error(503), moderation_blocked())
    fake_images_api.default = ok(revised_prompt="a lighthouse at dusk")
    statuses = [post(fake_images_api, BODY).status_code for _ in range(3)]
    assert statuses == [503, 400, 200]
    assert [r.behaviour for r in fake_images_api.image_requests] == ["error", "error", "ok"]
    assert fake_images_api.generations == 1


def test_a_behaviour_hook_can_pick_by_request(fake_images_api: FakeImagesAPI) -> None:
    fake_images_api.behave = lambda request: (
        moderation_blocked() if "storm" in request.prompt else None
    )
    assert post(fake_images_api, {**BODY, "prompt": "storm"}).status_code == 400
    assert post(fake_images_api, BODY).status_code == 200


def test_rate_limit_mode_answers_429_with_retry_headers(fake_images_api: FakeImagesAPI) -> None:
    fake_images_api.rate_limit(per_second=2)
    first, second = post(fake_images_api, BODY), post(fake_images_api, BODY)
    assert first.status_code == 200
    assert second.status_code == 429
    assert 0 < int(second.headers["retry-after-ms"]) <= 500
    assert second.headers["retry-after"] == "1"
    assert fake_images_api.rate_limited_count == 1


def test_truncated_base64_is_cut_inside_a_quantum_unless_asked(
    fake_images_api: FakeImagesAPI,
) -> None:
    fake_images_api.enqueue(truncated_base64(), truncated_base64(valid_padding=True))
    invalid = post(fake_images_api, BODY).json()["data"][0]["b64_json"]
    valid = post(fake_images_api, BODY).json()["data"][0]["b64_json"]
    assert len(invalid) % 4 != 0
    assert len(valid) % 4 == 0
    assert base64.b64decode(valid).startswith(b"\x89PNG")


def test_images_can_be_padded_for_memory_benchmarks() -> None:
    with FakeImagesAPI(image_bytes=300_000) as server:
        for fmt in ("png", "jpeg"):
            data = base64.b64decode(
                post(server, {**BODY, "output_format": fmt}).json()["data"][0]["b64_json"]
            )
            assert 300_000 <= len(data) < 301_000
            assert sniff(data).format == fmt


def test_stopping_closes_idle_keep_alive_connections_promptly() -> None:
    server = FakeImagesAPI().start()
    with httpx.Client(trust_env=False) as client:
        assert client.post(f"{server.base_url}/images/generations", json=BODY).status_code == 200
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 2


def test_stopping_wakes_a_request_held_by_a_timeout_behaviour() -> None:
    server = FakeImagesAPI(default=dropped(latency=60)).start()
    with httpx.Client(trust_env=False, timeout=30) as client:
        errors: list[BaseException] = []

        def call() -> None:
            try:
                client.post(f"{server.base_url}/images/generations", json=BODY)
            except httpx.HTTPError as exc:
                errors.append(exc)

        thread = threading.Thread(target=call)
        thread.start()
        wait_for(lambda: bool(server.requests), what="the request to reach the fake images API")
        started = time.monotonic()
        server.stop()
        join_thread(thread, "the request held by the stopped server")
        assert time.monotonic() - started < 2
        assert errors


def test_standalone_server_serves_reports_stats_and_stops_on_sigterm() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.fake_images_api", "--latency", "0"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    stdout = LineReader(process.stdout, "the fake images API's stdout")
    try:
        line = stdout.next_line("the FAKE_IMAGES_API= line").strip()
        assert line.startswith("FAKE_IMAGES_API=http://127.0.0.1:")
        base_url = line.split("=", 1)[1]
        origin = base_url.removesuffix("/v1")
        with httpx.Client(trust_env=False) as client:
            scripted = client.post(
                f"{origin}/_fake/script", json={"queue": [{"kind": "error", "status": 500}]}
            )
            assert scripted.json() == {"queued": 1}
            assert client.post(f"{base_url}/images/generations", json=BODY).status_code == 500
            assert client.post(f"{base_url}/images/generations", json=BODY).status_code == 200
            stats = client.get(f"{origin}/_fake/stats").json()
        assert stats == {
            "requests": 2,
            "generations": 1,
            "images": 1,
            "rate_limited": 0,
            "violations": [],
            "uploads": 0,
            "batches_created": 0,
            "batch_polls": 0,
            "batch_cancels": 0,
            "batch_output_bytes": 0,
        }
        process.terminate()
        assert process.wait(timeout=10) == 0
        assert json.loads("\n".join(stdout.rest()))["generations"] == 1
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
