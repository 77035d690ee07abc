"""`promptform plan` end to end: formats, exit codes, budget, saved plans and lockfile errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from syrupy.assertion import SnapshotAssertion

from tests.support.cli import RunCli
from tests.support.files import MakeProject
from tests.support.lock import lock_files
from tests.support.plans import CONFIG, apply_everything

FILES = {
    "promptform.toml": CONFIG,
    "prompts/a.yaml": "name: a\nprompt: A fox.\n",
    "prompts/b.yaml": "name: b\nprompt: An owl.\n",
}


@pytest.fixture
def root(make_project: MakeProject) -> Path:
    return make_project(FILES)


def test_plan_exits_zero_with_changes_by_default(root: Path, run_cli: RunCli) -> None:
    result = run_cli("-C", root, "plan")
    assert result.exit_code == 0
    assert "Plan: 2 to create, 0 to replace" in result.stdout


def test_detailed_exitcode_is_two_when_there_are_changes(root: Path, run_cli: RunCli) -> None:
    assert run_cli("-C", root, "plan", "--detailed-exitcode").exit_code == 2


def test_detailed_exitcode_is_zero_without_changes(root: Path, run_cli: RunCli) -> None:
    apply_everything(root)
    result = run_cli("-C", root, "plan", "--detailed-exitcode")
    assert result.exit_code == 0
    assert result.stdout == "No changes. 2 targets up to date.\n"


def test_plan_formats_are_selectable(root: Path, run_cli: RunCli) -> None:
    assert run_cli("-C", root, "plan", "--format", "markdown").stdout.startswith("### promptform")
    data = json.loads(run_cli("-C", root, "plan", "--format", "json").stdout)
    assert data["format_version"] == "1.0"
    assert data["summary"]["create"] == 2


def test_plan_over_the_image_budget_fails_with_the_numbers(root: Path, run_cli: RunCli) -> None:
    (root / "promptform.toml").write_text(CONFIG + "\n[budget]\nmax_images = 1\n")
    result = run_cli("-C", root, "plan")
    assert result.exit_code == 1
    assert "the plan generates 2 images, over the budget of 1" in result.stderr


def test_plan_over_the_cost_budget_fails_with_the_numbers(root: Path, run_cli: RunCli) -> None:
    (root / "promptform.toml").write_text(CONFIG + "\n[budget]\nmax_cost = 0.05\n")
    result = run_cli("-C", root, "plan")
    assert result.exit_code == 1
    assert "estimated at $0.11, over the budget of $0.05" in result.stderr


def test_config_pricing_overrides_the_estimate(root: Path, run_cli: RunCli) -> None:
    (root / "promptform.toml").write_text(CONFIG + '\n[pricing."gpt-image-2"]\ndefault = 0.5\n')
    assert "2 images, estimated $1.00." in run_cli("-C", root, "plan").stdout


def test_plan_out_writes_a_saved_plan(root: Path, run_cli: RunCli) -> None:
    result = run_cli("-C", root, "plan", "--out", root / "tfplan.json")
    assert result.exit_code == 0
    saved = json.loads((root / "tfplan.json").read_text())
    assert saved["kind"] == "promptform-saved-plan"
    assert set(saved["fingerprints"]) == {"a", "b"}
    assert "promptform apply" in result.stderr


def test_plan_is_read_only_for_the_lockfile_and_outputs(root: Path, run_cli: RunCli) -> None:
    apply_everything(root)
    (root / "prompts/a.yaml").write_text("name: a\nprompt: A red fox.\n")
    before = lock_files(root / "promptform.lock")
    run_cli("-C", root, "plan")
    assert lock_files(root / "promptform.lock") == before
    assert sorted(path.name for path in (root / "generated").iterdir()) == ["a-1.png", "b-1.png"]


def test_corrupt_lockfile_is_a_clear_error_and_left_alone(root: Path, run_cli: RunCli) -> None:
    (root / "promptform.lock").write_text('{"version": 1, "targets": {<<<<<<< HEAD\n')
    result = run_cli("-C", root, "plan")
    assert result.exit_code == 1
    assert "corrupt lockfile" in result.stderr
    assert (root / "promptform.lock").read_text().startswith('{"version": 1, "targets": {<<<')


def test_newer_lockfile_version_asks_to_upgrade(root: Path, run_cli: RunCli) -> None:
    (root / "promptform.lock").write_text('{"version": 3, "targets": {}}\n')
    result = run_cli("-C", root, "plan")
    assert result.exit_code == 1
    assert "written by a newer promptform; upgrade promptform" in result.stderr


@pytest.mark.parametrize("version", ["0", "-1"])
def test_a_lockfile_version_this_promptform_never_wrote_is_corrupt(
    root: Path, run_cli: RunCli, version: str
) -> None:
    (root / "promptform.lock").write_text(f'{{"version": {version}, "targets": {{}}}}\n')
    result = run_cli("-C", root, "plan")
    assert result.exit_code == 1
    assert "corrupt lockfile: version" in result.stderr


def test_unknown_target_pattern_is_an_error(root: Path, run_cli: RunCli) -> None:
    result = run_cli("-C", root, "plan", "--target", "zzz")
    assert result.exit_code == 1
    assert "--target 'zzz' matches no target" in result.stderr


def test_a_changed_outputs_dir_is_a_change_with_the_way_to_move_the_files(
    root: Path, run_cli: RunCli
) -> None:
    apply_everything(root)
    config = root / "promptform.toml"
    config.write_text(
        config.read_text().replace("[promptform]", '[promptform]\noutputs_dir = "art"', 1)
    )

    result = run_cli("-C", root, "plan", "--detailed-exitcode")

    assert result.exit_code == 2
    assert "No changes" not in result.stdout
    assert "outputs_dir is now art/" in result.stdout
    assert "they are under generated/" in result.stdout
    assert "git mv generated art" in result.stdout
    data = json.loads(run_cli("-C", root, "plan", "--format", "json").stdout)
    assert data["outputs_dir_change"] == {"current": "art", "previous": "generated", "outputs": 2}
    # the pull-request comment says it too, instead of listing every output as missing
    markdown = run_cli("-C", root, "plan", "--format", "markdown").stdout
    assert "outputs_dir is now art/" in markdown
    assert "`git mv generated art`" in markdown
    assert "missing" not in markdown


def test_targets_previewed_offline_are_one_line_next_to_the_real_change(
    make_project: MakeProject, run_cli: RunCli, snapshot: SnapshotAssertion
) -> None:
    # A designer without a key previews everything offline, then switches to the real provider
    # and edits one prompt: the edit must not drown among the previews' replacements.
    defaults = "[defaults]\nsize = '1024x1024'\nquality = 'low'\n"
    offline = f"[promptform]\ndefault_provider = 'offline'\n{defaults}"
    root = make_project(
        {
            "promptform.toml": offline,
            "prompts/tile.yaml": "matrix:\n  palette: [warm, cool, dusk]\nprompt: A {{ palette }} tile.\n",
            "prompts/hero.yaml": "prompt: A hero shot.\n",
        }
    )
    assert run_cli("-C", root, "apply", "--yes").exit_code == 0
    (root / "promptform.toml").write_text(defaults)
    (root / "prompts/hero.yaml").write_text("prompt: A hero shot at dusk.\n")

    result = run_cli("-C", root, "plan")
    markdown = run_cli("-C", root, "plan", "--format", "markdown").stdout
    listed = json.loads(run_cli("-C", root, "plan", "--format", "json").stdout)["changes"]

    assert result.exit_code == 0
    assert result.stdout == snapshot
    assert result.stdout.count("provider kind: offline -> openai") == 1
    assert "> 3 targets were previewed offline and will be generated for real" in markdown
    assert "tile[" not in markdown and "<code>hero</code>" in markdown
    assert len(listed) == 4  # machines still get every change
