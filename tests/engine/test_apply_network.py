"""apply end to end over real HTTP: the loopback images API, the CLI run in-process.

Retries, failures, pacing, concurrency and request bodies are checked on the server's side: what it
received is what a real API would have billed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from syrupy.assertion import SnapshotAssertion

from promptform.state.lockfile import read_lockfile
from tests.support.apply import (
    Script,
    cards,
    locked_entries_match_disk,
    make_fake_project,
    png,
)
from tests.support.apply import keyed_fake_images_api as keyed_fake_images_api  # `server`
from tests.support.cli import CliResult, RunCli
from tests.support.fake_images_api import (
    Behaviour,
    FakeImagesAPI,
    api_error,
    dropped,
    html_error,
    malformed_json,
    moderation_blocked,
    quota_exhausted,
    rate_limited,
    server_error,
    timeout,
    truncated_base64,
    wrong_count,
    wrong_format,
)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "repo"


def apply(run_cli: RunCli, root: Path, *args: str) -> CliResult:
    result = run_cli("-C", root, "apply", "--yes", *args)
    assert "Traceback" not in result.stderr
    assert result.exit_code in (0, 1, 130), result.stderr  # 3 would be a crash
    return result


def one_target(root: Path, server: FakeImagesAPI, **settings: object) -> Path:
    return make_fake_project(root, server, {"prompts/hero.yaml": "prompt: A hero.\n"}, **settings)


# -- zero requests when there is nothing to do --------------------------------------------------


def test_noop_apply_sends_no_request(root: Path, server: FakeImagesAPI, run_cli: RunCli) -> None:
    make_fake_project(root, server, cards(3))
    assert apply(run_cli, root).exit_code == 0
    server.reset()
    result = apply(run_cli, root)
    assert result.exit_code == 0
    assert "No changes." in result.stdout
    assert server.requests == []


def test_noop_apply_needs_no_api_key(
    root: Path, server: FakeImagesAPI, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_fake_project(root, server, cards(2))
    apply(run_cli, root)
    server.reset()
    monkeypatch.delenv("FAKE_KEY")
    result = apply(run_cli, root)
    assert result.exit_code == 0, result.stderr
    assert server.requests == []


# -- retries --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "wait"),
    [(rate_limited(retry_after="1"), 1.0), (rate_limited(retry_after_ms="600"), 0.6)],
    ids=["retry-after", "retry-after-ms"],
)
def test_rate_limit_retry_header_is_honoured_then_the_target_succeeds(
    root: Path, server: FakeImagesAPI, run_cli: RunCli, header: Behaviour, wait: float
) -> None:
    one_target(root, server)
    server.behave = script = Script(header)
    result = apply(run_cli, root)
    assert result.exit_code == 0, result.stderr
    assert len(script.arrivals) == 2
    # The client must not come back before the server said; jittered backoff would be 0.25-0.5 s.
    assert wait - 0.05 <= script.gaps()[0] < wait + 5
    assert "hero" in read_lockfile(root / "promptform.lock").targets


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_error_is_retried_then_the_target_succeeds(
    root: Path, server: FakeImagesAPI, run_cli: RunCli, status: int
) -> None:
    one_target(root, server)
    server.behave = script = Script(server_error(status))
    result = apply(run_cli, root)
    assert result.exit_code == 0, result.stderr
    assert len(script.arrivals) == 2
    assert "retry 1 of hero in" in result.stderr


@pytest.mark.parametrize("fault", [timeout(sleep=5), dropped()], ids=["timeout", "dropped"])
def test_lost_response_is_retried_then_the_target_succeeds(
    root: Path, server: FakeImagesAPI, run_cli: RunCli, fault: Behaviour
) -> None:
    one_target(root, server, timeout_s=0.5)
    server.behave = script = Script(fault)
    result = apply(run_cli, root)
    assert result.exit_code == 0, result.stderr
    assert len(script.arrivals) == 2
    assert "hero" in read_lockfile(root / "promptform.lock").targets


@pytest.mark.parametrize(
    "refusal",
    [
        api_error(400, "invalid_value", "Invalid value for size."),
        api_error(401, "invalid_api_key", "Incorrect API key provided."),
        api_error(403, "forbidden", "Project does not have access to model gpt-image-2."),
        api_error(404, "model_not_found", "The model gpt-image-2 does not exist."),
        quota_exhausted(),
    ],
    ids=["400", "401", "403", "404", "429-insufficient_quota"],
)
def test_refusal_is_not_retried(
    root: Path, server: FakeImagesAPI, run_cli: RunCli, refusal: Behaviour
) -> None:
    one_target(root, server)
    server.behave = script = Script(refusal)
    result = apply(run_cli, root)
    assert result.exit_code == 1
    assert len(script.arrivals) == 1
    assert refusal.message is not None and refusal.message in result.stderr
    assert not (root / "promptform.lock").exists()


def test_exhausted_retries_are_reported_as_a_failure(
    root: Path, server: FakeImagesAPI, run_cli: RunCli
) -> None:
    one_target(root, server, max_retries=2)
    server.behave = script = Script(then=server_error(503))
    result = apply(run_cli, root)
    assert result.exit_code == 1
    assert len(script.arrivals) == 3  # the first attempt and two retries
    assert "1 target(s) failed:\n  hero: fake: HTTP 503" in result.stderr


# -- a blocked prompt fails alone ----------------------------------------------------------------


def _block_the_owl(request: object) -> Behaviour | None:
    return moderation_blocked() if "owl" in getattr(request, "prompt", "") else None


def zoo(root: Path, server: FakeImagesAPI) -> Path:
    prompts = "name: zoo\nmatrix:\n  animal: [fox, owl, cat]\nprompt: A {{ animal }}.\n"
    return make_fake_project(root, server, {"prompts/zoo.yaml": prompts})


def test_moderation_block_fails_that_target_and_the_others_complete(
    root: Path, server: FakeImagesAPI, run_cli: RunCli
) -> None:
    zoo(root, server)
    server.behave = _block_the_owl
    result = apply(run_cli, root)
    assert result.exit_code == 1
    assert (
        "1 target(s) failed:\n  zoo[animal=owl]: fake: HTTP 400 moderation_blocked: "
        "Your request was rejected as a result of our safety system." in result.stderr
    )
    assert sorted(locked_entries_match_disk(root)) == ["zoo[animal=cat]", "zoo[animal=fox]"]
    assert len(server.image_requests) == 3  # a moderation block is final: no retry


def test_next_apply_retries_only_the_failed_target(
    root: Path, server: FakeImagesAPI, run_cli: RunCli
) -> None:
    zoo(root, server)
    server.behave = _block_the_owl
    apply(run_cli, root)
    server.behave = None
    server.reset()
    result = apply(run_cli, root)
    assert result.exit_code == 0, result.stderr
    assert [request.prompt for request in server.image_requests] == ["A owl."]
    assert len(locked_entries_match_disk(root)) == 3


# -- damaged responses ---------------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 3])
def test_an_answer_with_the_wrong_number_of_images_keeps_every_image_it_brought(
    root: Path, server: FakeImagesAPI, run_cli: RunCli, count: int
) -> None:
    make_fake_project(root, server, {"prompts/hero.yaml": "prompt: A hero.\nn: 2\n"})
    server.behave = script = Script(wrong_count(count))

    result = apply(run_cli, root)

    assert result.exit_code == 1
    assert len(script.arrivals) == 1  # not retried: the same request would answer the same way
    assert f"asked for 2 images but got {count}" in result.stderr
    kept = [
        path
        for path in (root / ".promptform/rescued").rglob("*")
        if path.is_file() and path.name != "rescued.json"
    ]
    assert len(kept) == count  # billed, so kept
    assert not (root / "promptform.lock").exists()


@pytest.mark.parametrize(
    "fault",
    [malformed_json(), html_error(502), truncated_base64(), truncated_base64(valid_padding=True)],
    ids=["malformed-json", "html-502", "truncated-base64", "truncated-image"],
)
def test_damaged_response_is_retried_then_the_target_succeeds(
    root: Path, server: FakeImagesAPI, run_cli: RunCli, fault: Behaviour
) -> None:
    one_target(root, server)
    server.behave = script = Script(fault)
    result = apply(run_cli, root)
    assert result.exit_code == 0, result.stderr
    assert len(script.arrivals) == 2
    locked_entries_match_disk(root)


def test_html_error_page_is_summarised_by_its_title(
    root: Path, server: FakeImagesAPI, run_cli: RunCli
) -> None:
    one_target(root, server, max_retries=0)
    server.behave = Script(html_error(502))
    result = apply(run_cli, root)
    assert result.exit_code == 1
    assert "hero: fake: HTTP 502 with an HTML page: 502 Bad Gateway" in result.stderr
    assert "<html>" not in result.stderr


def test_wrong_image_format_fails_and_keeps_the_paid_bytes(
    root: Path, server: FakeImagesAPI, run_cli: RunCli
) -> None:
    one_target(root, server)
    server.behave = script = Script(wrong_format("jpeg"))
    result = apply(run_cli, root)
    assert result.exit_code == 1
    assert len(script.arrivals) == 1  # the same request would come back in the same format
    assert "image 1 is jpeg but output_format is png" in result.stderr
    rescued = list((root / ".promptform/rescued").rglob("*"))
    kept = [path for path in rescued if path.is_file() and path.name != "rescued.json"]
    assert len(kept) == 1 and kept[0].read_bytes().startswith(b"\xff\xd8\xff")
    assert (
        "paid-for images that could not be recorded were kept in .promptform/rescued/"
        in result.stderr
    )
    assert not (root / "promptform.lock").exists()
    assert not (root / "generated/hero-1.png").exists()


# -- pacing ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("concurrency", [1, 3])
def test_requests_in_flight_never_exceed_the_concurrency(
    root: Path, server: FakeImagesAPI, run_cli: RunCli, concurrency: int
) -> None:
    make_fake_project(root, server, cards(8))
    server.behave = script = Script(hold=0.1)
    result = apply(run_cli, root, "--concurrency", str(concurrency))
    assert result.exit_code == 0, result.stderr
    assert len(script.arrivals) == 8
    assert script.most_at_once == concurrency


def test_rate_limited_server_still_gets_every_target(
    root: Path, server: FakeImagesAPI, run_cli: RunCli
) -> None:
    make_fake_project(root, server, cards(16))
    server.rate_limit(per_second=20)
    result = apply(run_cli, root, "--concurrency", "8")
    assert result.exit_code == 0, result.stderr
    assert server.rate_limited_count > 0  # the limit was really hit
    assert len(locked_entries_match_disk(root)) == 16
    assert server.generations == 16


# -- edits and request bodies --------------------------------------------------------------------


EDIT_PROJECT: dict[str, str | bytes] = {
    "refs/logo.png": png((200, 30, 30)),
    "refs/texture.png": png((30, 200, 30)),
    "prompts/base.yaml": "prompt: A plain mug.\n",
    "prompts/mug.yaml": "images: [refs/logo.png, refs/texture.png]\nprompt: A mug with the logo.\n",
    "prompts/chained.yaml": (
        "images: [generated/base-1.png]\nmask: refs/logo.png\nprompt: The mug, but blue.\n"
    ),
}


def test_edit_sends_the_exact_bytes_of_its_reference_images(
    root: Path, server: FakeImagesAPI, run_cli: RunCli
) -> None:
    make_fake_project(root, server, EDIT_PROJECT)
    assert apply(run_cli, root).exit_code == 0
    edits = {r.prompt: r for r in server.image_requests if r.path.endswith("/edits")}
    mug = edits["A mug with the logo."]
    assert [(part.field, part.filename, part.data) for part in mug.files] == [
        ("image[]", "logo.png", (root / "refs/logo.png").read_bytes()),
        ("image[]", "texture.png", (root / "refs/texture.png").read_bytes()),
    ]
    chained = edits["The mug, but blue."]
    # The upstream's fresh output, not whatever was on disk at plan time (nothing was).
    assert {part.field: part.data for part in chained.files} == {
        "image[]": (root / "generated/base-1.png").read_bytes(),
        "mask": (root / "refs/logo.png").read_bytes(),
    }


def test_changed_reference_image_replans_the_target_as_replace(
    root: Path, server: FakeImagesAPI, run_cli: RunCli
) -> None:
    make_fake_project(root, server, EDIT_PROJECT)
    apply(run_cli, root)
    (root / "refs/texture.png").write_bytes(png((0, 0, 255)))
    plan = json.loads(run_cli("-C", root, "plan", "--format", "json").stdout)
    actions = {change["address"]: change["action"] for change in plan["changes"]}
    assert {address: action for address, action in actions.items() if action != "no-op"} == {
        "mug": "replace"
    }
    server.reset()
    assert apply(run_cli, root).exit_code == 0
    (edit,) = server.image_requests
    assert edit.files[1].data == png((0, 0, 255))


def test_every_request_body_matches_the_openapi_schema(
    root: Path, server: FakeImagesAPI, run_cli: RunCli
) -> None:
    files = dict(EDIT_PROJECT)
    files["prompts/options.yaml"] = (
        "n: 2\nquality: high\nsize: 1536x1024\nbackground: opaque\noutput_format: jpeg\n"
        "output_compression: 80\nmoderation: low\nprompt: Every option at once.\n"
    )
    make_fake_project(root, server, files)
    result = apply(run_cli, root)
    assert result.exit_code == 0, result.stderr
    paths = sorted(request.path for request in server.image_requests)
    assert paths.count("/v1/images/edits") == 2 and paths.count("/v1/images/generations") == 2
    assert server.violations == []


# -- what the run prints ------------------------------------------------------------------------


def _normalised(text: str, root: Path) -> str:
    return re.sub(r"in \d+\.\d+s", "in N.Ns", text.replace(str(root), "<repo>"))


# A chain, so the order of the lines is fixed: each target edits its upstream's output.
CHAIN: dict[str, str | bytes] = {
    "prompts/chain.yaml": """
        name: sketch
        prompt: A pencil sketch of a lighthouse.
        ---
        name: painted
        images: [generated/sketch-1.png]
        prompt: Paint the sketch in watercolour.
        ---
        name: owl
        images: [generated/painted-1.png]
        prompt: Add an owl on the railing.
        ---
        name: framed
        images: [generated/owl-1.png]
        prompt: Put it in a gold frame.
        """,
}


def test_progress_without_a_terminal_is_one_line_per_target(
    root: Path, server: FakeImagesAPI, run_cli: RunCli, snapshot: SnapshotAssertion
) -> None:
    make_fake_project(root, server, CHAIN)
    server.behave = _block_the_owl
    result = apply(run_cli, root)
    lines = [line for line in result.stderr.splitlines() if line.startswith("[")]
    assert len(lines) == 4
    assert _normalised("\n".join(lines), root) == snapshot


def test_summary_lists_counts_failures_and_where_things_are(
    root: Path, server: FakeImagesAPI, run_cli: RunCli, snapshot: SnapshotAssertion
) -> None:
    make_fake_project(root, server, CHAIN)
    server.behave = _block_the_owl
    result = apply(run_cli, root)
    summary = result.stderr[result.stderr.index("Apply ") :]
    assert _normalised(summary, root) == snapshot


def test_retry_is_logged_on_its_own_uncounted_line(
    root: Path, server: FakeImagesAPI, run_cli: RunCli
) -> None:
    one_target(root, server)
    server.behave = Script(rate_limited(retry_after_ms="10"))
    result = apply(run_cli, root)
    assert re.search(
        r"^ {8}retry 1 of hero in 0\.0s: fake: HTTP 429 rate_limit_exceeded: Rate limit reached",
        result.stderr,
        re.MULTILINE,
    )
    assert "[1/1] created hero: 1 image, $0.006 (total 1 image, $0.006)" in result.stderr
