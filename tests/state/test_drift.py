"""Drift: missing, modified and LFS-pointer outputs, and the stat cache that keeps plans fast."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from promptform.core.config import load_config
from promptform.state import drift as drift_module
from promptform.state.drift import STAT_CACHE_FILE, check_drift
from promptform.state.lockfile import read_lockfile
from tests.support.files import MakeProject
from tests.support.plans import CONFIG, apply_everything

FILES = {
    "promptform.toml": CONFIG,
    "prompts/a.yaml": "name: a\nprompt: A fox.\n",
    "prompts/b.yaml": "name: b\nprompt: An owl.\n",
}


@pytest.fixture
def root(make_project: MakeProject) -> Path:
    root = make_project(FILES)
    apply_everything(root)
    return root


@pytest.fixture
def hashed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every file the drift check reads in full."""
    calls: list[str] = []
    real = drift_module.hash_file

    def counting(path: Path) -> str:
        calls.append(str(path))
        return real(path)

    monkeypatch.setattr(drift_module, "hash_file", counting)
    return calls


def drift_of(root: Path, verify: bool = False) -> list[tuple[str, str]]:
    config = load_config(root)
    entries = read_lockfile(config.lockfile).targets
    return [(item.address, item.kind) for item in check_drift(config, entries, verify)]


def test_untouched_outputs_have_no_drift(root: Path) -> None:
    assert drift_of(root) == []


def test_missing_output_is_drift(root: Path) -> None:
    (root / "generated/a-1.png").unlink()
    assert drift_of(root) == [("a", "missing")]


def test_changed_bytes_are_drift(root: Path) -> None:
    path = root / "generated/a-1.png"
    path.write_bytes(path.read_bytes()[::-1])  # same size, different content
    assert drift_of(root) == [("a", "modified")]


def test_changed_size_is_drift(root: Path) -> None:
    (root / "generated/a-1.png").write_bytes(b"short")
    assert drift_of(root) == [("a", "modified")]


def test_lfs_pointer_gets_its_own_message(root: Path) -> None:
    (root / "generated/a-1.png").write_text(
        "version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 999\n"
    )
    config = load_config(root)
    found = check_drift(config, read_lockfile(config.lockfile).targets)
    assert [item.kind for item in found] == ["lfs-pointer"]
    assert "run `git lfs pull`" in found[0].message


def test_second_plan_reads_no_image_thanks_to_the_stat_cache(root: Path, hashed: list[str]) -> None:
    drift_of(root)
    hashed.clear()
    assert drift_of(root) == []
    assert hashed == []


def test_verify_hashes_every_output(root: Path, hashed: list[str]) -> None:
    drift_of(root)
    hashed.clear()
    drift_of(root, verify=True)
    assert len(hashed) == 2


def test_touched_file_is_hashed_again(root: Path, hashed: list[str]) -> None:
    drift_of(root)
    hashed.clear()
    path = root / "generated/a-1.png"
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert drift_of(root) == []
    assert hashed == [str(path)]


def test_stale_cache_cannot_hide_a_same_size_edit(root: Path) -> None:
    drift_of(root)
    path = root / "generated/a-1.png"
    stat = path.stat()
    path.write_bytes(path.read_bytes()[::-1])
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    assert drift_of(root) == [("a", "modified")]


@pytest.mark.parametrize(
    "damage", ["{not json", '{"files": ' + "[" * 100_000 + "]" * 100_000 + "}"]
)
def test_corrupt_stat_cache_is_ignored_and_rebuilt(root: Path, damage: str) -> None:
    cache = root / ".promptform" / STAT_CACHE_FILE
    cache.parent.mkdir(exist_ok=True)
    cache.write_text(damage)
    assert drift_of(root) == []
    assert json.loads(cache.read_text())["version"] == 1


@pytest.mark.parametrize(
    "damage",
    [
        lambda size, mtime, sha: [str(size), mtime, sha],
        lambda size, mtime, sha: [float(size), mtime, sha],
        lambda size, mtime, sha: [size, mtime],
        lambda size, mtime, sha: [size, mtime, 7],
        lambda size, mtime, sha: {"size": size, "mtime": mtime, "sha256": sha},
        lambda size, mtime, sha: None,
    ],
)
def test_a_damaged_stat_cache_entry_is_hashed_again_and_rewritten(
    root: Path, hashed: list[str], damage: Callable[[int, int, str], object]
) -> None:
    drift_of(root)
    cache = root / ".promptform" / STAT_CACHE_FILE
    data = json.loads(cache.read_text())
    key = "a-1.png"
    data["files"][key] = damage(*data["files"][key])
    cache.write_text(json.dumps(data))
    hashed.clear()

    assert drift_of(root) == []

    assert hashed == [str(root / "generated" / key)]
    stat = (root / "generated" / key).stat()
    assert json.loads(cache.read_text())["files"][key][:2] == [stat.st_size, stat.st_mtime_ns]


def test_state_directory_ignores_itself_in_git(root: Path) -> None:
    drift_of(root)
    assert (root / ".promptform/.gitignore").read_text().endswith("*\n")
