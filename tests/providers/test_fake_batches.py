"""The Files and Batch half of the loopback fake: its answers follow the official schemas, it
refuses what the API refuses, and it can be scripted in-process, over HTTP and from its CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from tests.support.fake_batches import expire
from tests.support.fake_images_api import (
    FakeImagesAPI,
    fake_images_api_fixture,  # noqa: F401  (provides the fake_images_api fixture)
    schema_violations,
)
from tests.support.waiting import LineReader

REPO = Path(__file__).resolve().parents[2]
LINE = {
    "custom_id": "hero",
    "method": "POST",
    "url": "/v1/images/generations",
    "body": {"model": "gpt-image-2", "prompt": "a lighthouse", "n": 2, "output_format": "webp"},
}


def upload(client: httpx.Client, base_url: str, purpose: str = "batch") -> httpx.Response:
    content = (json.dumps(LINE) + "\n").encode()
    return client.post(
        f"{base_url}/files",
        data={"purpose": purpose},
        files={"file": ("in.jsonl", content, "application/jsonl")},
    )


def create(client: httpx.Client, base_url: str, file_id: str, **changes: Any) -> httpx.Response:
    body = {
        "input_file_id": file_id,
        "endpoint": "/v1/images/generations",
        "completion_window": "24h",
        **changes,
    }
    return client.post(f"{base_url}/batches", json=body)


def test_every_answer_follows_the_official_schemas(fake_images_api: FakeImagesAPI) -> None:
    base = fake_images_api.base_url
    with httpx.Client(trust_env=False) as client:
        uploaded = upload(client, base).json()
        batches = [create(client, base, uploaded["id"]).json()]
        batches += [client.get(f"{base}/batches/{batches[0]['id']}").json() for _ in range(3)]
        listing = client.get(f"{base}/batches", params={"limit": 1}).json()
        output = client.get(f"{base}/files/{batches[-1]['output_file_id']}/content")

    assert schema_violations("OpenAIFile", uploaded) == []
    assert [batch["status"] for batch in batches] == [
        "validating",
        "in_progress",
        "finalizing",
        "completed",
    ]
    assert [problem for b in batches for problem in schema_violations("Batch", b)] == []
    assert schema_violations("ListBatchesResponse", listing) == []
    assert listing["has_more"] is False and listing["data"][0]["id"] == batches[0]["id"]
    result = json.loads(output.content)
    assert result["custom_id"] == "hero" and result["error"] is None
    body = result["response"]["body"]
    assert schema_violations("ImagesResponse", body) == []
    assert [item["b64_json"][:4] for item in body["data"]] == ["UklG", "UklG"]  # RIFF: webp
    assert fake_images_api.stats()["batch_output_bytes"] == len(output.content)


def test_uploads_need_purpose_batch_and_batches_a_valid_body(
    fake_images_api: FakeImagesAPI,
) -> None:
    base = fake_images_api.base_url
    with httpx.Client(trust_env=False) as client:
        wrong_purpose = upload(client, base, purpose="vision")
        file_id = upload(client, base).json()["id"]
        wrong_window = create(client, base, file_id, completion_window="1h")
        unknown_file = create(client, base, "file-nope")
        chat = create(client, base, file_id, endpoint="/v1/chat/completions")

    assert wrong_purpose.status_code == 400
    assert wrong_purpose.json()["error"]["param"] == "purpose"
    assert wrong_window.status_code == 400
    assert (
        "completion_window: '1h' is not one of ['24h']" in wrong_window.json()["error"]["message"]
    )
    assert unknown_file.status_code == 404
    assert chat.status_code == 400
    assert fake_images_api.stats()["batches_created"] == 0


def test_batch_calls_need_the_key_when_one_is_set(fake_images_api: FakeImagesAPI) -> None:
    fake_images_api.api_key = "sk-fake"
    with httpx.Client(trust_env=False) as client:
        refused = upload(client, fake_images_api.base_url)
        listing = client.get(
            f"{fake_images_api.base_url}/batches", headers={"authorization": "Bearer sk-fake"}
        )
    assert refused.status_code == 401
    assert listing.status_code == 200 and listing.json()["data"] == []
    assert fake_images_api.stats()["uploads"] == 1  # stored, then refused like the others


def test_scenarios_and_faults_can_be_scripted_over_http(fake_images_api: FakeImagesAPI) -> None:
    base = fake_images_api.base_url
    with httpx.Client(trust_env=False) as client:
        client.post(
            f"{fake_images_api.origin}/_fake/script",
            json={
                "batch_queue": [{"kind": "expire", "polls_per_step": 0, "done_lines": 0}],
                "batch_default": {"polls_per_step": 0, "fail_prompt_containing": "lighthouse"},
                "batch_faults": [{"kind": "error", "status": 503}],
            },
        )
        faulted = upload(client, base)
        file_id = upload(client, base).json()["id"]
        expired = create(client, base, file_id).json()
        refused = create(client, base, file_id).json()

    assert faulted.status_code == 503
    assert (expired["status"], expired["request_counts"]["failed"]) == ("expired", 1)
    assert (refused["status"], refused["request_counts"]["failed"]) == ("completed", 1)
    assert "output_file_id" not in refused and refused["error_file_id"]


def test_files_and_batches_are_removed_with_the_server(tmp_path: Path) -> None:
    with FakeImagesAPI() as server, httpx.Client(trust_env=False) as client:
        server.batches.default = expire(done_lines=1, polls_per_step=0)
        create(client, server.base_url, upload(client, server.base_url).json()["id"])
        stored = list(server._batch_files_dir().iterdir())
        assert len(stored) == 3  # the upload, the output file and the error file
    assert not any(path.exists() for path in stored)


def test_the_command_line_server_takes_polls_per_step() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.fake_images_api", "--batch-polls-per-step", "0"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    stdout = LineReader(process.stdout, "the fake images API's stdout")
    try:
        base_url = stdout.next_line("the FAKE_IMAGES_API= line").strip().split("=", 1)[1]
        with httpx.Client(trust_env=False) as client:
            batch = create(client, base_url, upload(client, base_url).json()["id"]).json()
        assert batch["status"] == "completed"
        process.terminate()
        assert process.wait(timeout=10) == 0
        stats = json.loads("\n".join(stdout.rest()))
        assert (stats["uploads"], stats["batches_created"]) == (1, 1)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
