"""Reference images that a move relocates: nothing is paid for, and nothing is left dangling."""

from __future__ import annotations

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

PROJECT: dict[str, str | bytes] = {
    "promptform.toml": CONFIG,
    "prompts/u.yaml": "prompt: Upstream.\noutput: u.png\n",
    "prompts/d.yaml": "prompt: Downstream.\nimages: [generated/u.png]\n",
}


def test_moving_an_upstream_and_its_reference_together_regenerates_nothing(
    make_project: MakeProject, run_cli: RunCli
) -> None:
    root = make_project(PROJECT)
    assert run_cli("-C", root, "apply", "--yes").exit_code == 0
    before = locked_entries_match_disk(root)
    write_files(
        root,
        {
            "prompts/u.yaml": "prompt: Upstream.\noutput: u2.png\n",
            "prompts/d.yaml": "prompt: Downstream.\nimages: [generated/u2.png]\n",
        },
    )

    plan = run_cli("-C", root, "plan")
    assert plan.exit_code == 0, plan.stderr
    assert "replace" not in plan.stdout.split("Plan:")[0]
    assert "0 to create, 0 to replace, 1 to move" in plan.stdout
    assert run_cli("-C", root, "apply", "--yes").exit_code == 0

    after = locked_entries_match_disk(root)
    assert after["d"].fingerprint == before["d"].fingerprint
    assert after["d"].generated_at == before["d"].generated_at
    assert "No changes." in run_cli("-C", root, "plan").stdout


def test_moving_an_upstream_a_downstream_still_reads_is_a_plan_error(
    make_project: MakeProject, run_cli: RunCli
) -> None:
    root = make_project(PROJECT)
    assert run_cli("-C", root, "apply", "--yes").exit_code == 0
    (root / "prompts/u.yaml").write_text("prompt: Upstream.\noutput: u2.png\n")

    result = run_cli("-C", root, "plan")

    assert result.exit_code == 1
    assert "Traceback" not in result.stderr
    assert (
        "moving `u` takes generated/u.png away, but `d` reads it as a reference image; "
        "point its images: at generated/u2.png" in result.stderr
    )
    assert run_cli("-C", root, "apply", "--yes").exit_code == 1
    assert (root / "generated/u.png").is_file()
