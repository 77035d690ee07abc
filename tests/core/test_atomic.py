"""atomic.py: whole-file replacement, with private or umask-respecting permissions."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from promptform.core.atomic import atomic_write, atomic_write_chunks


@pytest.fixture
def umask() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("umask")
def test_files_for_users_get_the_permissions_the_umask_allows(tmp_path: Path) -> None:
    atomic_write(tmp_path / "image.png", b"pixels", shared=True)

    assert mode(tmp_path / "image.png") == 0o644
    assert (tmp_path / "image.png").read_bytes() == b"pixels"


@pytest.mark.usefixtures("umask")
def test_private_state_stays_readable_by_its_owner_only(tmp_path: Path) -> None:
    atomic_write(tmp_path / "cache.json", b"{}")

    assert mode(tmp_path / "cache.json") == 0o600


@pytest.mark.usefixtures("umask")
def test_replacing_a_file_leaves_no_temporary_file_behind(tmp_path: Path) -> None:
    atomic_write(tmp_path / "image.png", b"one", shared=True)
    atomic_write(tmp_path / "image.png", b"two", shared=True)

    assert [path.name for path in tmp_path.iterdir()] == ["image.png"]
    assert (tmp_path / "image.png").read_bytes() == b"two"


def test_chunks_are_written_as_one_file(tmp_path: Path) -> None:
    atomic_write_chunks(tmp_path / "shard.json", (b"x" * 1000 for _ in range(1000)))

    assert (tmp_path / "shard.json").read_bytes() == b"x" * 1_000_000


def test_chunks_that_fail_midway_leave_the_old_file_and_no_temporary_file(tmp_path: Path) -> None:
    atomic_write(tmp_path / "shard.json", b"old")

    def failing() -> Iterator[bytes]:
        yield b"new, but only "
        raise RuntimeError("the entries could not be rendered")

    with pytest.raises(RuntimeError):
        atomic_write_chunks(tmp_path / "shard.json", failing())

    assert [path.name for path in tmp_path.iterdir()] == ["shard.json"]
    assert (tmp_path / "shard.json").read_bytes() == b"old"
