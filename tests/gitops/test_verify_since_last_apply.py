"""verify-approval --since-last-apply: an apply of the branch's tip checks every commit it acts on.

Real git history on disk, the fake GitHub API over loopback.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.cli import CliResult
from tests.support.fake_github_api import FakeGitHub

RunCli = Callable[..., CliResult]


class History:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.git("init", "-q", "-b", "main")
        self.commit("prompts/a.yaml", "prompt: A fox.\n", "initial manifests")

    def git(self, *args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=self.root, check=True, capture_output=True, text=True
        ).stdout.strip()

    def commit(self, path: str, content: str, message: str) -> str:
        file = self.root / path
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(content)
        self.git("add", path)
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD")

    def result_commit(self, source: str, path: str = "generated/a-1.png") -> str:
        # What `apply --commit` writes: only outputs and the lockfile, with the source trailer.
        self.commit(path, "image bytes\n", "placeholder")
        self.commit("promptform.lock", '{"targets": {}, "version": 1}\n', "placeholder")
        self.git("reset", "-q", "--soft", "HEAD~2")
        message = f"promptform apply for {source[:12]}: a [skip ci]\n\nSource-Commit: {source}\n"
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD")


@pytest.fixture
def history(tmp_path: Path) -> History:
    return History(tmp_path)


def approved(github: FakeGitHub, number: int, sha: str) -> None:
    github.add_pull(number, "alice", sha, sha, commits=(sha,))
    github.add_review(number, "bob", "APPROVED", sha)
    github.grant("bob")


def test_every_commit_since_the_last_apply_is_verified(
    history: History, fake_github: FakeGitHub, run_cli: RunCli
) -> None:
    first = history.commit("prompts/a.yaml", "prompt: A red fox.\n", "red fox")
    history.result_commit(first)
    second = history.commit("prompts/b.yaml", "prompt: An owl.\n", "owl")
    third = history.commit("templates/style.j2", "Watercolour.\n", "style")
    for number, sha in ((1, first), (2, second), (3, third)):
        approved(fake_github, number, sha)

    result = run_cli("-C", history.root, "verify-approval", "--since-last-apply")

    assert result.exit_code == 0, result.stderr
    verified = [line.split(":")[1].strip() for line in result.stdout.splitlines()]
    assert verified == [third[:12], second[:12]]  # not the applied one, not the result commit


def test_an_unapproved_commit_behind_the_tip_refuses_the_apply(
    history: History, fake_github: FakeGitHub, run_cli: RunCli
) -> None:
    first = history.commit("prompts/a.yaml", "prompt: A red fox.\n", "red fox")
    history.result_commit(first)
    sneaked = history.commit("prompts/b.yaml", "prompt: Something unreviewed.\n", "direct push")
    tip = history.commit("prompts/c.yaml", "prompt: A wren.\n", "wren")
    approved(fake_github, 2, tip)

    result = run_cli("-C", history.root, "verify-approval", "--since-last-apply")

    assert result.exit_code == 1
    assert f"{sneaked[:12]} did not come from a pull request merged into main" in result.stderr


def test_a_commit_that_only_claims_to_be_a_result_is_still_verified(
    history: History, fake_github: FakeGitHub, run_cli: RunCli
) -> None:
    first = history.commit("prompts/a.yaml", "prompt: A red fox.\n", "red fox")
    history.result_commit(first)
    forged = history.commit(
        "prompts/a.yaml",
        "prompt: Unreviewed.\n",
        f"promptform apply for {first[:12]}: a\n\nSource-Commit: {first}\n",
    )

    result = run_cli("-C", history.root, "verify-approval", "--since-last-apply")

    assert result.exit_code == 1
    assert f"{forged[:12]} did not come from a pull request merged into main" in result.stderr


def test_without_an_earlier_apply_only_the_tip_is_verified(
    history: History, fake_github: FakeGitHub, run_cli: RunCli
) -> None:
    tip = history.commit("prompts/b.yaml", "prompt: An owl.\n", "owl")
    approved(fake_github, 5, tip)

    result = run_cli("-C", history.root, "verify-approval", "--since-last-apply")

    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"ok: {tip[:12]}: pull request #5 was approved by bob\n"


def test_a_shallow_clone_is_refused_rather_than_checked_partly(
    history: History, fake_github: FakeGitHub, run_cli: RunCli, tmp_path: Path
) -> None:
    history.commit("prompts/b.yaml", "prompt: An owl.\n", "owl")
    shallow = tmp_path / "shallow"
    subprocess.run(
        ["git", "clone", "-q", "--depth", "1", f"file://{history.root}", str(shallow)], check=True
    )

    result = run_cli("-C", shallow, "verify-approval", "--since-last-apply")

    assert result.exit_code == 1
    assert "shallow clone" in result.stderr
    assert "fetch-depth: 0" in result.stderr
