"""apply on a case-insensitive file system (macOS, Windows): paths that differ only in case are
one file there."""

from __future__ import annotations

from pathlib import Path

from promptform.state.lockfile import read_lockfile
from tests.support.apply import locked_entries_match_disk
from tests.support.casefold import case_insensitive_dir
from tests.support.cli import RunCli
from tests.support.files import write_files

CONFIG = """
[promptform]
default_provider = "offline"

[defaults]
model = "gpt-image-2"
size = "256x256"
quality = "low"
"""


def test_a_case_only_rename_renames_the_file(tmp_path: Path, run_cli: RunCli) -> None:
    with case_insensitive_dir(tmp_path) as mount:
        root = write_files(
            mount / "repo",
            {"promptform.toml": CONFIG, "prompts/hero.yaml": "prompt: A hero.\noutput: Hero.png\n"},
        )
        assert run_cli("-C", root, "apply", "--yes").exit_code == 0
        data = (root / "generated/Hero.png").read_bytes()
        (root / "prompts/hero.yaml").write_text("prompt: A hero.\noutput: hero.png\n")

        result = run_cli("-C", root, "apply", "--yes")

        assert result.exit_code == 0, result.stderr
        assert [path.name for path in (root / "generated").iterdir()] == ["hero.png"]
        assert (root / "generated/hero.png").read_bytes() == data
        [entry] = locked_entries_match_disk(root).values()
        assert entry.outputs[0].path == "hero.png"


def test_deleting_a_target_keeps_the_file_a_new_one_wrote_in_another_case(
    tmp_path: Path, run_cli: RunCli
) -> None:
    with case_insensitive_dir(tmp_path) as mount:
        root = write_files(
            mount / "repo",
            {"promptform.toml": CONFIG, "prompts/old.yaml": "prompt: Old.\noutput: Hero.png\n"},
        )
        assert run_cli("-C", root, "apply", "--yes").exit_code == 0
        (root / "prompts/old.yaml").unlink()
        write_files(root, {"prompts/new.yaml": "prompt: New.\noutput: hero.png\n"})

        result = run_cli("-C", root, "apply", "--yes")

        assert result.exit_code == 0, result.stderr
        assert list(read_lockfile(root / "promptform.lock").targets) == ["new"]
        locked_entries_match_disk(root)


def test_a_case_only_rename_of_a_folder_renames_the_file(tmp_path: Path, run_cli: RunCli) -> None:
    with case_insensitive_dir(tmp_path) as mount:
        root = write_files(
            mount / "repo",
            {"promptform.toml": CONFIG, "prompts/a.yaml": "prompt: A.\noutput: Web/a.png\n"},
        )
        assert run_cli("-C", root, "apply", "--yes").exit_code == 0
        (root / "prompts/a.yaml").write_text("prompt: A.\noutput: web/a.png\n")

        result = run_cli("-C", root, "apply", "--yes")

        assert result.exit_code == 0, result.stderr
        [entry] = locked_entries_match_disk(root).values()
        assert entry.outputs[0].path == "web/a.png"
        assert not list((root / ".promptform").glob("trash/*/*/a.png"))


def test_a_manifest_renamed_only_in_case_keeps_its_lock_entries(
    tmp_path: Path, run_cli: RunCli
) -> None:
    # Its shard moves from hero.yaml.json to Hero.yaml.json, one file on this file system: the
    # old name must not be deleted after the new one was written.
    with case_insensitive_dir(tmp_path) as mount:
        root = write_files(
            mount / "repo",
            {"promptform.toml": CONFIG, "prompts/hero.yaml": "name: hero\nprompt: A hero.\n"},
        )
        assert run_cli("-C", root, "apply", "--yes").exit_code == 0
        (root / "prompts/hero.yaml").rename(root / "prompts/Hero.yaml")

        result = run_cli("-C", root, "apply", "--yes")

        assert result.exit_code == 0, result.stderr
        assert list(read_lockfile(root / "promptform.lock").targets) == ["hero"]
        assert run_cli("-C", root, "plan", "--detailed-exitcode").exit_code == 0
