"""`github comment` against the fake GitHub API: one sticky comment per PR, and the job summary."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from tests.support.cli import RunCli
from tests.support.fake_github_api import TOKEN, FakeGitHub

MARKER = "<!-- promptform:plan -->"


@pytest.fixture
def event(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_github: FakeGitHub) -> FakeGitHub:
    """A pull_request event for PR #12, as GitHub Actions writes it."""
    path = tmp_path / "event.json"
    path.write_text(json.dumps({"action": "synchronize", "pull_request": {"number": 12}}))
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(path))
    return fake_github


def body_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "plan.md"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_first_run_creates_the_comment(
    event: FakeGitHub, run_cli: RunCli, tmp_path: Path
) -> None:
    result = run_cli(
        "github", "comment", "--body-file", body_file(tmp_path, "Plan: 1 to create.\n")
    )
    assert result.exit_code == 0, result.stderr
    [comment] = event.comments[12]
    assert comment["body"] == f"{MARKER}\nPlan: 1 to create.\n"
    assert result.stdout == f"created comment on #12: {comment['html_url']}\n"


def test_a_second_run_edits_the_same_comment(
    event: FakeGitHub, run_cli: RunCli, tmp_path: Path
) -> None:
    event.add_comment(12, "Looks good to me", author="bob")
    run_cli("github", "comment", "--body-file", body_file(tmp_path, "Plan: 1 to create.\n"))
    result = run_cli(
        "github", "comment", "--body-file", body_file(tmp_path, "Plan: 2 to create.\n")
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("updated comment on #12: ")
    bodies = [comment["body"] for comment in event.comments[12]]
    assert bodies == ["Looks good to me", f"{MARKER}\nPlan: 2 to create.\n"]
    assert len(event.calls("POST")) == 1
    assert len(event.calls("PATCH")) == 1


def test_in_actions_a_persons_comment_carrying_the_marker_is_left_alone(
    event: FakeGitHub, run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    event.add_comment(12, f"{MARKER}\nfake plan: nothing to see", author="mallory")
    run_cli("github", "comment", "--body-file", body_file(tmp_path, "Plan: 1 to create.\n"))
    result = run_cli(
        "github", "comment", "--body-file", body_file(tmp_path, "Plan: 2 to create.\n")
    )
    assert result.exit_code == 0, result.stderr
    bodies = [(c["user"]["login"], c["body"]) for c in event.comments[12]]
    assert bodies == [
        ("mallory", f"{MARKER}\nfake plan: nothing to see"),
        ("github-actions[bot]", f"{MARKER}\nPlan: 2 to create.\n"),
    ]


def test_an_unchanged_plan_is_not_edited_again(
    event: FakeGitHub, run_cli: RunCli, tmp_path: Path
) -> None:
    plan = body_file(tmp_path, "Plan: 1 to create.\n")
    run_cli("github", "comment", "--body-file", plan)
    result = run_cli("github", "comment", "--body-file", plan)
    assert result.stdout.startswith("unchanged comment on #12")
    assert event.calls("PATCH") == []


def test_the_marked_comment_is_found_on_a_later_page(
    event: FakeGitHub, run_cli: RunCli, tmp_path: Path
) -> None:
    event.page_size = 2
    for index in range(5):
        event.add_comment(12, f"discussion {index}")
    sticky = event.add_comment(12, f"{MARKER}\nold plan\n", author="github-actions")
    run_cli("github", "comment", "--body-file", body_file(tmp_path, "new plan\n"))
    assert event.calls("POST") == []
    assert sticky["body"] == f"{MARKER}\nnew plan\n"
    assert len(event.comments[12]) == 6


def test_a_different_marker_keeps_a_separate_comment(
    event: FakeGitHub, run_cli: RunCli, tmp_path: Path
) -> None:
    plan = body_file(tmp_path, "text\n")
    run_cli("github", "comment", "--body-file", plan)
    run_cli("github", "comment", "--body-file", plan, "--marker", "promptform:plan:staging")
    assert [c["body"].splitlines()[0] for c in event.comments[12]] == [
        MARKER,
        "<!-- promptform:plan:staging -->",
    ]


def test_the_body_can_come_from_stdin(
    event: FakeGitHub, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("from a pipe\n"))
    assert run_cli("github", "comment").exit_code == 0
    assert event.comments[12][0]["body"] == f"{MARKER}\nfrom a pipe\n"


def test_the_body_is_appended_to_the_job_summary(
    event: FakeGitHub, run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("# Earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    run_cli("github", "comment", "--body-file", body_file(tmp_path, "Plan: 1 to create."))
    assert summary.read_text() == "# Earlier step\nPlan: 1 to create.\n"


def test_an_oversized_body_is_truncated_to_fit_a_comment(
    event: FakeGitHub, run_cli: RunCli, tmp_path: Path
) -> None:
    run_cli("github", "comment", "--body-file", body_file(tmp_path, "x" * 70_000))
    body = event.comments[12][0]["body"]
    assert len(body) == 65_536
    assert body.endswith("the full text is in the job summary)\n")


def test_pr_option_overrides_the_event(
    fake_github: FakeGitHub, run_cli: RunCli, tmp_path: Path
) -> None:
    assert (
        run_cli("github", "comment", "--pr", "5", "--body-file", body_file(tmp_path, "x")).exit_code
        == 0
    )
    assert list(fake_github.comments) == [5]


def test_without_an_event_the_number_is_asked_for(
    fake_github: FakeGitHub, run_cli: RunCli, tmp_path: Path
) -> None:
    result = run_cli("github", "comment", "--body-file", body_file(tmp_path, "x"))
    assert result.exit_code == 1
    assert result.stderr == "error: no pull request number: pass --pr or set GITHUB_EVENT_PATH\n"


def test_a_push_event_has_no_pull_request_number(
    fake_github: FakeGitHub, run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "event.json"
    path.write_text(json.dumps({"ref": "refs/heads/main"}))
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(path))
    result = run_cli("github", "comment", "--body-file", body_file(tmp_path, "x"))
    assert result.exit_code == 1
    assert "the event has no pull request number" in result.stderr


def test_a_read_only_token_is_one_clear_line(
    event: FakeGitHub, run_cli: RunCli, tmp_path: Path
) -> None:
    event.fail("/comments", 403)
    result = run_cli("github", "comment", "--body-file", body_file(tmp_path, "x"))
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert "403 for GET /repos/acme/images/issues/12/comments" in result.stderr
    assert "pull-requests: read to verify, write to comment" in result.stderr
    assert TOKEN not in result.stderr


def test_a_missing_body_file_is_one_clear_line(
    event: FakeGitHub, run_cli: RunCli, tmp_path: Path
) -> None:
    result = run_cli("github", "comment", "--body-file", tmp_path / "absent.md")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot read the comment body ")
    assert event.requests == []
