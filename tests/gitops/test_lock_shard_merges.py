"""Two pull requests that generated images for different manifest files merge with plain git.

No merge driver is configured here: this is what GitHub's own merge button does.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import RunCli
from tests.support.files import write_files
from tests.support.git import commit_all, git, init_repo
from tests.support.lock import locked_targets

CONFIG = """
[promptform]
default_provider = "offline"

[defaults]
model = "gpt-image-2"
size = "256x256"
quality = "low"
"""


def manifest(prompt: str) -> str:
    return f"prompt: {prompt}\n"


@pytest.fixture
def main(tmp_path: Path, run_cli: RunCli) -> Path:
    """main with an applied project: shop/item-a and shop/item-d, neighbours in sort order."""
    root = init_repo(tmp_path / "repo")
    write_files(
        root,
        {
            "promptform.toml": CONFIG,
            ".gitignore": ".promptform/\n",
            "prompts/shop/item-a.yaml": manifest("Item A."),
            "prompts/shop/item-d.yaml": manifest("Item D."),
        },
    )
    apply(run_cli, root)
    commit_all(root, "applied on main")
    return root


def apply(run_cli: RunCli, root: Path) -> None:
    result = run_cli("-C", root, "apply", "--yes")
    assert result.exit_code == 0, result.stderr


def branch(run_cli: RunCli, root: Path, name: str, files: dict[str, str | bytes]) -> None:
    """A branch off main that changes `files`, applies and commits the results."""
    git(root, "switch", "-q", "-c", name, "main")
    write_files(root, files)
    apply(run_cli, root)
    commit_all(root, f"{name}: generated")
    git(root, "switch", "-q", "main")


def merge_both(root: Path, first: str, second: str) -> None:
    for name in (first, second):
        result = git(root, "merge", "--no-edit", name, check=False)
        assert "CONFLICT" not in result, result
    assert git(root, "status", "--porcelain") == ""


def assert_plan_is_a_no_op(run_cli: RunCli, root: Path) -> None:
    result = run_cli("-C", root, "plan", "--detailed-exitcode")
    assert result.exit_code == 0, result.stdout + result.stderr


@pytest.mark.parametrize("order", [("add-b", "add-c"), ("add-c", "add-b")])
def test_new_manifest_files_between_the_same_neighbours_merge_in_either_order(
    main: Path, run_cli: RunCli, order: tuple[str, str]
) -> None:
    branch(run_cli, main, "add-b", {"prompts/shop/item-b.yaml": manifest("Item B.")})
    branch(run_cli, main, "add-c", {"prompts/shop/item-c.yaml": manifest("Item C.")})

    merge_both(main, *order)

    assert sorted(locked_targets(main / "promptform.lock")) == [
        "shop/item-a",
        "shop/item-b",
        "shop/item-c",
        "shop/item-d",
    ]
    assert sorted(path.name for path in (main / "promptform.lock/shop").iterdir()) == [
        "item-a.yaml.json",
        "item-b.yaml.json",
        "item-c.yaml.json",
        "item-d.yaml.json",
    ]
    assert_plan_is_a_no_op(run_cli, main)


@pytest.mark.parametrize("order", [("edit-a", "edit-d"), ("edit-d", "edit-a")])
def test_regenerating_neighbouring_entries_in_different_files_merges_in_either_order(
    main: Path, run_cli: RunCli, order: tuple[str, str]
) -> None:
    before = locked_targets(main / "promptform.lock")
    branch(run_cli, main, "edit-a", {"prompts/shop/item-a.yaml": manifest("Item A, redone.")})
    branch(run_cli, main, "edit-d", {"prompts/shop/item-d.yaml": manifest("Item D, redone.")})

    merge_both(main, *order)

    after = locked_targets(main / "promptform.lock")
    assert after["shop/item-a"]["request"]["prompt"] == "Item A, redone."
    assert after["shop/item-d"]["request"]["prompt"] == "Item D, redone."
    assert after["shop/item-a"] != before["shop/item-a"]
    assert_plan_is_a_no_op(run_cli, main)


def test_the_single_file_of_version_1_conflicts_where_the_shards_do_not(
    tmp_path: Path, run_cli: RunCli
) -> None:
    # What the shards are for: the same two branches on the old layout touch the same lines.
    root = init_repo(tmp_path / "repo")
    write_files(root, {"promptform.lock": '{\n  "targets": {},\n  "version": 1\n}\n'})
    commit_all(root, "base")
    for name, address in (("one", "shop/item-b"), ("two", "shop/item-c")):
        git(root, "switch", "-q", "-c", name, "main")
        text = f'{{\n  "targets": {{\n    "{address}": {{}}\n  }},\n  "version": 1\n}}\n'
        (root / "promptform.lock").write_text(text)
        commit_all(root, name)
        git(root, "switch", "-q", "main")
    git(root, "merge", "-q", "--no-edit", "one")
    assert "CONFLICT" in git(root, "merge", "--no-edit", "two", check=False)
