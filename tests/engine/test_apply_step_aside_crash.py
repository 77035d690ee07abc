"""kill -9 during a step-aside: an image another target's new output displaces is never lost.

`a` wrote x.png, then moves to y.png while a new target `b` takes x.png. `apply --target b` steps
`a`'s image aside (a rename, then a lockfile rewrite) before writing `b`. Wherever the process
dies in that, the next apply must find `a`'s image, record it where it is, and pay only for `b`.
"""

from __future__ import annotations

import hashlib
import signal
import sys
from pathlib import Path

import pytest

from promptform.state.lockfile import read_lockfile
from tests.support.apply import keyed_fake_images_api as keyed_fake_images_api  # `server`
from tests.support.apply import locked_entries_match_disk, make_fake_project, subprocess_env
from tests.support.children import StderrChild
from tests.support.children import children as children
from tests.support.cli import RunCli
from tests.support.fake_images_api import FakeImagesAPI
from tests.support.files import write_files
from tests.support.waiting import wait_for

# Runs promptform, pausing (and saying so) at the moment named by PAUSE_AT, so the test can kill
# it there: just before the step-aside's rename, just after it, or just after the first lockfile
# rewrite (the one recording where the image went).
_PAUSING_APPLY = """
import os, sys, time
from pathlib import Path
from promptform.cli import main
from promptform.state.lockfile_writer import LockfileWriter
from promptform.state.outputs import ASIDE_SUFFIX

moment = os.environ["PAUSE_AT"]
rename, update = Path.replace, LockfileWriter.update

def pause():
    print("paused", moment, file=sys.stderr, flush=True)
    time.sleep(60)

def replace_and_pause(self, target):
    aside = ASIDE_SUFFIX in str(target)
    if aside and moment == "before-rename":
        pause()
    result = rename(self, target)
    if aside and moment == "after-rename":
        pause()
    return result

def update_and_pause(self, put, remove):
    update(self, put, remove)
    if moment == "after-record":
        pause()

Path.replace = replace_and_pause
LockfileWriter.update = update_and_pause
sys.exit(main(sys.argv[1:]))
"""

A_WRITES_X: dict[str, str | bytes] = {"prompts/a.yaml": "prompt: A.\noutput: x.png\n"}
MOMENTS = ("before-rename", "after-rename", "after-record")


class PausedApply(StderrChild):
    """A promptform child that pauses at `moment`."""

    def __init__(self, root: Path, moment: str, *args: str) -> None:
        self.moment = moment
        command = [sys.executable, "-c", _PAUSING_APPLY, "-C", str(root), *args]
        super().__init__(command, subprocess_env(PAUSE_AT=moment))

    def wait_until_paused(self) -> None:
        wait_for(
            lambda: f"paused {self.moment}" in self.lines or self.process.poll() is not None,
            what=f"apply to pause {self.moment}",
        )
        assert f"paused {self.moment}" in self.lines, self.output()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def recorded_paths(root: Path) -> dict[str, list[str]]:
    entries = read_lockfile(root / "promptform.lock").targets
    return {
        address: [output.path for output in entry.outputs] for address, entry in entries.items()
    }


def crashed_at(root: Path, moment: str, a_image: str) -> None:
    """Check the crash came where the test means it to: `a`'s image and entry as `moment` of
    stepping it aside from x.png leaves them."""
    aside = root / "generated/x.png.promptform-moving"
    on_disk = "x.png.promptform-moving" if aside.exists() else "x.png"
    assert digest(root / "generated" / on_disk) == a_image
    expected = {
        "before-rename": ("x.png", "x.png"),
        "after-rename": ("x.png.promptform-moving", "x.png"),
        "after-record": ("x.png.promptform-moving", "x.png.promptform-moving"),
    }[moment]
    assert (on_disk, recorded_paths(root)["a"][0]) == expected


def crash_stepping_aside(
    root: Path, server: FakeImagesAPI, run_cli: RunCli, children: list[PausedApply], moment: str
) -> str:
    """`a`'s image, after `apply --target b` was killed at `moment` of stepping it aside."""
    assert run_cli("-C", root, "apply", "--yes").exit_code == 0
    a_image = digest(root / "generated/x.png")
    write_files(
        root,
        {
            "prompts/a.yaml": "prompt: A.\noutput: y.png\n",
            "prompts/b.yaml": "prompt: B.\noutput: x.png\n",
        },
    )
    child = PausedApply(root, moment, "apply", "--yes", "--target", "b")
    children.append(child)
    child.wait_until_paused()
    assert child.kill() == -signal.SIGKILL
    crashed_at(root, moment, a_image)
    assert server.generations == 1  # nothing for `b` was paid yet
    return a_image


@pytest.mark.parametrize("moment", MOMENTS)
def test_apply_after_a_kill_during_a_step_aside_keeps_the_image_and_pays_only_for_b(
    tmp_path: Path,
    server: FakeImagesAPI,
    run_cli: RunCli,
    children: list[PausedApply],
    moment: str,
) -> None:
    root = make_fake_project(tmp_path / "repo", server, A_WRITES_X)
    a_image = crash_stepping_aside(root, server, run_cli, children, moment)

    resumed = run_cli("-C", root, "apply", "--yes")

    assert resumed.exit_code == 0, resumed.stderr
    entries = locked_entries_match_disk(root)
    assert recorded_paths(root) == {"a": ["y.png"], "b": ["x.png"]}
    assert entries["a"].outputs[0].sha256 == a_image
    assert server.generations == 2  # `b`, once; `a`'s image was moved, never paid for again
    assert "No changes." in run_cli("-C", root, "plan").stdout
    assert run_cli("-C", root, "gc").exit_code == 0


@pytest.mark.parametrize("moment", MOMENTS)
def test_the_same_targeted_apply_after_a_kill_during_a_step_aside_records_the_image_aside(
    tmp_path: Path,
    server: FakeImagesAPI,
    run_cli: RunCli,
    children: list[PausedApply],
    moment: str,
) -> None:
    root = make_fake_project(tmp_path / "repo", server, A_WRITES_X)
    a_image = crash_stepping_aside(root, server, run_cli, children, moment)

    again = run_cli("-C", root, "apply", "--yes", "--target", "b")

    assert again.exit_code == 0, again.stderr
    entries = locked_entries_match_disk(root)
    assert entries["a"].outputs[0].sha256 == a_image
    assert recorded_paths(root)["b"] == ["x.png"]
    assert server.generations == 2
    finished = run_cli("-C", root, "apply", "--yes")
    assert finished.exit_code == 0, finished.stderr
    locked_entries_match_disk(root)
    assert recorded_paths(root) == {"a": ["y.png"], "b": ["x.png"]}
    assert digest(root / "generated/y.png") == a_image
    assert server.generations == 2


@pytest.mark.parametrize("moment", MOMENTS)
def test_a_swap_killed_while_stepping_aside_finishes_on_the_next_apply(
    tmp_path: Path,
    server: FakeImagesAPI,
    run_cli: RunCli,
    children: list[PausedApply],
    moment: str,
) -> None:
    # moves.py steps `a` aside itself (a rename, then a lockfile rewrite) to swap two paths.
    files: dict[str, str | bytes] = {
        "prompts/a.yaml": "prompt: A.\noutput: x.png\n",
        "prompts/b.yaml": "prompt: B.\noutput: y.png\n",
    }
    root = make_fake_project(tmp_path / "repo", server, files)
    assert run_cli("-C", root, "apply", "--yes").exit_code == 0
    a_image, b_image = digest(root / "generated/x.png"), digest(root / "generated/y.png")
    write_files(
        root,
        {
            "prompts/a.yaml": "prompt: A.\noutput: y.png\n",
            "prompts/b.yaml": "prompt: B.\noutput: x.png\n",
        },
    )
    child = PausedApply(root, moment, "apply", "--yes")
    children.append(child)
    child.wait_until_paused()
    assert child.kill() == -signal.SIGKILL
    crashed_at(root, moment, a_image)

    resumed = run_cli("-C", root, "apply", "--yes")

    assert resumed.exit_code == 0, resumed.stderr
    entries = locked_entries_match_disk(root)
    assert recorded_paths(root) == {"a": ["y.png"], "b": ["x.png"]}
    assert (entries["a"].outputs[0].sha256, entries["b"].outputs[0].sha256) == (a_image, b_image)
    assert server.generations == 2  # the two first images; a swap pays for nothing
    assert "No changes." in run_cli("-C", root, "plan").stdout
