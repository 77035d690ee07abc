from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from promptform.gitops.gitrepo import GitHistoryError, commit_paths, resolve_commit, source_state
from tests.support.files import write_files
from tests.support.git import commit_all, init_repo


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


def test_commit_paths_records_a_file_that_became_a_directory(tmp_path: Path) -> None:
    # The lock of version 1 becoming its directory of shards, beside an output with a non-ASCII
    # name, and a change the user staged that must stay out of the commit.
    repo = init_repo(tmp_path / "repo")
    write_files(repo, {"promptform.lock": "{}\n", "notes.txt": "a\n", "generated/old.png": "o"})
    commit_all(repo, "version 1")
    (repo / "promptform.lock").unlink()
    write_files(repo, {"promptform.lock/a.yaml.json": "{}\n", "generated/ü.png": "new"})
    (repo / "generated/old.png").unlink()
    (repo / "notes.txt").write_text("staged\n")
    git(repo, "add", "notes.txt")
    paths = [repo / "promptform.lock", repo / "generated/ü.png", repo / "generated/old.png"]

    assert commit_paths(repo, paths, "results") is not None

    committed = git(repo, "ls-tree", "-r", "--name-only", "-z", "HEAD").split("\0")
    assert [name for name in committed if name] == [
        "generated/ü.png",
        "notes.txt",
        "promptform.lock/a.yaml.json",
    ]
    assert git(repo, "status", "--porcelain") == "M  notes.txt"


def test_resolve_commit_refuses_a_name_that_several_refs_share(tmp_path: Path) -> None:
    root = init_repo(tmp_path / "repo")
    write_files(root, {"a.txt": "a\n"})
    main = commit_all(root, "a")
    git(root, "update-ref", "refs/remotes/origin/main", main)
    write_files(root, {"a.txt": "b\n"})
    other = commit_all(root, "b")
    assert resolve_commit(root, "origin/main") == main
    git(root, "tag", "origin/main", other)
    git(root, "branch", "topic", main)
    git(root, "tag", "topic", other)
    for ref, names in (
        ("origin/main", "refs/tags/origin/main and refs/remotes/origin/main"),
        ("origin/main~1", "refs/tags/origin/main and refs/remotes/origin/main"),
        ("topic", "refs/tags/topic and refs/heads/topic"),
    ):
        with pytest.raises(GitHistoryError) as refused:
            resolve_commit(root, ref)
        assert refused.value.message == (
            f"'{ref}' is ambiguous: it names {names}; pass the full name (such as "
            "refs/remotes/origin/main) or a commit hash"
        )
    assert resolve_commit(root, "refs/remotes/origin/main") == main
    assert resolve_commit(root, "refs/tags/origin/main") == other
    assert resolve_commit(root, "refs/heads/topic") == main
    assert resolve_commit(root, main) == main
    assert resolve_commit(root, "HEAD") == other
    assert resolve_commit(root, "main") == other


def test_resolve_commit_refuses_a_tag_named_like_an_abbreviated_hash(tmp_path: Path) -> None:
    root = init_repo(tmp_path / "repo")
    write_files(root, {"a.txt": "a\n"})
    first = commit_all(root, "a")
    write_files(root, {"a.txt": "b\n"})
    second = commit_all(root, "b")
    git(root, "tag", first[:10], second)  # git would read the tag, not the hash it looks like
    with pytest.raises(GitHistoryError) as refused:
        resolve_commit(root, first[:10])
    assert refused.value.message == (
        f"'{first[:10]}' is ambiguous: it names refs/tags/{first[:10]} and an abbreviated "
        "hash; pass the full name (such as refs/remotes/origin/main) or a commit hash"
    )
    assert resolve_commit(root, first) == first
    assert resolve_commit(root, second[:10]) == second
    # Hashes are hex in either case to git: an upper-case name is an abbreviated hash too.
    git(root, "tag", second[:10].upper(), first)
    with pytest.raises(GitHistoryError, match="and an abbreviated hash"):
        resolve_commit(root, second[:10].upper())
