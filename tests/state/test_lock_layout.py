"""Reading the lock directory (shards, duplicates, corruption) and migrating the single file."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from promptform.core.errors import Location, LockfileError
from promptform.state.lock_migration import TEMP_SUFFIX, migrate_lockfile
from promptform.state.lockfile import (
    Lockfile,
    backup_path,
    dumps,
    lock_from_files,
    lockfile_hash,
    read_lock_state,
    read_lockfile,
    shard_name,
    write_lockfile,
)
from tests.support.git import entry
from tests.support.lock import lock_files, write_legacy_lock

ENTRIES = {"a": entry("a", "a.png"), "b": entry("b", "b.png"), "old": entry("o", "o.png")}
SHARDS = {"a": "shop/a.yaml", "b": "b.yaml"}


def test_a_shard_is_named_by_the_manifest_path_under_prompts_dir() -> None:
    assert shard_name("prompts/marketing/hero.yaml", "prompts") == "marketing/hero.yaml"
    assert shard_name("hero.yml", ".") == "hero.yml"


def test_reading_joins_every_shard_and_says_where_each_entry_is(tmp_path: Path) -> None:
    path = tmp_path / "promptform.lock"
    write_lockfile(path, Lockfile(targets=ENTRIES), SHARDS)
    (path / ".b.yaml.json.0a1b2c.tmp").write_text("{ cut short")  # a write a crash interrupted

    state = read_lock_state(path)

    assert state.layout == "shards"
    assert state.lockfile.targets == ENTRIES
    assert dict(state.shards) == {
        "a": ("shop/a.yaml",),
        "b": ("b.yaml",),
        "old": ("no-manifest",),
    }
    assert sorted(lock_files(path)) == [
        ".b.yaml.json.0a1b2c.tmp",
        "b.yaml.json",
        "no-manifest.json",
        "shop/a.yaml.json",
    ]


def test_the_same_entry_in_two_shards_is_read_once(tmp_path: Path) -> None:
    path = tmp_path / "promptform.lock"
    write_lockfile(path, Lockfile(targets={"a": ENTRIES["a"]}), {"a": "new.yaml"})
    (path / "old.yaml.json").write_text(dumps(Lockfile(targets={"a": ENTRIES["a"]})))

    state = read_lock_state(path)

    assert state.lockfile.targets == {"a": ENTRIES["a"]}
    assert state.shards["a"] == ("new.yaml", "old.yaml")


def test_different_entries_for_one_address_name_both_files(tmp_path: Path) -> None:
    path = tmp_path / "promptform.lock"
    write_lockfile(path, Lockfile(targets={"a": ENTRIES["a"]}), {"a": "new.yaml"})
    (path / "old.yaml.json").write_text(dumps(Lockfile(targets={"a": ENTRIES["b"]})))

    with pytest.raises(LockfileError) as error:
        read_lockfile(path, "promptform.lock")

    assert error.value.location == Location("promptform.lock/old.yaml.json")
    assert str(error.value) == (
        "`a` is recorded differently in "
        "promptform.lock/new.yaml.json and promptform.lock/old.yaml.json; keep the entry in the "
        "shard of the manifest file that declares it, delete it from the other file (or restore "
        "both from git), then run `promptform plan`"
    )


def test_a_corrupt_shard_names_its_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "promptform.lock"
    write_lockfile(path, Lockfile(targets=ENTRIES), SHARDS)
    (path / "shop/a.yaml.json").write_text('{\n  "targets": {\n<<<<<<< ours\n')

    with pytest.raises(LockfileError) as error:
        read_lockfile(path, "promptform.lock")

    assert error.value.location == Location("promptform.lock/shop/a.yaml.json", 3, 1)
    assert str(error.value).startswith("corrupt lockfile: ")
    assert "`git checkout -- promptform.lock/shop/a.yaml.json`" in str(error.value)


def test_a_shard_of_version_1_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "promptform.lock"
    path.mkdir()
    write_legacy_lock(path / "a.yaml.json", Lockfile(targets={"a": ENTRIES["a"]}))

    with pytest.raises(LockfileError, match="a shard must be version 2, this one says 1"):
        read_lockfile(path, "promptform.lock")


def test_a_shard_from_a_newer_promptform_asks_for_an_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "promptform.lock"
    path.mkdir()
    (path / "a.yaml.json").write_text('{"targets": {}, "version": 3}\n')

    with pytest.raises(LockfileError, match="written by a newer promptform; upgrade promptform"):
        read_lockfile(path, "promptform.lock")


def test_the_lock_from_git_in_either_layout() -> None:
    single = dumps(Lockfile(version=1, targets=ENTRIES)).encode()
    shards = {
        "shop/a.yaml.json": dumps(Lockfile(targets={"a": ENTRIES["a"]})).encode(),
        "b.yaml.json": dumps(Lockfile(targets={"b": ENTRIES["b"]})).encode(),
        "README.md": b"not a shard",
    }
    assert lock_from_files(single, "lock").lockfile.targets == ENTRIES
    assert lock_from_files(shards, "lock").shards == {"a": ("shop/a.yaml",), "b": ("b.yaml",)}
    assert lock_from_files(None, "lock").lockfile == Lockfile()


def test_the_hash_covers_every_shard_name_and_its_bytes(tmp_path: Path) -> None:
    path = tmp_path / "promptform.lock"
    assert lockfile_hash(path) == "absent"
    write_lockfile(path, Lockfile(targets=ENTRIES), SHARDS)
    first = lockfile_hash(path)
    (path / "b.yaml.json").rename(path / "c.yaml.json")
    renamed = lockfile_hash(path)
    write_lockfile(path, Lockfile(targets={**ENTRIES, "b": ENTRIES["a"]}), SHARDS)
    changed = lockfile_hash(path)
    assert len({first, renamed, changed}) == 3
    assert read_lock_state(path).hash == changed  # what plan pins: the hash of the bytes it read


def test_the_hash_of_a_version_1_lockfile_is_its_sha256(tmp_path: Path) -> None:
    path = write_legacy_lock(tmp_path / "promptform.lock", Lockfile(version=1, targets=ENTRIES))
    expected = hashlib.sha256(path.read_bytes()).hexdigest()
    assert lockfile_hash(path) == read_lock_state(path).hash == expected


# -- migration from the single file of version 1, and a crash at each of its steps --


@pytest.fixture
def legacy(tmp_path: Path) -> Path:
    return write_legacy_lock(tmp_path / "promptform.lock", Lockfile(version=1, targets=ENTRIES))


def expect_migrated(path: Path) -> None:
    assert sorted(lock_files(path)) == ["b.yaml.json", "no-manifest.json", "shop/a.yaml.json"]
    assert read_lockfile(path).targets == ENTRIES
    assert not backup_path(path).exists()
    assert not path.with_name(path.name + TEMP_SUFFIX).exists()


def test_migration_writes_one_shard_per_manifest_file(legacy: Path) -> None:
    hash_before = lockfile_hash(legacy)
    assert read_lock_state(legacy).layout == "single"

    assert migrate_lockfile(legacy, SHARDS)

    expect_migrated(legacy)
    assert lockfile_hash(legacy) != hash_before
    assert not migrate_lockfile(legacy, SHARDS)  # a directory already: nothing to do


def test_a_crash_while_writing_the_shards_leaves_the_file_in_charge(legacy: Path) -> None:
    partial = legacy.with_name(legacy.name + TEMP_SUFFIX)
    (partial / "shop").mkdir(parents=True)
    (partial / "shop/a.yaml.json").write_text("{ cut short")

    assert read_lock_state(legacy).lockfile.targets == ENTRIES
    assert migrate_lockfile(legacy, SHARDS)
    expect_migrated(legacy)


def test_a_crash_after_renaming_the_file_leaves_the_backup_in_charge(legacy: Path) -> None:
    hash_before = lockfile_hash(legacy)
    partial = legacy.with_name(legacy.name + TEMP_SUFFIX)
    write_lockfile(partial, Lockfile(targets=ENTRIES), SHARDS)
    legacy.rename(backup_path(legacy))

    state = read_lock_state(legacy, "promptform.lock")
    assert (state.layout, state.lockfile.targets) == ("backup", ENTRIES)
    assert lockfile_hash(legacy) == hash_before  # a saved plan made before is still fresh

    assert migrate_lockfile(legacy, SHARDS)
    expect_migrated(legacy)


def test_a_crash_before_deleting_the_backup_leaves_the_directory_in_charge(legacy: Path) -> None:
    backup = backup_path(legacy)
    legacy.rename(backup)
    write_lockfile(legacy, Lockfile(targets={"a": ENTRIES["a"]}), SHARDS)  # newer than the backup

    assert read_lockfile(legacy).targets == {"a": ENTRIES["a"]}
    assert not migrate_lockfile(legacy, SHARDS)
    assert not backup.exists()


def test_a_corrupt_backup_names_itself(tmp_path: Path) -> None:
    path = tmp_path / "promptform.lock"
    backup_path(path).write_text("{")

    with pytest.raises(LockfileError, match=r"^corrupt lockfile") as error:
        read_lockfile(path, "promptform.lock")
    assert error.value.location == Location("promptform.lock.v1-backup", 1, 2)
