from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from promptform.apply_lock import apply_lock
from promptform.errors import PromptformError


def test_second_apply_is_refused_and_told_who_holds_the_lock(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys, time
                from pathlib import Path
                from promptform.apply_lock import apply_lock
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
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with (
            pytest.raises(PromptformError, match=rf"pid {holder.pid} on .*started"),
            apply_lock(tmp_path),
        ):
            pass
    finally:
        holder.communicate("\n")
    with apply_lock(tmp_path):  # released when the holder exits
        pass


def test_lock_of_a_killed_apply_does_not_outlive_it(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; from pathlib import Path; from promptform.apply_lock import apply_lock\n"
            f"with apply_lock(Path({str(tmp_path)!r})):\n    print('locked', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    holder.kill()
    holder.wait()
    holder.stdout.close()
    with apply_lock(tmp_path):
        pass
