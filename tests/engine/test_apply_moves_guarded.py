"""Moves never take a file another lock entry still records, and move only what they recorded."""

from __future__ import annotations

import hashlib
from pathlib import Path

from promptform.state.lockfile import read_lockfile
from tests.support.apply import locked_entries_match_disk
from tests.support.cli import RunCli
from tests.support.files import MakeProject, write_files

CONFIG = """
[promptform]
default_provider = "offline"

[defaults]
model = "gpt-image-2"
size = "256x256"
quality = "low"
"""


def project(make_project: MakeProject, a: str, b: str) -> Path:
    return make_project(
        {
            "promptform.toml": CONFIG,
            "prompts/a.yaml": a,
            "prompts/b.yaml": b,
        }
    )


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def every_recorded_image_is_reachable(root: Path, images: dict[str, str]) -> None:
    """Each sha256 in `images` is an output, in the trash or rescued."""
    found = {digest(path) for path in root.rglob("*") if path.is_file()}
    for name, sha in images.items():
        assert sha in found, f"{name}'s image is gone"


def test_a_move_onto_the_old_path_of_a_failed_replace_keeps_both_images(
    make_project: MakeProject, run_cli: RunCli
) -> None:
    root = project(make_project, "prompt: A.\noutput: x.png\n", "prompt: B.\noutput: z.png\n")
    assert run_cli("-C", root, "apply", "--yes").exit_code == 0
    a_image, b_image = digest(root / "generated/x.png"), digest(root / "generated/z.png")
    write_files(
        root,
        {
            "prompts/a.yaml": "prompt: A again.\noutput: y.png\n",
            "prompts/b.yaml": "prompt: B.\noutput: x.png\n",
        },
    )
    (root / "generated/y.png").mkdir()  # a's replace cannot be written

    result = run_cli("-C", root, "apply", "--yes")

    assert result.exit_code == 1
    entries = locked_entries_match_disk(root)
    assert digest(root / "generated" / entries["b"].outputs[0].path) == b_image
    assert entries["a"].outputs[0].sha256 == a_image
    (root / "generated/y.png").rmdir()
    assert run_cli("-C", root, "apply", "--yes").exit_code == 0
    entries = locked_entries_match_disk(root)
    assert [output.path for output in entries["a"].outputs] == ["y.png"]
    assert "No changes." in run_cli("-C", root, "plan").stdout
    every_recorded_image_is_reachable(root, {"a": a_image, "b": b_image})


def test_apply_target_on_one_side_of_a_shift_does_not_take_the_others_file(
    make_project: MakeProject, run_cli: RunCli
) -> None:
    root = project(make_project, "prompt: A.\noutput: x.png\n", "prompt: B.\noutput: z.png\n")
    assert run_cli("-C", root, "apply", "--yes").exit_code == 0
    a_image, b_image = digest(root / "generated/x.png"), digest(root / "generated/z.png")
    write_files(
        root,
        {
            "prompts/a.yaml": "prompt: A.\noutput: y.png\n",
            "prompts/b.yaml": "prompt: B.\noutput: x.png\n",
        },
    )

    result = run_cli("-C", root, "apply", "--yes", "--target", "b")

    assert result.exit_code == 0, result.stderr
    entries = locked_entries_match_disk(root)
    assert entries["a"].outputs[0].sha256 == a_image
    assert run_cli("-C", root, "apply", "--yes").exit_code == 0
    entries = locked_entries_match_disk(root)
    assert digest(root / "generated/y.png") == a_image
    assert digest(root / "generated/x.png") == b_image
    assert "No changes." in run_cli("-C", root, "plan").stdout


def test_adopt_onto_a_path_with_a_pending_move_keeps_the_moving_image(
    make_project: MakeProject, run_cli: RunCli, tmp_path: Path
) -> None:
    root = project(make_project, "prompt: A.\noutput: x.png\n", "prompt: B.\noutput: z.png\n")
    assert run_cli("-C", root, "apply", "--yes").exit_code == 0
    a_image = digest(root / "generated/x.png")
    outside = tmp_path / "studio.png"
    outside.write_bytes((root / "generated/z.png").read_bytes())
    write_files(
        root,
        {
            "prompts/a.yaml": "prompt: A.\noutput: y.png\n",
            "prompts/c.yaml": "prompt: C.\noutput: x.png\n",
        },
    )

    adopted = run_cli("-C", root, "adopt", "c", str(outside))

    assert adopted.exit_code == 0, adopted.stderr
    locked_entries_match_disk(root)
    assert run_cli("-C", root, "apply", "--yes").exit_code == 0
    locked_entries_match_disk(root)
    assert digest(root / "generated/y.png") == a_image


def test_a_move_refuses_a_file_that_is_not_the_recorded_image(
    make_project: MakeProject, run_cli: RunCli
) -> None:
    root = project(make_project, "prompt: A.\noutput: x.png\n", "prompt: B.\noutput: z.png\n")
    assert run_cli("-C", root, "apply", "--yes").exit_code == 0
    edited = (root / "generated/z.png").read_bytes() + b"edited"
    (root / "generated/x.png").write_bytes(edited)
    (root / "prompts/a.yaml").write_text("prompt: A.\noutput: y.png\n")

    result = run_cli("-C", root, "apply", "--yes")

    assert result.exit_code == 1
    assert "x.png is not the image promptform.lock records for `a`" in result.stderr
    assert (root / "generated/x.png").read_bytes() == edited
    assert not (root / "generated/y.png").exists()
    assert [
        output.path for output in read_lockfile(root / "promptform.lock").targets["a"].outputs
    ] == ["x.png"]


def test_a_move_refused_part_way_records_the_outputs_it_already_moved(
    make_project: MakeProject, run_cli: RunCli
) -> None:
    root = project(make_project, "prompt: A.\nn: 2\noutput: x.png\n", "prompt: B.\noutput: z.png\n")
    assert run_cli("-C", root, "apply", "--yes").exit_code == 0
    first = digest(root / "generated/x-1.png")
    (root / "generated/x-2.png").write_bytes(b"edited by hand")
    (root / "prompts/a.yaml").write_text("prompt: A.\nn: 2\noutput: y.png\n")

    result = run_cli("-C", root, "apply", "--yes")

    assert result.exit_code == 1
    assert "x-2.png is not the image promptform.lock records for `a`" in result.stderr
    assert (root / "generated/x-2.png").read_bytes() == b"edited by hand"
    # What moved before the refusal is recorded where it now is; the rest moves next time.
    [first_output, _] = read_lockfile(root / "promptform.lock").targets["a"].outputs
    assert first_output.sha256 == first
    assert digest(root / "generated" / first_output.path) == first
    (root / "generated/x-2.png").unlink()
    assert run_cli("-C", root, "apply", "--yes", "--repair").exit_code == 0
    locked_entries_match_disk(root)
    assert digest(root / "generated/y-1.png") == first
