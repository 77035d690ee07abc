"""`plan` and `validate` with only global options are run by the entry point without click.

Whatever the entry point answers itself must be exactly what the CLI answers: the same output, the
same errors, the same exit code; anything else it must leave to the CLI.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from promptform import __main__ as entry_point
from promptform.cli import main as cli_main
from promptform.hook_commands import hook_options
from tests.support.plans import CONFIG

MakeProject = Callable[[dict[str, str | bytes]], Path]
Outcome = tuple[int, str, str]

OFFLINE = '[promptform]\ndefault_provider = "offline"\n'
FILES: dict[str, str | bytes] = {
    "promptform.toml": OFFLINE,
    "prompts/a.yaml": "name: a\nprompt: A fox.\n",
    "prompts/b.yaml": "name: b\nprompt: An owl.\n",
    "notes.txt": "not a directory\n",
    "configs/other.toml": CONFIG,
}


def through_entry_point(
    args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Outcome:
    capsys.readouterr()
    monkeypatch.setattr("sys.argv", ["promptform", *args])
    code = entry_point.main()
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def through_click(args: list[str], capsys: pytest.CaptureFixture[str]) -> Outcome:
    capsys.readouterr()
    code = cli_main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def project(make_project: MakeProject, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = make_project(FILES)
    monkeypatch.chdir(root)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    return root


HANDLED = [
    ["plan"],
    ["validate"],
    ["-q", "plan"],
    ["--quiet", "validate"],
    ["-v", "--verbose", "plan"],
    ["-q", "-v", "validate"],
    ["-C", "prompts/..", "plan"],
    ["--config", "configs/other.toml", "-q", "plan"],
    ["-C", "prompts", "--config", "configs/other.toml", "validate"],
    ["-C", "configs", "validate"],  # no project there: an error
]
LEFT_TO_CLICK = [
    ["plan", "-q"],
    ["plan", "--format", "json"],
    ["-vq", "plan"],
    ["-C", "missing", "plan"],
    ["-C", "notes.txt", "validate"],
    ["--config", "configs", "plan"],
    ["-C", "-q", "plan"],
    ["-C", ".", "-C", ".", "plan"],
    ["--", "plan"],
    ["-C"],
    ["render"],
    [],
]


@pytest.mark.parametrize("args", HANDLED + LEFT_TO_CLICK, ids=" ".join)
def test_the_entry_point_answers_as_the_cli_does(
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
) -> None:
    assert through_entry_point(args, monkeypatch, capsys) == through_click(args, capsys)


@pytest.mark.parametrize("command", ["plan", "validate"])
def test_errors_and_changes_are_reported_as_the_cli_reports_them(
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: str,
) -> None:
    (project / "prompts/c.yaml").write_text("name: c\nprompt: [unclosed\n")
    (project / "prompts/d.yaml").write_text("name: d\nprompt: '{{ missing }}'\n")
    failing = through_click([command], capsys)
    assert failing[0] == 1
    assert through_entry_point([command], monkeypatch, capsys) == failing
    (project / "prompts/c.yaml").unlink()
    (project / "prompts/d.yaml").unlink()
    (project / "promptform.toml").write_text(OFFLINE + "colour = 1\n")
    assert through_entry_point([command], monkeypatch, capsys) == through_click([command], capsys)


def test_only_plan_and_validate_after_global_options_are_answered_without_click(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert [args for args in HANDLED if hook_options(args) is None] == []
    assert [args for args in LEFT_TO_CLICK if hook_options(args) is not None] == []
    monkeypatch.setenv("_PROMPTFORM_COMPLETE", "bash_complete")
    assert hook_options(["plan"]) is None  # a shell asking click to complete the command line
