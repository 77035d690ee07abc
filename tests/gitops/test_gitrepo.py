from __future__ import annotations

import subprocess
from pathlib import Path

from promptform.gitops.gitrepo import source_state


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, check=True, capture_output=True, text=True, timeout=60
    ).stdout.strip()


def test_outside_a_repository_there_is_no_source_commit(tmp_path: Path) -> None:
    assert source_state(tmp_path, ["prompts"]).commit is None


def test_source_commit_is_head_and_dirty_manifests_are_listed(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "a.yaml").write_text("prompt: a\n")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "first")
    head = git(tmp_path, "rev-parse", "HEAD")
    assert source_state(tmp_path, ["prompts"]) == source_state(tmp_path, ["prompts"])
    assert source_state(tmp_path, ["prompts"]).commit == head
    assert source_state(tmp_path, ["prompts"]).dirty_paths == ()
    (tmp_path / "prompts" / "a.yaml").write_text("prompt: b\n")
    (tmp_path / "prompts" / "new.yaml").write_text("prompt: c\n")
    (tmp_path / "elsewhere.txt").write_text("not watched\n")
    state = source_state(tmp_path, ["prompts"])
    assert state.commit == head
    assert sorted(state.dirty_paths) == ["prompts/a.yaml", "prompts/new.yaml"]


def test_a_repository_without_commits_has_no_source_commit(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    assert source_state(tmp_path, ["prompts"]).commit is None
