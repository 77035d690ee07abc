"""The README's two commands and `.ci/run` stay in step: CI runs what the README spells."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
from readme_commands import readme_commands  # noqa: E402

README = (REPO / "README.md").read_text(encoding="utf-8")


def test_the_main_job_is_a_plain_install_that_runs_the_demo() -> None:
    main_job, _ = readme_commands(README)
    assert re.search(r"pip install -q -e \. ", main_job)  # no extras: what a user has
    assert main_job.endswith("scripts/demo.py")


def test_the_test_suite_installs_the_test_extras_and_runs_pytest() -> None:
    _, test_suite = readme_commands(README)
    assert "'.[test,lint]'" in test_suite
    assert test_suite.endswith("pytest -q")


def test_ci_runs_both_readme_commands_as_spelled_there() -> None:
    script = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    # .ci/run breaks each command over two lines before its `|| { ... }` failure message.
    joined = re.sub(r" \\\n\s+", " ", script)
    for command in readme_commands(README):
        assert f"\n{command} ||" in joined, command
    printed = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "readme_commands.py")],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.splitlines()
    assert printed == list(readme_commands(README))


@pytest.mark.parametrize(
    "section",
    [
        "## Try it\n\n```sh\none\n```\n\n## Next\n",
        "## Try it\n\n```sh\none\n```\n\n```sh\ntwo\n```\n\n```sh\nthree\n```\n",
        "## Try it\n\n```sh\none\nand more\n```\n\n```sh\ntwo\n```\n",
        "## Quick start\n\n```sh\none\n```\n\n```sh\ntwo\n```\n",
    ],
)
def test_a_readme_without_exactly_two_one_line_commands_is_refused(section: str) -> None:
    with pytest.raises(ValueError, match=r"README\.md"):
        readme_commands("# promptform\n\n" + section)


def test_blocks_after_the_section_do_not_count() -> None:
    text = "## Try it\n\n```sh\none\n```\n\n```sh\ntwo\n```\n\n## Later\n\n```sh\nthree\n```\n"
    assert readme_commands(text) == ("one", "two")
