"""Text printed into an Actions log cannot issue workflow commands."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from promptform.core.output import Output
from tests.support.cli import RunCli
from tests.support.files import MakeProject

STOP = re.compile(r"\A::stop-commands::([0-9a-f]{32})\n(.*)::\1::\n\Z", re.DOTALL)


@pytest.fixture
def in_actions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")


@pytest.mark.usefixtures("in_actions")
@pytest.mark.parametrize(
    "line", ["::add-mask::secret", "    ::error file=x::pwned", "\t::warning::x"]
)
def test_a_line_starting_with_a_command_is_wrapped_in_stop_commands(line: str) -> None:
    stdout = io.StringIO()
    text = f"plan:\n{line}\nend"

    Output(stdout=stdout).result(text)

    wrapped = STOP.match(stdout.getvalue())
    assert wrapped is not None
    assert wrapped.group(2) == text + "\n"


@pytest.mark.usefixtures("in_actions")
def test_each_wrap_has_a_token_of_its_own() -> None:
    tokens = set()
    for _ in range(5):
        stdout = io.StringIO()
        Output(stdout=stdout).result("::error::x")
        match = STOP.match(stdout.getvalue())
        assert match is not None
        tokens.add(match.group(1))
    assert len(tokens) == 5


@pytest.mark.usefixtures("in_actions")
def test_info_on_stderr_is_wrapped_too() -> None:
    stderr = io.StringIO()
    Output(stderr=stderr).info("  ::set-output name=x::y")
    assert STOP.match(stderr.getvalue())


@pytest.mark.usefixtures("in_actions")
def test_text_without_command_lines_is_printed_as_it_is() -> None:
    stdout = io.StringIO()
    Output(stdout=stdout).result("a prompt with :: inside\nand a line ending in ::")
    assert stdout.getvalue() == "a prompt with :: inside\nand a line ending in ::\n"


def test_outside_actions_nothing_is_wrapped() -> None:
    stdout = io.StringIO()
    Output(stdout=stdout).result("::error::x")
    assert stdout.getvalue() == "::error::x\n"


@pytest.mark.usefixtures("in_actions")
def test_a_regular_file_is_no_log_and_is_left_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "plan.md"
    with path.open("w") as stdout:
        Output(stdout=stdout).result("::error::x")
    assert path.read_text() == "::error::x\n"


def test_a_plan_quoting_a_command_line_from_a_prompt_cannot_run_it(
    make_project: MakeProject, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_project(
        {
            "promptform.toml": '[promptform]\ndefault_provider = "offline"\n',
            "prompts/evil.yaml": "prompt: |\n  A poster.\n  ::add-mask::everything\n",
        }
    )
    assert run_cli("-C", root, "apply", "--yes").exit_code == 0
    (root / "prompts/evil.yaml").write_text("prompt: |\n  A banner.\n  ::add-mask::everything\n")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")

    result = run_cli("-C", root, "plan")

    assert result.exit_code == 0, result.stderr
    wrapped = STOP.match(result.stdout)
    assert wrapped is not None, result.stdout
    # the unchanged line is diff context: indented, so the runner would have read it as a command
    assert re.search(r"^ +::add-mask::everything$", wrapped.group(2), re.MULTILINE)
