"""Property: whatever sequence of edits, renames, `--target` selections and interruptions apply
goes through, the lockfile matches the disk after every step, and no image that was ever recorded
or paid for becomes unreachable (it is an output, in the trash, or rescued)."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from promptform.state.lockfile import read_lockfile
from tests.support.apply import locked_entries_match_disk
from tests.support.cli import RunCli

CONFIG = """
[promptform]
default_provider = "offline"

[defaults]
model = "gpt-image-2"
size = "64x64"
quality = "low"
"""
TARGETS = 4
# Case variants and a folder: on macOS or Windows some of these are one file.
PATHS = ["a.png", "b.png", "c.png", "A.png", "d/e.png", "D/f.png", "g.png"]

steps = st.lists(
    st.one_of(
        st.tuples(st.just("edit"), st.integers(0, TARGETS - 1)),
        st.tuples(st.just("output"), st.integers(0, TARGETS - 1), st.sampled_from(PATHS)),
        st.tuples(st.just("swap"), st.integers(0, TARGETS - 1), st.integers(0, TARGETS - 1)),
        st.tuples(st.just("apply"), st.none()),
        st.tuples(st.just("apply-target"), st.integers(0, TARGETS - 1)),
        st.tuples(st.just("block"), st.sampled_from(PATHS)),
        st.tuples(st.just("interrupt-move"), st.integers(0, TARGETS - 1)),
        st.tuples(st.just("gc"), st.none()),
    ),
    min_size=1,
    max_size=10,
)


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="promptform-apply-properties-"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


class Project:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.prompts = [f"Picture {index}." for index in range(TARGETS)]
        self.outputs = [f"t{index}.png" for index in range(TARGETS)]
        self.seen: set[str] = set()  # sha256 of every image recorded or rescued so far
        if root.exists():
            shutil.rmtree(root)
        (root / "prompts").mkdir(parents=True)
        (root / "promptform.toml").write_text(CONFIG)
        self.write()

    def write(self) -> None:
        for index in range(TARGETS):
            (self.root / f"prompts/t{index}.yaml").write_text(
                f"name: t{index}\nprompt: {self.prompts[index]}\noutput: {self.outputs[index]}\n"
            )

    def remember(self) -> None:
        for entry in read_lockfile(self.root / "promptform.lock").targets.values():
            self.seen.update(output.sha256 for output in entry.outputs)
        for path in (self.root / ".promptform/rescued").rglob("*.png"):
            self.seen.add(digest(path))

    def check(self) -> None:
        locked_entries_match_disk(self.root)
        self.remember()
        reachable = {digest(path) for path in self.root.rglob("*") if path.is_file()}
        lost = self.seen - reachable
        assert not lost, f"{len(lost)} paid image(s) no longer anywhere under the project"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run(project: Project, run_cli: RunCli, step: tuple[Any, ...]) -> None:
    root, action = project.root, step[0]
    if action == "edit":
        project.prompts[step[1]] += " Again."
        project.write()
    elif action == "output":
        project.outputs[step[1]] = step[2]
        project.write()
    elif action == "swap":
        first, second = step[1], step[2]
        project.outputs[first], project.outputs[second] = (
            project.outputs[second],
            project.outputs[first],
        )
        project.write()
    elif action == "apply":
        run_cli("-C", root, "apply", "--yes")
    elif action == "apply-target":
        run_cli("-C", root, "apply", "--yes", "--target", f"t{step[1]}")
    elif action == "block":
        # A folder where an output goes: its write fails (as a full disk or a permission would).
        blocked = root / "generated" / step[1]
        if not blocked.exists():
            blocked.mkdir(parents=True)
            run_cli("-C", root, "apply", "--yes")
            shutil.rmtree(blocked)
    elif action == "interrupt-move":
        # A move killed after its rename, before the lockfile was rewritten.
        entry = read_lockfile(root / "promptform.lock").targets.get(f"t{step[1]}")
        wanted = project.outputs[step[1]]
        # Only a move plan would make: the project validates and plans.
        planned = entry is not None and run_cli("-C", root, "plan").exit_code == 0
        if planned and entry is not None and entry.outputs[0].path != wanted:
            source, destination = (
                root / "generated" / entry.outputs[0].path,
                root / "generated" / wanted,
            )
            if source.is_file() and not destination.exists():
                destination.parent.mkdir(parents=True, exist_ok=True)
                source.replace(destination)
                project.remember()
                run_cli("-C", root, "gc", "--yes")  # must not collect the moved image
                run_cli("-C", root, "apply", "--yes")
    elif action == "gc":
        run_cli("-C", root, "gc", "--yes")


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sequence=steps)
# Sequences that lost or misfiled an image before moves stepped aside what others record.
@example(sequence=[("swap", 0, 1), ("apply-target", 0)])
@example(sequence=[("output", 0, "a.png"), ("interrupt-move", 0)])
@example(sequence=[("swap", 0, 1), ("apply-target", 0), ("swap", 0, 1)])
@example(sequence=[("output", 0, "a.png"), ("swap", 0, 1), ("interrupt-move", 1)])
@example(sequence=[("output", 0, "A.png"), ("output", 1, "a.png"), ("apply", None)])
def test_lockfile_matches_disk_and_no_paid_image_is_lost(
    scratch: Path, run_cli: RunCli, sequence: list[tuple[Any, ...]]
) -> None:
    project = Project(scratch / "repo")
    run_cli("-C", project.root, "apply", "--yes")
    project.check()
    for step in sequence:
        run(project, run_cli, step)
        project.check()
    run_cli("-C", project.root, "apply", "--yes")
    project.check()
