"""apply never loses an image it paid for: a failed write keeps the bytes in .promptform/rescued/."""

from __future__ import annotations

import errno
import json
from collections.abc import Iterable
from pathlib import Path

import pytest

from promptform.state.lockfile import LockEntry, read_lockfile
from promptform.state.lockfile_writer import LockfileWriter
from promptform.state.outputs import Trash
from tests.support.apply import locked_entries_match_disk
from tests.support.cli import RunCli
from tests.support.files import MakeProject

CONFIG = """
[promptform]
default_provider = "offline"

[defaults]
model = "gpt-image-2"
size = "256x256"
quality = "low"
"""


def rescued_notes(root: Path) -> list[dict[str, object]]:
    return [
        json.loads(note.read_text())
        for note in sorted((root / ".promptform/rescued").glob("*/rescued.json"))
    ]


def test_an_output_path_blocked_by_a_folder_rescues_the_paid_image(
    make_project: MakeProject, run_cli: RunCli
) -> None:
    root = make_project({"promptform.toml": CONFIG, "prompts/a.yaml": "prompt: An apple.\n"})
    (root / "generated/a-1.png").mkdir(parents=True)

    result = run_cli("-C", root, "apply", "--yes")

    assert result.exit_code == 1
    assert "a:" in result.stderr
    [note] = rescued_notes(root)
    assert note["address"] == "a"
    assert note["request"] == {
        "model": "gpt-image-2",
        "n": 1,
        "prompt": "An apple.",
        "quality": "low",
        "size": "256x256",
    }
    assert isinstance(note["fingerprint"], str)
    [folder] = (root / ".promptform/rescued").iterdir()
    assert [path.name for path in sorted(folder.iterdir())] == ["1.png", "rescued.json"]
    assert "a" not in read_lockfile(root / "promptform.lock").targets


def test_the_next_plan_offers_the_rescued_image_instead_of_paying_again(
    make_project: MakeProject, run_cli: RunCli
) -> None:
    root = make_project({"promptform.toml": CONFIG, "prompts/a.yaml": "prompt: An apple.\n"})
    (root / "generated/a-1.png").mkdir(parents=True)
    run_cli("-C", root, "apply", "--yes")
    (root / "generated/a-1.png").rmdir()

    plan = run_cli("-C", root, "plan")

    [folder] = (root / ".promptform/rescued").iterdir()
    shown = folder.relative_to(root).as_posix()
    assert f"promptform adopt a --rescued {shown}" in plan.stdout + plan.stderr
    adopted = run_cli("-C", root, "adopt", "a", "--rescued", shown)
    assert adopted.exit_code == 0, adopted.stderr
    assert "No changes." in run_cli("-C", root, "plan").stdout
    locked_entries_match_disk(root)


def test_a_failure_part_way_through_n_outputs_leaves_nothing_unrecorded(
    make_project: MakeProject, run_cli: RunCli
) -> None:
    root = make_project({"promptform.toml": CONFIG, "prompts/hero.yaml": "prompt: A hero.\nn: 2\n"})
    (root / "generated/hero-2.png").mkdir(parents=True)

    result = run_cli("-C", root, "apply", "--yes")

    assert result.exit_code == 1
    assert not (root / "generated/hero-1.png").exists()
    [folder] = (root / ".promptform/rescued").iterdir()
    assert [path.name for path in sorted(folder.iterdir())] == ["1.png", "2.png", "rescued.json"]


def test_a_failed_replace_puts_the_previous_outputs_back(
    make_project: MakeProject, run_cli: RunCli
) -> None:
    root = make_project({"promptform.toml": CONFIG, "prompts/hero.yaml": "prompt: A hero.\nn: 2\n"})
    assert run_cli("-C", root, "apply", "--yes").exit_code == 0
    (root / "prompts/hero.yaml").write_text("prompt: A braver hero.\nn: 2\n")
    (root / "generated/hero-2.png").unlink()
    (root / "generated/hero-2.png").mkdir()

    result = run_cli("-C", root, "apply", "--yes")

    assert result.exit_code == 1
    [entry] = read_lockfile(root / "promptform.lock").targets.values()
    assert entry.outputs[0].path == "hero-1.png"
    from promptform.core.fingerprint import hash_file

    assert hash_file(root / "generated/hero-1.png") == entry.outputs[0].sha256
    assert len(list((root / ".promptform/rescued").glob("*/2.png"))) == 1


def test_adopt_rescued_refuses_images_paid_for_another_request(
    make_project: MakeProject, run_cli: RunCli
) -> None:
    root = make_project({"promptform.toml": CONFIG, "prompts/a.yaml": "prompt: An apple.\n"})
    (root / "generated/a-1.png").mkdir(parents=True)
    run_cli("-C", root, "apply", "--yes")
    (root / "generated/a-1.png").rmdir()
    (root / "prompts/a.yaml").write_text("prompt: A pear.\n")
    [folder] = (root / ".promptform/rescued").iterdir()
    shown = folder.relative_to(root).as_posix()

    assert f"--rescued {shown}" not in run_cli("-C", root, "plan").stderr
    result = run_cli("-C", root, "adopt", "a", "--rescued", shown)

    assert result.exit_code == 1
    assert "was paid for another request of 'a'" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (root / "promptform.lock").exists()
    no_files = run_cli("-C", root, "adopt", "a")
    assert no_files.exit_code == 1
    assert "or --rescued FOLDER" in no_files.stderr


def test_the_next_apply_records_the_rescued_image_instead_of_paying_again(
    make_project: MakeProject, run_cli: RunCli
) -> None:
    root = make_project({"promptform.toml": CONFIG, "prompts/a.yaml": "prompt: An apple.\n"})
    (root / "generated/a-1.png").mkdir(parents=True)
    run_cli("-C", root, "apply", "--yes")
    (root / "generated/a-1.png").rmdir()
    [folder] = (root / ".promptform/rescued").iterdir()
    rescued = (folder / "1.png").read_bytes()

    result = run_cli("-C", root, "apply", "--yes")

    assert result.exit_code == 0, result.stderr
    shown = folder.relative_to(root).as_posix()
    assert f"a: recorded the images paid for this exact request from {shown}/" in result.stderr
    assert "created a" not in result.stderr  # nothing was generated
    assert "No changes." in result.stdout
    entry = read_lockfile(root / "promptform.lock").targets["a"]
    assert entry.provider.name == "rescued"
    assert (root / "generated/a-1.png").read_bytes() == rescued
    locked_entries_match_disk(root)


def test_rescued_images_that_no_longer_fit_are_generated_again(
    make_project: MakeProject, run_cli: RunCli
) -> None:
    root = make_project({"promptform.toml": CONFIG, "prompts/a.yaml": "prompt: An apple.\n"})
    (root / "generated/a-1.png").mkdir(parents=True)
    run_cli("-C", root, "apply", "--yes")
    (root / "generated/a-1.png").rmdir()
    [folder] = (root / ".promptform/rescued").iterdir()
    (folder / "1.png").write_bytes(b"not an image any more")

    result = run_cli("-C", root, "apply", "--yes")

    assert result.exit_code == 0, result.stderr
    assert "a: could not record the images kept in" in result.stderr
    assert "[1/1] created a" in result.stderr
    locked_entries_match_disk(root)


def test_a_lockfile_that_cannot_be_rewritten_leaves_the_previous_outputs_in_place(
    make_project: MakeProject, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_project({"promptform.toml": CONFIG, "prompts/hero.yaml": "prompt: A hero.\n"})
    assert run_cli("-C", root, "apply", "--yes").exit_code == 0
    before = (root / "generated/hero-1.png").read_bytes()
    (root / "prompts/hero.yaml").write_text("prompt: A braver hero.\n")

    def disk_full(
        path: Path, chunks: Iterable[bytes], durable: bool = True, shared: bool = False
    ) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("promptform.state.lockfile_writer.atomic_write_chunks", disk_full)
    result = run_cli("-C", root, "apply", "--yes")
    monkeypatch.undo()

    assert result.exit_code == 1
    assert (root / "generated/hero-1.png").read_bytes() == before
    locked_entries_match_disk(root)
    [folder] = (root / ".promptform/rescued").iterdir()
    assert (folder / "1.png").read_bytes() != before


def test_a_delete_stopped_part_way_records_only_the_outputs_still_in_place(
    make_project: MakeProject, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_project({"promptform.toml": CONFIG, "prompts/pair.yaml": "prompt: A pair.\nn: 2\n"})
    assert run_cli("-C", root, "apply", "--yes").exit_code == 0
    (root / "prompts/pair.yaml").unlink()
    keep = Trash.keep
    calls = []

    def full_after_one(self: Trash, path: Path, move: bool = False) -> Path | None:
        calls.append(path)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return keep(self, path, move)

    monkeypatch.setattr(Trash, "keep", full_after_one)
    result = run_cli("-C", root, "apply", "--yes")
    monkeypatch.undo()

    assert result.exit_code == 1
    entry = read_lockfile(root / "promptform.lock").targets["pair"]
    assert [output.path for output in entry.outputs] == ["pair-2.png"]
    locked_entries_match_disk(root)
    # The next apply finishes the delete; the first image is in the trash, not lost.
    assert run_cli("-C", root, "apply", "--yes").exit_code == 0
    assert "pair" not in read_lockfile(root / "promptform.lock").targets
    assert len(list((root / ".promptform/trash").rglob("pair-*.png"))) == 2


def test_an_unexpected_failure_to_record_keeps_the_images_and_the_other_targets_go_on(
    make_project: MakeProject, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Whatever fails while a paid image is recorded (here a ValueError, as from a value the lock
    # cannot hold), the bytes are kept and the rest of the apply goes on.
    root = make_project(
        {
            "promptform.toml": CONFIG,
            "prompts/a.yaml": "prompt: An apple.\n",
            "prompts/b.yaml": "prompt: A banana.\n",
            "prompts/c.yaml": "prompt: A cherry.\n",
        }
    )
    update = LockfileWriter.update

    def failing_for_b(
        writer: LockfileWriter, put: dict[str, LockEntry], remove: tuple[str, ...]
    ) -> None:
        if "b" in put:
            raise ValueError("the lock cannot hold this entry: an odd value")
        update(writer, put, remove)

    monkeypatch.setattr(LockfileWriter, "update", failing_for_b)

    result = run_cli("-C", root, "apply", "--yes")

    assert result.exit_code == 1, result.stderr
    assert "b: cannot store them: the lock cannot hold this entry" in result.stderr
    assert sorted(read_lockfile(root / "promptform.lock").targets) == ["a", "c"]
    [note] = rescued_notes(root)
    assert note["address"] == "b"
    assert not (root / "generated/b-1.png").exists()
    locked_entries_match_disk(root)


def test_an_image_left_aside_by_an_interrupted_apply_is_put_back_by_the_next(
    make_project: MakeProject, run_cli: RunCli
) -> None:
    # What a kill -9 inside a step-aside leaves when nothing claims the path any more (the
    # manifests were put back): the lock names a-1.png, the image sits at its aside name.
    root = make_project({"promptform.toml": CONFIG, "prompts/a.yaml": "prompt: An apple.\n"})
    assert run_cli("-C", root, "apply", "--yes").exit_code == 0
    image = root / "generated/a-1.png"
    paid = image.read_bytes()
    image.rename(root / "generated/a-1.png.promptform-moving")

    plan = run_cli("-C", root, "plan")
    assert "generated/a-1.png.promptform-moving holds its image" in plan.stdout + plan.stderr
    assert "--repair" not in plan.stdout + plan.stderr  # that would pay for it again
    assert "outputs_dir is now" not in plan.stdout + plan.stderr  # it did not move

    applied = run_cli("-C", root, "apply", "--yes")

    assert applied.exit_code == 0, applied.stderr
    assert image.read_bytes() == paid
    assert not (root / "generated/a-1.png.promptform-moving").exists()
    assert "No changes." in run_cli("-C", root, "plan").stdout
    locked_entries_match_disk(root)
