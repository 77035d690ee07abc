from __future__ import annotations

import dataclasses
import functools
import os
from pathlib import Path

import pytest

from promptform.core.errors import LockfileError
from promptform.state.lockfile import (
    LockedOutput,
    LockEntry,
    Lockfile,
    ProviderRef,
    dumps,
    read_lock_state,
    read_lockfile,
    write_lockfile,
)
from promptform.state.lockfile_writer import LockfileWriter
from tests.support.lock import lock_files, write_legacy_lock


def entry(prompt: str, path: str = "a-1.png") -> LockEntry:
    return LockEntry(
        fingerprint=f"sha256:v1:{len(prompt)}",
        request={"model": "gpt-image-2", "prompt": prompt, "n": 1},
        outputs=[
            LockedOutput(path=path, sha256="0" * 64, bytes=10, format="png", width=16, height=16)
        ],
        provider=ProviderRef(kind="offline", name="offline"),
        model="gpt-image-2",
        generated_at="2026-01-01T00:00:00Z",
        usage={"input_tokens": 3, "nested": {"list": [1, 2]}},
        cost_usd=0.04,
    )


SHARDS = {"a": "a.yaml", "b[x=1]": "sub/b.yaml", "ü": "sub/b.yaml", "new": "n.yml", "b": "a.yaml"}


def test_each_shard_is_byte_for_byte_a_full_serialisation_of_its_entries(tmp_path: Path) -> None:
    path = tmp_path / "promptform.lock"
    writer = LockfileWriter(path, Lockfile(), SHARDS)
    writer.put("b[x=1]", entry("naïve café\nline two", "b.png"))
    writer.put("a", entry("first"))
    writer.put("ü", entry("unicode address", "u.png"))

    files = lock_files(path)
    assert sorted(files) == ["a.yaml.json", "sub/b.yaml.json"]
    locked = writer.lockfile().targets
    assert files["a.yaml.json"].decode() == dumps(Lockfile(targets={"a": locked["a"]}))
    assert files["sub/b.yaml.json"].decode() == dumps(
        Lockfile(targets={"b[x=1]": locked["b[x=1]"], "ü": locked["ü"]})
    )
    assert writer.text("sub/b.yaml") == files["sub/b.yaml.json"].decode()
    assert writer.text() == dumps(writer.lockfile())


def test_an_update_rewrites_only_the_shards_it_touches(tmp_path: Path) -> None:
    path = tmp_path / "promptform.lock"
    write_lockfile(path, Lockfile(targets={"a": entry("x"), "ü": entry("y", "u.png")}), SHARDS)
    untouched = path / "sub/b.yaml.json"
    os.utime(untouched, ns=(1, 1))
    writer = LockfileWriter(path, read_lockfile(path), SHARDS)

    writer.put("b", entry("z", "b-1.png"))

    assert untouched.stat().st_mtime_ns == 1
    assert list(read_lockfile(path).targets) == ["a", "b", "ü"]


def test_a_rename_puts_and_removes_across_shards(tmp_path: Path) -> None:
    path = tmp_path / "promptform.lock"
    write_lockfile(path, Lockfile(targets={"a": entry("x")}), SHARDS)
    writer = LockfileWriter(path, read_lockfile(path), SHARDS)

    writer.update({"new": entry("x")}, ("a",))

    assert sorted(lock_files(path)) == ["n.yml.json"]
    assert list(read_lockfile(path).targets) == ["new"]


def test_a_shard_left_empty_is_removed_with_its_empty_folders(tmp_path: Path) -> None:
    path = tmp_path / "promptform.lock"
    write_lockfile(path, Lockfile(targets={"a": entry("x"), "ü": entry("y", "u.png")}), SHARDS)
    writer = LockfileWriter(path, read_lockfile(path), SHARDS)

    writer.remove("ü")

    assert sorted(lock_files(path)) == ["a.yaml.json"]
    assert not (path / "sub").exists()
    writer.remove("a")
    assert lock_files(path) == {}
    assert read_lockfile(path) == Lockfile()


def test_removing_an_unknown_address_keeps_the_others(tmp_path: Path) -> None:
    path = tmp_path / "promptform.lock"
    write_lockfile(path, Lockfile(targets={"a": entry("x")}), SHARDS)
    writer = LockfileWriter(path, read_lockfile(path), SHARDS)
    writer.remove("missing")
    assert list(read_lockfile(path).targets) == ["a"]


def test_an_address_without_a_target_stays_in_the_shard_it_was_read_from(tmp_path: Path) -> None:
    path = tmp_path / "promptform.lock"
    write_lockfile(path, Lockfile(targets={"gone": entry("x")}), {"gone": "old.yaml"})
    writer = LockfileWriter(path, read_lockfile(path), SHARDS)

    writer.put("gone", entry("x, moved", "elsewhere.png"))

    assert sorted(lock_files(path)) == ["old.yaml.json"]


def test_relocate_moves_the_entries_of_a_moved_manifest_file(tmp_path: Path) -> None:
    path = tmp_path / "promptform.lock"
    entries = {"a": entry("x"), "b": entry("y", "b.png"), "other": entry("z", "o.png")}
    shards = {"a": "old/a.yaml", "b": "old/a.yaml", "other": "other.yaml"}
    write_lockfile(path, Lockfile(targets=entries), shards)
    kept = (path / "other.yaml.json").read_bytes()
    writer = LockfileWriter(
        path, read_lockfile(path), {**shards, "a": "new/a.yaml", "b": "new/a.yaml"}
    )

    writer.relocate()

    assert sorted(lock_files(path)) == ["new/a.yaml.json", "other.yaml.json"]
    assert (path / "other.yaml.json").read_bytes() == kept
    assert read_lockfile(path).targets == entries


def test_a_moved_entry_is_written_to_its_new_shard_before_it_leaves_the_old(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "promptform.lock"
    entries = {"a": entry("x"), "b": entry("y", "b.png")}
    write_lockfile(path, Lockfile(targets=entries), {"a": "old.yaml", "b": "old.yaml"})
    writer = LockfileWriter(path, read_lockfile(path), {"a": "new.yaml", "b": "old.yaml"})
    writer.prepare()

    # The first write (the new shard) lands; the crash comes before the old shard is rewritten.
    real_replace = Path.replace
    calls: list[Path] = []

    def replace_once(self: Path, target: Path) -> Path:
        calls.append(Path(target))
        if len(calls) > 1:
            raise KeyboardInterrupt
        return real_replace(self, target)

    monkeypatch.setattr(Path, "replace", replace_once)
    with pytest.raises(KeyboardInterrupt):
        writer.relocate()
    monkeypatch.undo()

    assert calls[0] == path / "new.yaml.json"
    state = read_lock_state(path)  # in both shards, identically: readable
    assert state.lockfile.targets == entries
    assert state.shards["a"] == ("new.yaml", "old.yaml")
    LockfileWriter(path, state.lockfile, {"a": "new.yaml", "b": "old.yaml"}).relocate()
    assert read_lock_state(path).shards["a"] == ("new.yaml",)


def test_an_entry_change_touches_only_its_own_lines(tmp_path: Path) -> None:
    path = tmp_path / "promptform.lock"
    shards = {"a": "s.yaml", "b": "s.yaml", "c": "s.yaml"}
    write_lockfile(path, Lockfile(targets={"a": entry("x"), "c": entry("y")}), shards)
    shard = path / "s.yaml.json"
    before = shard.read_text().splitlines()
    writer = LockfileWriter(path, read_lockfile(path), shards)
    writer.put("b", entry("z", "b-1.png"))
    after = shard.read_text().splitlines()
    added = [line for line in after if line not in before]
    assert all(line not in before for line in added)
    assert [line for line in before if line in after] == before


def test_the_first_write_converts_a_version_1_lockfile(tmp_path: Path) -> None:
    path = write_legacy_lock(tmp_path / "promptform.lock", Lockfile(targets={"a": entry("x")}))
    writer = LockfileWriter(path, read_lockfile(path), SHARDS)

    writer.put("ü", entry("y", "u.png"))

    assert writer.migrated
    assert sorted(lock_files(path)) == ["a.yaml.json", "sub/b.yaml.json"]
    assert list(read_lockfile(path).targets) == ["a", "ü"]


def test_the_first_write_clears_temp_files_a_crash_left_in_the_directory(tmp_path: Path) -> None:
    path = tmp_path / "promptform.lock"
    write_lockfile(path, Lockfile(targets={"a": entry("x")}), SHARDS)
    stale = path / "sub" / ".b.yaml.json.0123456789ab.tmp"
    stale.parent.mkdir()
    stale.write_text("{ cut short")
    writer = LockfileWriter(path, read_lockfile(path), SHARDS)

    writer.put("ü", entry("y", "u.png"))

    assert sorted(lock_files(path)) == ["a.yaml.json", "sub/b.yaml.json"]


def test_a_symlinked_folder_in_the_lock_directory_is_never_written_through(
    tmp_path: Path,
) -> None:
    path = tmp_path / "promptform.lock"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    path.mkdir()
    (path / "sub").symlink_to(elsewhere, target_is_directory=True)
    writer = LockfileWriter(path, Lockfile(), SHARDS)

    with pytest.raises(LockfileError, match=r"leads outside promptform\.lock/ through a symlink"):
        writer.put("ü", entry("y", "u.png"))

    assert list(elsewhere.iterdir()) == []
    assert writer.entry("ü") is None  # not recorded, since not written


@pytest.mark.parametrize(
    "damage",
    [
        {"outputs": [LockedOutput(path="../x.png", sha256="0" * 64, bytes=1, format="png")]},
        {"fingerprint": 7},
        {"generated_at": None},
        {"revised_prompt": "a lone surrogate \ud800"},  # JSON allows it, UTF-8 cannot hold it
        {"usage": {"deep": functools.reduce(lambda nested, _: [nested], range(5_000), [])}},
        {"usage": ["not", "an", "object"]},
    ],
)
def test_an_entry_the_lock_could_not_read_back_is_refused_before_any_file_changes(
    tmp_path: Path, damage: dict[str, object]
) -> None:
    # The lock's types are plain dataclasses: building one checks nothing, so the writer must.
    path = tmp_path / "promptform.lock"
    writer = LockfileWriter(path, Lockfile(), SHARDS)
    writer.put("a", entry("first"))
    before = lock_files(path)
    bad = dataclasses.replace(entry("second"), **damage)  # type: ignore[arg-type]

    with pytest.raises(ValueError, match=r"validation error|the lock cannot hold"):
        writer.put("b", bad)

    assert lock_files(path) == before
    assert read_lockfile(path).targets.keys() == {"a"}
    assert writer.entry("b") is None
