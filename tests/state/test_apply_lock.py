from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from promptform.core.errors import PromptformError
from promptform.state.apply_lock import apply_lock
from tests.support.waiting import LineReader


def test_second_apply_is_refused_and_told_who_holds_the_lock(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys, time
                from pathlib import Path
                from promptform.state.apply_lock import apply_lock
                with apply_lock(Path({str(tmp_path)!r})):
                    print("locked", flush=True)
                    sys.stdin.readline()
                """
            ),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdin is not None and holder.stdout is not None
    stdout = LineReader(holder.stdout, "the lock holder's stdout")
    try:
        assert stdout.next_line("the holder to take the lock") == "locked"
        with (
            pytest.raises(PromptformError, match=rf"pid {holder.pid} on .*started"),
            apply_lock(tmp_path),
        ):
            pass
    finally:
        holder.stdin.write("\n")
        holder.stdin.close()
        holder.wait(timeout=10)
        stdout.rest()
    with apply_lock(tmp_path):  # released when the holder exits
        pass


def test_lock_of_a_killed_apply_does_not_outlive_it(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; from pathlib import Path; from promptform.state.apply_lock import apply_lock\n"
            f"with apply_lock(Path({str(tmp_path)!r})):\n    print('locked', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    stdout = LineReader(holder.stdout, "the lock holder's stdout")
    try:
        assert stdout.next_line("the holder to take the lock") == "locked"
    finally:
        holder.kill()
        holder.wait(timeout=10)
        stdout.rest()
    with apply_lock(tmp_path):
        pass


def test_a_committed_symlink_as_the_lock_file_is_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    state = tmp_path / ".promptform"
    state.mkdir()
    (state / "apply.lock").symlink_to(victim)
    with pytest.raises(PromptformError, match=r"cannot open apply.lock"), apply_lock(state):
        pass
    assert victim.read_text() == "precious\n"


def test_a_state_directory_that_is_a_symlink_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / ".promptform").symlink_to(elsewhere)
    with (
        pytest.raises(PromptformError, match=r"\.promptform/ is a symlink"),
        apply_lock(tmp_path / ".promptform"),
    ):
        pass
    assert list(elsewhere.iterdir()) == []


def test_a_dangling_gitignore_symlink_is_never_written_through(tmp_path: Path) -> None:
    from promptform.state.state_dir import ensure_state_dir

    state = tmp_path / ".promptform"
    state.mkdir()
    (state / ".gitignore").symlink_to(tmp_path / "created-elsewhere")
    ensure_state_dir(state)
    assert not (tmp_path / "created-elsewhere").exists()
