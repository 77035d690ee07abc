"""The runner's files: the event a step runs for, and the files it reads back."""

from __future__ import annotations

from pathlib import Path

import pytest

from promptform.gitops.actions_files import append_to, read_event
from promptform.gitops.github_api import GitHubError
from tests.support.cli import RunCli


def test_the_event_is_read_as_a_json_object(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = tmp_path / "event.json"
    event.write_text('{"number": 7}')
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(event))
    assert read_event("unused") == {"number": 7}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no event here"),
        ("not json", "cannot read the event file GITHUB_EVENT_PATH="),
        ("[1, 2]", "is not a JSON object"),
    ],
)
def test_a_missing_or_odd_event_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str | None, message: str
) -> None:
    if content is not None:
        event = tmp_path / "event.json"
        event.write_text(content)
        monkeypatch.setenv("GITHUB_EVENT_PATH", str(event))
    with pytest.raises(GitHubError, match=message):
        read_event("no event here")


def test_text_is_appended_with_a_final_newline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("before\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    append_to("GITHUB_STEP_SUMMARY", "one")
    append_to("GITHUB_STEP_SUMMARY", "two\n")
    assert summary.read_text() == "before\none\ntwo\n"


def test_outside_actions_nothing_is_written(tmp_path: Path) -> None:
    append_to("GITHUB_STEP_SUMMARY", "nowhere")  # the variable is unset: no error, no file
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_runner_file_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_OUTPUT", str(tmp_path))  # a folder: cannot be appended to
    with pytest.raises(GitHubError, match=r"cannot append to GITHUB_OUTPUT \("):
        append_to("GITHUB_OUTPUT", "generate=false")


def test_github_comment_refuses_an_event_that_is_not_an_object(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_cli: RunCli
) -> None:
    event = tmp_path / "event.json"
    event.write_text("[]")
    body = tmp_path / "body.md"
    body.write_text("hello")
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(event))
    monkeypatch.setenv("GITHUB_TOKEN", "t")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/art")

    result = run_cli("github", "comment", "--body-file", body)

    assert result.exit_code == 1
    assert "is not a JSON object" in result.stderr
