from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from promptform.core.errors import PromptformError
from promptform.core.images import ImageInfo
from promptform.state.lockfile import LockedOutput
from promptform.state.outputs import Trash, write_outputs

NOW = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)


def setup(tmp_path: Path) -> tuple[Path, Trash]:
    outputs = tmp_path / "generated"
    outputs.mkdir()
    return outputs, Trash(tmp_path / ".promptform", outputs, NOW)


def test_an_overwritten_output_is_kept_in_the_trash(tmp_path: Path) -> None:
    outputs, trash = setup(tmp_path)
    (outputs / "a.png").write_bytes(b"old")
    write_outputs(outputs, trash, ["a.png"], [(b"new", ImageInfo("png", 1, 1))])
    assert (outputs / "a.png").read_bytes() == b"new"
    assert (trash.folder / "a.png").read_bytes() == b"old"
    assert trash.folder.name == "20260102T030405.000006Z"


def test_the_same_path_kept_twice_in_one_run_keeps_both(tmp_path: Path) -> None:
    outputs, trash = setup(tmp_path)
    for content in (b"first", b"second"):
        (outputs / "a.png").write_bytes(content)
        trash.keep(outputs / "a.png", move=True)
    kept = sorted(path.read_bytes() for path in trash.folder.iterdir())
    assert kept == [b"first", b"second"]


def test_outputs_no_longer_produced_move_to_the_trash(tmp_path: Path) -> None:
    outputs, trash = setup(tmp_path)
    (outputs / "a-2.png").write_bytes(b"second image")
    previous = [
        LockedOutput(path=name, sha256="0" * 64, bytes=1, format="png")
        for name in ("a-1.png", "a-2.png")
    ]
    written = write_outputs(outputs, trash, ["a-1.png"], [(b"x", ImageInfo("png", 2, 3))], previous)
    assert not (outputs / "a-2.png").exists()
    assert (trash.folder / "a-2.png").read_bytes() == b"second image"
    assert [(o.path, o.bytes, o.width, o.height) for o in written] == [("a-1.png", 1, 2, 3)]


def test_a_missing_file_is_nothing_to_keep(tmp_path: Path) -> None:
    outputs, trash = setup(tmp_path)
    assert trash.keep(outputs / "absent.png") is None
    assert not trash.folder.exists()


def test_a_path_leading_outside_outputs_dir_is_never_moved(tmp_path: Path) -> None:
    outputs, trash = setup(tmp_path)
    victim = tmp_path / "victim.txt"
    victim.write_text("not an output")
    with pytest.raises(PromptformError, match="leads outside"):
        trash.keep(outputs / "../victim.txt", move=True)
    assert victim.read_text() == "not an output"


def test_a_symlinked_folder_leading_outside_outputs_dir_is_never_written(tmp_path: Path) -> None:
    outputs, trash = setup(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (outputs / "link").symlink_to(elsewhere)
    with pytest.raises(PromptformError, match="leads outside"):
        write_outputs(outputs, trash, ["link/a.png"], [(b"new", ImageInfo("png", 1, 1))])
    assert not (elsewhere / "a.png").exists()
