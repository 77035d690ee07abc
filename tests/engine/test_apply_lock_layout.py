"""apply and the lock's layout: converting a version 1 lockfile, moving entries of moved manifest
files, and what every command does with a lock in between."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from promptform.state.lockfile import backup_path, dumps, read_lockfile
from tests.support.cli import RunCli
from tests.support.files import MakeProject
from tests.support.git import commit_all, git, init_repo
from tests.support.lock import lock_files, write_legacy_lock

CONFIG = """
[promptform]
default_provider = "offline"

[defaults]
model = "gpt-image-2"
size = "256x256"
quality = "low"
"""

PROJECT: dict[str, str | bytes] = {
    "promptform.toml": CONFIG,
    "prompts/cards.yaml": "name: cards\nmatrix:\n  animal: [fox, owl]\nprompt: A {{ animal }}.\n",
    "prompts/hero.yaml": "name: hero\nprompt: A hero image.\n",
}
SHARDS = ["cards.yaml.json", "hero.yaml.json"]
MIGRATED = (
    "promptform.lock is now a directory with one lock file per manifest (lock version 2); "
    "commit it whole (`git add --all promptform.lock`)"
)


@pytest.fixture
def legacy(make_project: MakeProject, run_cli: RunCli) -> Path:
    """An applied project whose lock is still the single file of version 1."""
    root = make_project(PROJECT)
    assert run_cli("-C", root, "apply", "--yes").exit_code == 0
    lock = root / "promptform.lock"
    entries = read_lockfile(lock)
    shutil.rmtree(lock)
    write_legacy_lock(lock, entries)
    return root


def no_changes(run_cli: RunCli, root: Path) -> bool:
    return run_cli("-C", root, "plan", "--detailed-exitcode").exit_code == 0


def test_read_only_commands_read_a_version_1_lockfile_and_leave_it(
    legacy: Path, run_cli: RunCli
) -> None:
    before = (legacy / "promptform.lock").read_bytes()
    assert no_changes(run_cli, legacy)
    status = run_cli("-C", legacy, "status")
    assert status.exit_code == 0
    assert "3 of 3 lock entries shown." in status.stdout
    assert run_cli("-C", legacy, "cost").exit_code == 0
    assert (legacy / "promptform.lock").read_bytes() == before


def test_apply_converts_a_version_1_lockfile_and_says_so_once(
    legacy: Path, run_cli: RunCli
) -> None:
    entries = read_lockfile(legacy / "promptform.lock")

    result = run_cli("-C", legacy, "apply", "--yes")

    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines().count(MIGRATED) == 1
    assert "No changes." in result.stdout
    assert sorted(lock_files(legacy / "promptform.lock")) == SHARDS
    assert read_lockfile(legacy / "promptform.lock").targets == entries.targets
    assert sorted(path.name for path in legacy.iterdir() if "lock" in path.name) == [
        "promptform.lock"
    ]
    again = run_cli("-C", legacy, "apply", "--yes")
    assert MIGRATED not in again.stderr
    assert no_changes(run_cli, legacy)


def test_the_backup_a_crash_left_is_read_and_the_next_apply_finishes(
    legacy: Path, run_cli: RunCli
) -> None:
    lock = legacy / "promptform.lock"
    partial = legacy / "promptform.lock.v2-partial"
    partial.mkdir()
    (partial / "cards.yaml.json").write_text("{ cut short")
    lock.rename(backup_path(lock))

    assert no_changes(run_cli, legacy)
    result = run_cli("-C", legacy, "apply", "--yes")

    assert result.exit_code == 0, result.stderr
    assert MIGRATED in result.stderr
    assert sorted(lock_files(lock)) == SHARDS
    assert not backup_path(lock).exists() and not partial.exists()
    assert no_changes(run_cli, legacy)


def test_a_plan_saved_before_the_conversion_is_still_applied(
    legacy: Path, run_cli: RunCli, tmp_path: Path
) -> None:
    (legacy / "prompts/hero.yaml").write_text("name: hero\nprompt: A braver hero.\n")
    saved = tmp_path / "plan.json"
    assert run_cli("-C", legacy, "plan", "--out", saved).exit_code == 0

    result = run_cli("-C", legacy, "apply", saved)

    assert result.exit_code == 0, result.stderr
    assert MIGRATED in result.stderr
    hero = json.loads((legacy / "promptform.lock/hero.yaml.json").read_text())
    assert hero["targets"]["hero"]["request"]["prompt"] == "A braver hero."


def test_apply_moves_the_entries_of_a_moved_manifest_file(
    make_project: MakeProject, run_cli: RunCli
) -> None:
    root = make_project(PROJECT)
    assert run_cli("-C", root, "apply", "--yes").exit_code == 0
    cards = (root / "promptform.lock/cards.yaml.json").read_bytes()
    (root / "prompts/people").mkdir()
    (root / "prompts/hero.yaml").rename(root / "prompts/people/hero.yaml")
    assert no_changes(run_cli, root)  # same address, same request: nothing to generate

    result = run_cli("-C", root, "apply", "--yes")

    assert result.exit_code == 0, result.stderr
    assert sorted(lock_files(root / "promptform.lock")) == [
        "cards.yaml.json",
        "people/hero.yaml.json",
    ]
    assert (root / "promptform.lock/cards.yaml.json").read_bytes() == cards
    assert no_changes(run_cli, root)


def test_one_address_recorded_differently_in_two_shards_is_one_error_line(
    make_project: MakeProject, run_cli: RunCli
) -> None:
    root = make_project(PROJECT)
    assert run_cli("-C", root, "apply", "--yes").exit_code == 0
    hero = json.loads((root / "promptform.lock/hero.yaml.json").read_text())
    hero["targets"]["hero"]["generated_at"] = "2020-01-01T00:00:00Z"
    (root / "promptform.lock/old.yaml.json").write_text(json.dumps(hero))

    result = run_cli("-C", root, "plan")

    assert result.exit_code == 1
    assert result.stderr == (
        "error: promptform.lock/old.yaml.json: `hero` is recorded differently in "
        "promptform.lock/hero.yaml.json and promptform.lock/old.yaml.json; keep the entry in the "
        "shard of the manifest file that declares it, delete it from the other file (or restore "
        "both from git), then run `promptform plan`\n"
    )


def test_apply_commit_records_the_conversion_and_the_file_it_replaces(
    tmp_path: Path, run_cli: RunCli, legacy: Path
) -> None:
    repo = init_repo(legacy)
    (repo / ".gitignore").write_text(".promptform/\n")
    commit_all(repo, "applied with a version 1 lockfile")
    (repo / "prompts/hero.yaml").write_text("name: hero\nprompt: A braver hero.\n")
    commit_all(repo, "braver hero")

    result = run_cli("-C", repo, "apply", "--yes", "--commit")

    assert result.exit_code == 0, result.stderr
    assert git(repo, "status", "--porcelain") == ""
    tree = git(repo, "ls-tree", "-r", "--name-only", "HEAD").splitlines()
    assert "promptform.lock" not in tree
    assert [path for path in tree if path.startswith("promptform.lock/")] == [
        f"promptform.lock/{name}" for name in SHARDS
    ]
    assert git(repo, "show", "HEAD:promptform.lock/cards.yaml.json") + "\n" == dumps(
        read_lockfile(repo / "promptform.lock/cards.yaml.json")
    )


def test_with_nothing_to_generate_apply_commit_still_records_the_conversion(
    run_cli: RunCli, legacy: Path
) -> None:
    repo = init_repo(legacy)
    (repo / ".gitignore").write_text(".promptform/\n")
    commit_all(repo, "applied with a version 1 lockfile")

    result = run_cli("-C", repo, "apply", "--yes", "--commit")

    assert result.exit_code == 0, result.stderr
    assert git(repo, "status", "--porcelain") == ""
    assert git(repo, "log", "-1", "--format=%s") == (
        "promptform apply: lock entries in the shards of their manifest files [skip ci]"
    )
    assert git(repo, "ls-tree", "--name-only", "HEAD", "promptform.lock/").splitlines() == [
        f"promptform.lock/{name}" for name in SHARDS
    ]
    again = run_cli("-C", repo, "apply", "--yes", "--commit")
    assert again.exit_code == 0
    assert git(repo, "rev-list", "--count", "HEAD") == "2"  # nothing more to commit


def test_apply_commit_records_entries_moved_with_their_manifest_file(
    make_project: MakeProject, run_cli: RunCli
) -> None:
    repo = init_repo(make_project({**PROJECT, ".gitignore": ".promptform/\n"}))
    assert run_cli("-C", repo, "apply", "--yes").exit_code == 0
    commit_all(repo, "applied")
    git(repo, "mv", "prompts/hero.yaml", "prompts/heroes.yaml")
    commit_all(repo, "rename the manifest")

    result = run_cli("-C", repo, "apply", "--yes", "--commit")

    assert result.exit_code == 0, result.stderr
    assert git(repo, "status", "--porcelain") == ""
    changed = git(repo, "show", "--format=", "--no-renames", "--name-only", "HEAD")
    assert sorted(changed.splitlines()) == [
        "promptform.lock/hero.yaml.json",
        "promptform.lock/heroes.yaml.json",
    ]
