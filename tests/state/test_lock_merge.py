"""The lockfile merge driver: entry-by-entry union, conflicts named, and git really calling it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from promptform.state.lock_merge import merge_lockfiles
from promptform.state.lockfile import Lockfile, dumps, loads
from tests.support.cli import RunCli
from tests.support.git import commit_all, enable_merge_driver, entry, git, init_repo


def lock(**entries: str) -> Lockfile:
    return Lockfile(
        targets={address: entry(fp, f"{address}.png") for address, fp in entries.items()}
    )


def test_changes_to_different_addresses_combine() -> None:
    base = lock(a="a1", b="b1", c="c1")
    ours = lock(a="a2", b="b1", c="c1", new="n1")  # changed a, added new
    theirs = lock(a="a1", b="b2")  # changed b, deleted c
    result = merge_lockfiles(base, ours, theirs)
    assert result.conflicts == ()
    assert result.text == dumps(lock(a="a2", b="b2", new="n1"))


def test_the_same_change_on_both_sides_is_no_conflict() -> None:
    result = merge_lockfiles(lock(a="a1"), lock(a="a2", b="b"), lock(a="a2", b="b"))
    assert result.conflicts == ()
    assert result.text == dumps(lock(a="a2", b="b"))


def test_one_address_changed_differently_is_a_conflict_with_markers() -> None:
    result = merge_lockfiles(lock(a="a1", z="z1"), lock(a="ours", z="z1"), lock(a="theirs", z="z2"))
    assert result.conflicts == ("a",)
    text = result.text
    assert text.index("<<<<<<< ours") < text.index('"ours"') < text.index("=======")
    assert text.index("=======") < text.index('"theirs"') < text.index(">>>>>>> theirs")
    assert '"fingerprint": "z2"' in text  # the clean change is merged too
    with pytest.raises(Exception, match="corrupt lockfile"):
        loads(text, "promptform.lock")
    # Keeping one side between the markers gives a valid lockfile.
    kept = "\n".join(
        line
        for line in text[: text.index("=======")].splitlines()
        + text[text.index(">>>>>>>") :].splitlines()[1:]
        if not line.startswith("<<<<<<<")
    )
    assert loads(kept, "promptform.lock") == lock(a="ours", z="z2")


def test_changed_on_one_side_and_deleted_on_the_other_is_a_conflict() -> None:
    result = merge_lockfiles(lock(a="a1"), lock(), lock(a="a2"))
    assert result.conflicts == ("a",)


def test_added_on_both_sides_differently_is_a_conflict() -> None:
    result = merge_lockfiles(Lockfile(), lock(a="x"), lock(a="y"))
    assert result.conflicts == ("a",)


def write(path: Path, lockfile: Lockfile | str) -> Path:
    path.write_text(lockfile if isinstance(lockfile, str) else dumps(lockfile))
    return path


def test_the_driver_writes_the_result_into_ours(run_cli: RunCli, tmp_path: Path) -> None:
    base, ours, theirs = (tmp_path / name for name in ("base", "ours", "theirs"))
    write(base, lock(a="a1", b="b1"))
    write(ours, lock(a="a2", b="b1"))
    write(theirs, lock(a="a1", b="b2"))
    result = run_cli("lock", "merge", base, ours, theirs)
    assert result.exit_code == 0, result.stderr
    assert ours.read_text() == dumps(lock(a="a2", b="b2"))


def test_the_driver_names_every_conflicting_address(run_cli: RunCli, tmp_path: Path) -> None:
    base, ours, theirs = (tmp_path / name for name in ("base", "ours", "theirs"))
    write(base, lock(**{"a": "1", "hero[x=1]": "1"}))
    write(ours, lock(**{"a": "2", "hero[x=1]": "2"}))
    write(theirs, lock(**{"a": "3", "hero[x=1]": "3"}))
    result = run_cli("lock", "merge", base, ours, theirs)
    assert result.exit_code == 1
    assert result.stderr == (
        "error: lockfile merge conflict: 2 target(s) changed differently on both sides: a, "
        "hero[x=1]; keep one side between the markers (or drop both and run `promptform apply` "
        "again), then `git add` the lockfile\n"
    )


def test_an_empty_base_is_an_empty_lockfile(run_cli: RunCli, tmp_path: Path) -> None:
    base, ours, theirs = (tmp_path / name for name in ("base", "ours", "theirs"))
    write(base, "")
    write(ours, lock(a="1"))
    write(theirs, lock(b="1"))
    assert run_cli("lock", "merge", base, ours, theirs).exit_code == 0
    assert ours.read_text() == dumps(lock(a="1", b="1"))


def test_a_corrupt_side_is_one_error_line_and_ours_is_untouched(
    run_cli: RunCli, tmp_path: Path
) -> None:
    base, ours, theirs = (tmp_path / name for name in ("base", "ours", "theirs"))
    write(base, lock(a="1"))
    write(ours, lock(a="2"))
    write(theirs, "<<<<<<< not json\n")
    result = run_cli("lock", "merge", base, ours, theirs)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: theirs lockfile:1:1: corrupt lockfile")
    assert ours.read_text() == dumps(lock(a="2"))


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository with the .gitattributes line from `init` and the driver configured."""
    root = init_repo(tmp_path / "repo")
    (root / ".gitattributes").write_text("promptform.lock merge=promptform\n")
    write(root / "promptform.lock", lock(a="a1", b="b1"))
    commit_all(root, "base")
    enable_merge_driver(root, monkeypatch)
    return root


def test_git_merges_lockfile_changes_on_both_branches(repo: Path) -> None:
    git(repo, "switch", "-q", "-c", "feature")
    write(repo / "promptform.lock", lock(a="a2", b="b1", c="c1"))
    commit_all(repo, "feature: a and c")
    git(repo, "switch", "-q", "main")
    write(repo / "promptform.lock", lock(a="a1", b="b2"))
    commit_all(repo, "main: b")
    git(repo, "merge", "-q", "--no-edit", "feature")
    assert (repo / "promptform.lock").read_text() == dumps(lock(a="a2", b="b2", c="c1"))
    assert git(repo, "status", "--porcelain") == ""


def test_git_reports_a_real_lockfile_conflict(repo: Path) -> None:
    git(repo, "switch", "-q", "-c", "feature")
    write(repo / "promptform.lock", lock(a="feature", b="b1"))
    commit_all(repo, "feature: a")
    git(repo, "switch", "-q", "main")
    write(repo / "promptform.lock", lock(a="main", b="b2"))
    commit_all(repo, "main: a and b")
    result = git(repo, "merge", "--no-edit", "feature", check=False)
    assert "CONFLICT (content): Merge conflict in promptform.lock" in result
    assert git(repo, "diff", "--name-only", "--diff-filter=U") == "promptform.lock"
    text = (repo / "promptform.lock").read_text()
    assert "<<<<<<< ours" in text
    assert '"fingerprint": "b2"' in text
    assert json.dumps("a") in text


def test_two_addresses_added_with_one_output_path_are_a_conflict() -> None:
    base = Lockfile(targets={"keep": entry("k", "keep.png")})
    ours = Lockfile(targets={**base.targets, "a": entry("a", "Shared.png")})
    theirs = Lockfile(targets={**base.targets, "b": entry("b", "shared.png")})

    result = merge_lockfiles(base, ours, theirs)

    assert result.conflicts == ("a", "b")
    ours_kept = _keep_side(result.text, "ours")
    theirs_kept = _keep_side(result.text, "theirs")
    assert loads(ours_kept, "promptform.lock") == ours
    assert loads(theirs_kept, "promptform.lock") == theirs


def _keep_side(text: str, side: str) -> str:
    """The merged text with every conflict resolved by keeping `side` ("ours" or "theirs")."""
    kept, inside = [], None
    for line in text.splitlines():
        if line.startswith("<<<<<<< "):
            inside = "ours"
        elif line == "=======" and inside:
            inside = "theirs"
        elif line.startswith(">>>>>>> "):
            inside = None
        elif inside is None or inside == side:
            kept.append(line)
    return "\n".join(kept) + "\n"


@pytest.mark.parametrize(
    ("base", "ours", "theirs"),
    [
        ({"a": "a1", "z": "z1"}, {"a": "a1"}, {"a": "a1", "z": "z2"}),  # deleted, last
        ({"a": "a1", "z": "z1"}, {"a": "a1", "z": "z2"}, {"a": "a1"}),
        ({"a": "a1", "m": "m1", "z": "z1"}, {"m": "m2", "z": "z1"}, {"a": "a2", "m": "m3"}),
        ({"a": "a1", "b": "b1"}, {"b": "b2"}, {"a": "a2"}),  # nothing merged cleanly
        ({"a": "a1"}, {"a": "a2", "b": "b1"}, {"a": "a3", "b": "b2"}),
    ],
)
def test_either_side_of_every_conflict_leaves_a_valid_lockfile(
    base: dict[str, str], ours: dict[str, str], theirs: dict[str, str]
) -> None:
    result = merge_lockfiles(lock(**base), lock(**ours), lock(**theirs))

    assert result.conflicts
    for side in ("ours", "theirs"):
        loads(_keep_side(result.text, side), "promptform.lock")


def test_the_driver_names_targets_sharing_an_output_path(run_cli: RunCli, tmp_path: Path) -> None:
    base, ours, theirs = (tmp_path / name for name in ("base", "ours", "theirs"))
    write(base, Lockfile())
    write(ours, Lockfile(targets={"a": entry("a", "hero.png")}))
    write(theirs, Lockfile(targets={"b": entry("b", "hero.png")}))
    result = run_cli("lock", "merge", base, ours, theirs)
    assert result.exit_code == 1
    assert "2 target(s) record the same output path: a, b" in result.stderr


SHARD = "promptform.lock/shop.yaml.json"


@pytest.fixture
def sharded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository whose lock is a directory of shards, with init's attributes and the driver."""
    root = init_repo(tmp_path / "sharded")
    (root / ".gitattributes").write_text(
        "promptform.lock/** merge=promptform\npromptform.lock merge=promptform\n"
    )
    (root / "promptform.lock").mkdir()
    write(root / SHARD, lock(**{"shop/a": "a1", "shop/d": "d1"}))
    commit_all(root, "base")
    enable_merge_driver(root, monkeypatch)
    return root


def test_git_merges_two_branches_changing_one_shard_entry_by_entry(sharded: Path) -> None:
    # Neighbouring additions to the same manifest file's shard: a line conflict for plain git.
    git(sharded, "switch", "-q", "-c", "feature")
    write(sharded / SHARD, lock(**{"shop/a": "a1", "shop/b": "b1", "shop/d": "d1"}))
    commit_all(sharded, "feature: b")
    git(sharded, "switch", "-q", "main")
    write(sharded / SHARD, lock(**{"shop/a": "a1", "shop/c": "c1", "shop/d": "d1"}))
    commit_all(sharded, "main: c")

    git(sharded, "merge", "-q", "--no-edit", "feature")

    merged = lock(**{"shop/a": "a1", "shop/b": "b1", "shop/c": "c1", "shop/d": "d1"})
    assert (sharded / SHARD).read_text() == dumps(merged)
    assert loads((sharded / SHARD).read_text(), SHARD).version == 2
    assert git(sharded, "status", "--porcelain") == ""


def test_git_reports_one_target_changed_on_both_sides_in_its_shard(sharded: Path) -> None:
    git(sharded, "switch", "-q", "-c", "feature")
    write(sharded / SHARD, lock(**{"shop/a": "feature", "shop/d": "d1"}))
    commit_all(sharded, "feature: a")
    git(sharded, "switch", "-q", "main")
    write(sharded / SHARD, lock(**{"shop/a": "main", "shop/d": "d1"}))
    commit_all(sharded, "main: a")

    result = git(sharded, "merge", "--no-edit", "feature", check=False)

    assert f"CONFLICT (content): Merge conflict in {SHARD}" in result
    assert "<<<<<<< ours" in (sharded / SHARD).read_text()


def test_a_merged_single_file_of_version_1_stays_version_1() -> None:
    old = Lockfile(version=1, targets=lock(a="a1").targets)
    ours = Lockfile(version=1, targets=lock(a="a1", b="b1").targets)
    theirs = Lockfile(version=1, targets=lock(a="a2").targets)
    result = merge_lockfiles(old, ours, theirs)
    assert loads(result.text, "promptform.lock") == Lockfile(
        version=1, targets=lock(a="a2", b="b1").targets
    )
