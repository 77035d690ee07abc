"""preview: apply in a scratch copy (never the project), optionally cheaper, with a before/after gallery."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from promptform.state.lockfile import read_lockfile
from tests.support.cli import RunCli
from tests.support.files import MakeProject

PROJECT: dict[str, str | bytes] = {
    "promptform.toml": (
        '[promptform]\ndefault_provider = "offline"\n[defaults]\nsize = "64x64"\nquality = "high"\n'
    ),
    "prompts/hero.yaml": "prompt: A hero image.\n",
    "prompts/icon.yaml": "prompt: An icon.\n",
}


def tree_digest(root: Path) -> dict[str, str]:
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


@pytest.fixture
def root(make_project: MakeProject, run_cli: RunCli) -> Path:
    root = make_project(PROJECT)
    assert run_cli("-C", root, "apply", "--yes").exit_code == 0
    (root / "prompts/hero.yaml").write_text("prompt: A brighter hero image.\n")
    return root


def test_preview_applies_changes_in_the_scratch_copy_only(
    root: Path, run_cli: RunCli, tmp_path: Path
) -> None:
    before = tree_digest(root)
    scratch = tmp_path / "preview"
    result = run_cli("-C", root, "preview", scratch, "--quality", "low")
    assert result.exit_code == 0, result.stderr
    assert tree_digest(root) == before  # not the lockfile, not an output, not .promptform/
    entries = read_lockfile(scratch / "project/promptform.lock").targets
    assert entries["hero"].request["quality"] == "low"
    assert entries["hero"].request["prompt"] == "A brighter hero image."
    assert entries["icon"].request["quality"] == "high"  # unchanged targets are not regenerated
    assert result.stdout.strip() == str(scratch / "gallery/index.html")
    page = (scratch / "gallery/index.html").read_text()
    assert "1 changed since the current images" in page
    assert "Preview: 1 generated, 1 image, " in result.stderr


def test_preview_honours_the_budget_before_generating(
    root: Path, run_cli: RunCli, tmp_path: Path
) -> None:
    result = run_cli("-C", root, "preview", tmp_path / "p", "--max-images", "0")
    assert result.exit_code == 1
    assert "over the budget of 0" in result.stderr
    assert not (tmp_path / "p/gallery").exists()


def test_preview_refuses_a_scratch_directory_inside_the_project(
    root: Path, run_cli: RunCli
) -> None:
    result = run_cli("-C", root, "preview", root / "generated/preview")
    assert result.exit_code == 1
    assert "is inside the project" in result.stderr


@pytest.mark.parametrize("folder", [".promptform", ".promptform/trash"])
def test_preview_refuses_the_folders_that_keep_replaced_images(
    make_project: MakeProject, run_cli: RunCli, folder: str
) -> None:
    root = make_project(PROJECT)
    result = run_cli("-C", root, "preview", root / folder)
    assert result.exit_code == 1
    assert "holds promptform's own state" in result.stderr


def test_preview_may_reuse_its_own_directory(root: Path, run_cli: RunCli, tmp_path: Path) -> None:
    scratch = tmp_path / "preview"
    assert run_cli("-C", root, "preview", scratch).exit_code == 0
    assert run_cli("-C", root, "preview", scratch).exit_code == 0
    (tmp_path / "other").mkdir()
    (tmp_path / "other/file").write_text("x")
    result = run_cli("-C", root, "preview", tmp_path / "other")
    assert result.exit_code == 1 and "holds no previous preview" in result.stderr


def test_report_can_compare_with_another_checkout(
    root: Path, run_cli: RunCli, tmp_path: Path
) -> None:
    scratch = tmp_path / "preview"
    run_cli("-C", root, "preview", scratch)
    result = run_cli(
        "-C", scratch / "project", "report", "--format", "markdown", "--base-dir", root
    )
    assert result.exit_code == 0, result.stderr
    assert "### promptform: 1 image generated for 1 target" in result.stdout
    assert "<code>generated/hero-1.png</code>" in result.stdout
