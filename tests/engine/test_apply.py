"""apply with the offline provider: what gets written, recorded, moved, deleted and kept."""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
from pathlib import Path

import pytest
from PIL import Image

from promptform.core.images import check_format, sniff
from promptform.state.lockfile import dumps, read_lockfile
from tests.support.cli import RunCli
from tests.support.files import MakeProject
from tests.support.lock import lock_files, locked_targets

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
    "templates/style.j2": "Flat colours.\n",
    "prompts/cards.yaml": """
        name: cards
        matrix:
          animal: [fox, owl]
        prompt: |
          {% include "style.j2" %}
          A {{ animal }}.
        """,
    "prompts/hero.yaml": "prompt: A hero image.\nn: 2\n",
}


def lock(root: Path) -> dict[str, dict[str, object]]:
    return locked_targets(root / "promptform.lock")


def test_apply_generates_every_output_and_records_it(
    make_project: MakeProject, run_cli: RunCli
) -> None:
    root = make_project(PROJECT)
    result = run_cli("-C", root, "apply", "--yes")
    assert result.exit_code == 0, result.stderr
    entries = read_lockfile(root / "promptform.lock").targets
    assert sorted(entries) == ["cards[animal=fox]", "cards[animal=owl]", "hero"]
    for entry in entries.values():
        assert entry.provider.kind == "offline"
        for output in entry.outputs:
            data = (root / "generated" / output.path).read_bytes()
            assert hashlib.sha256(data).hexdigest() == output.sha256
            assert sniff(data) == (output.format, output.width, output.height)
            assert (output.width, output.height) == (256, 256)
    assert [output.path for output in entries["hero"].outputs] == ["hero-1.png", "hero-2.png"]


def test_second_apply_has_nothing_to_do(make_project: MakeProject, run_cli: RunCli) -> None:
    root = make_project(PROJECT)
    run_cli("-C", root, "apply", "--yes")
    before = lock_files(root / "promptform.lock")
    result = run_cli("-C", root, "apply", "--yes")
    assert result.exit_code == 0
    assert "No changes." in result.stdout
    assert lock_files(root / "promptform.lock") == before


def test_lockfile_written_by_apply_is_canonical(make_project: MakeProject, run_cli: RunCli) -> None:
    root = make_project(PROJECT)
    run_cli("-C", root, "apply", "--yes")
    shards = lock_files(root / "promptform.lock")
    assert sorted(shards) == ["cards.yaml.json", "hero.yaml.json"]  # one per manifest file
    for name, data in shards.items():
        text = data.decode("utf-8")
        assert text == dumps(read_lockfile(root / "promptform.lock" / name))
        assert str(root) not in text


def test_apply_without_yes_and_without_a_terminal_refuses(
    make_project: MakeProject, run_cli: RunCli
) -> None:
    root = make_project(PROJECT)
    result = run_cli("-C", root, "apply")
    assert result.exit_code == 1
    assert "there is no terminal to ask on: pass --yes" in result.stderr
    assert not (root / "promptform.lock").exists()


def test_only_the_changed_target_is_regenerated(make_project: MakeProject, run_cli: RunCli) -> None:
    root = make_project(PROJECT)
    run_cli("-C", root, "apply", "--yes")
    before = lock(root)
    (root / "prompts/hero.yaml").write_text("prompt: A braver hero image.\nn: 2\n")
    result = run_cli("-C", root, "apply", "--yes")
    assert result.exit_code == 0, result.stderr
    after = lock(root)
    assert after["hero"] != before["hero"]
    assert after["cards[animal=fox]"] == before["cards[animal=fox]"]
    assert "1 generated" in result.stderr


def test_replaced_outputs_are_kept_in_the_trash(make_project: MakeProject, run_cli: RunCli) -> None:
    root = make_project(PROJECT)
    run_cli("-C", root, "apply", "--yes")
    old = (root / "generated/hero-1.png").read_bytes()
    (root / "prompts/hero.yaml").write_text("prompt: Another hero.\nn: 2\n")
    run_cli("-C", root, "apply", "--yes")
    kept = list((root / ".promptform/trash").rglob("hero-1.png"))
    assert [path.read_bytes() for path in kept] == [old]


def test_output_rename_moves_the_file_without_generating(
    make_project: MakeProject, run_cli: RunCli
) -> None:
    root = make_project(PROJECT)
    run_cli("-C", root, "apply", "--yes")
    data = (root / "generated/hero-1.png").read_bytes()
    (root / "prompts/hero.yaml").write_text(
        'prompt: A hero image.\nn: 2\noutput: "heroes/main-{{ index }}.png"\n'
    )
    result = run_cli("-C", root, "apply", "--yes")
    assert result.exit_code == 0, result.stderr
    assert "0 generated, 1 moved" in result.stderr
    assert (root / "generated/heroes/main-1.png").read_bytes() == data
    assert not (root / "generated/hero-1.png").exists()
    assert [o["path"] for o in lock(root)["hero"]["outputs"]] == [  # type: ignore[attr-defined]
        "heroes/main-1.png",
        "heroes/main-2.png",
    ]


def test_renamed_manifest_moves_its_entry_to_the_new_address(
    make_project: MakeProject, run_cli: RunCli
) -> None:
    root = make_project(PROJECT)
    run_cli("-C", root, "apply", "--yes")
    fingerprint = lock(root)["hero"]["fingerprint"]
    (root / "prompts/hero.yaml").rename(root / "prompts/banner.yaml")
    result = run_cli("-C", root, "apply", "--yes")
    assert result.exit_code == 0, result.stderr
    entries = lock(root)
    assert "hero" not in entries
    assert entries["banner"]["fingerprint"] == fingerprint
    assert (root / "generated/banner-1.png").is_file()


def test_deleted_manifest_removes_entry_and_keeps_the_image_in_trash(
    make_project: MakeProject, run_cli: RunCli
) -> None:
    root = make_project(PROJECT)
    run_cli("-C", root, "apply", "--yes")
    (root / "prompts/cards.yaml").unlink()
    result = run_cli("-C", root, "apply", "--yes")
    assert result.exit_code == 0, result.stderr
    assert sorted(lock(root)) == ["hero"]
    assert not (root / "generated/cards-fox-1.png").exists()
    assert list((root / ".promptform/trash").rglob("cards-fox-1.png"))


def test_a_lockfile_path_leading_outside_outputs_is_not_deleted(
    make_project: MakeProject, run_cli: RunCli
) -> None:
    root = make_project(PROJECT)
    run_cli("-C", root, "apply", "--yes")
    victim = root.parent / "victim.txt"
    victim.write_text("not an output")
    shard = root / "promptform.lock/hero.yaml.json"
    data = json.loads(shard.read_text())
    entry = json.loads(json.dumps(data["targets"]["hero"]))
    entry["outputs"] = [{**entry["outputs"][0], "path": f"../../{victim.name}"}]
    data["targets"]["gone"] = entry
    shard.write_text(json.dumps(data))
    result = run_cli("-C", root, "apply", "--yes")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: promptform.lock/hero.yaml.json: corrupt lockfile: targets.gone.outputs.0.path: "
        "path '../../victim.txt' contains '..'; restore it from git\n"
    )
    assert victim.read_text() == "not an output"
    assert "gone" in lock(root)  # a corrupt lockfile is never rewritten


def test_a_replaced_targets_old_path_taken_by_a_moved_output_is_not_trashed(
    make_project: MakeProject, run_cli: RunCli
) -> None:
    root = make_project(
        {
            "promptform.toml": CONFIG,
            "prompts/x.yaml": 'prompt: A fox.\noutput: "a.png"\n',
            "prompts/y.yaml": 'prompt: An owl.\noutput: "b.png"\n',
        }
    )
    run_cli("-C", root, "apply", "--yes")
    owl = (root / "generated/b.png").read_bytes()
    (root / "prompts/x.yaml").write_text('prompt: A red fox.\noutput: "c.png"\n')
    (root / "prompts/y.yaml").write_text('prompt: An owl.\noutput: "a.png"\n')
    result = run_cli("-C", root, "apply", "--yes")
    assert result.exit_code == 0, result.stderr
    assert (root / "generated/a.png").read_bytes() == owl
    assert (root / "generated/c.png").is_file()


@pytest.mark.parametrize(
    ("x_to", "y_to"), [("b.png", "a.png"), ("b.png", "c.png")], ids=["swap", "shift"]
)
def test_moves_into_each_others_paths_keep_every_image_where_recorded(
    make_project: MakeProject, run_cli: RunCli, x_to: str, y_to: str
) -> None:
    root = make_project(
        {
            "promptform.toml": CONFIG,
            "prompts/x.yaml": 'prompt: A fox.\noutput: "a.png"\n',
            "prompts/y.yaml": 'prompt: An owl.\noutput: "b.png"\n',
        }
    )
    run_cli("-C", root, "apply", "--yes")
    fox, owl = (root / "generated/a.png").read_bytes(), (root / "generated/b.png").read_bytes()
    (root / "prompts/x.yaml").write_text(f'prompt: A fox.\noutput: "{x_to}"\n')
    (root / "prompts/y.yaml").write_text(f'prompt: An owl.\noutput: "{y_to}"\n')
    result = run_cli("-C", root, "apply", "--yes")
    assert result.exit_code == 0, result.stderr
    assert (root / "generated" / x_to).read_bytes() == fox
    assert (root / "generated" / y_to).read_bytes() == owl
    entries = lock(root)
    assert [o["path"] for o in entries["x"]["outputs"]] == [x_to]  # type: ignore[index]
    assert [o["path"] for o in entries["y"]["outputs"]] == [y_to]  # type: ignore[index]
    assert "No changes." in run_cli("-C", root, "plan").stdout


def test_budget_refuses_before_generating_anything(
    make_project: MakeProject, run_cli: RunCli
) -> None:
    root = make_project(PROJECT)
    result = run_cli("-C", root, "apply", "--yes", "--max-images", "3")
    assert result.exit_code == 1
    assert "generates 4 images, over the budget of 3" in result.stderr
    assert not (root / "generated").exists()


def test_saved_plan_is_applied_as_reviewed(make_project: MakeProject, run_cli: RunCli) -> None:
    root = make_project(PROJECT)
    assert run_cli("-C", root, "plan", "--target", "hero", "--out", root / "p.json").exit_code == 0
    result = run_cli("-C", root, "apply", root / "p.json")
    assert result.exit_code == 0, result.stderr
    assert sorted(lock(root)) == ["hero"]


def test_stale_saved_plan_is_refused(make_project: MakeProject, run_cli: RunCli) -> None:
    root = make_project(PROJECT)
    run_cli("-C", root, "plan", "--out", root / "p.json")
    (root / "prompts/hero.yaml").write_text("prompt: Changed after review.\n")
    result = run_cli("-C", root, "apply", root / "p.json")
    assert result.exit_code == 1
    assert "stale" in result.stderr
    assert not (root / "promptform.lock").exists()


def test_downstream_is_generated_from_the_new_upstream_image(
    make_project: MakeProject, run_cli: RunCli
) -> None:
    root = make_project(
        {
            "promptform.toml": CONFIG,
            "prompts/base.yaml": "prompt: A plain mug.\n",
            "prompts/edit.yaml": "images: [generated/base-1.png]\nprompt: Add a logo.\n",
        }
    )
    result = run_cli("-C", root, "apply", "--yes")
    assert result.exit_code == 0, result.stderr
    entries = lock(root)
    base_sha = entries["base"]["outputs"][0]["sha256"]  # type: ignore[index]
    assert entries["edit"]["inputs"][0]["sha256"] == base_sha  # type: ignore[index]
    assert entries["edit"]["endpoint"] == "images/edits"
    assert run_cli("-C", root, "plan", "--detailed-exitcode").exit_code == 0


def test_provider_override_plans_and_applies_offline(
    make_project: MakeProject, run_cli: RunCli
) -> None:
    files = dict(PROJECT)
    files["promptform.toml"] = "[defaults]\nsize = '256x256'\nquality = 'low'\n"
    root = make_project(files)  # default provider: wisgate, and no key in the environment
    result = run_cli("-C", root, "apply", "--yes", "--provider", "offline")
    assert result.exit_code == 0, result.stderr
    assert {entry["provider"]["name"] for entry in lock(root).values()} == {"offline"}  # type: ignore[index]
    assert (
        run_cli("-C", root, "plan", "--provider", "offline", "--detailed-exitcode").exit_code == 0
    )
    # Switching to the real provider re-plans every offline preview as a replacement.
    replanned = run_cli("-C", root, "plan", "--format", "json")
    assert json.loads(replanned.stdout)["summary"]["replace"] == 3


def test_missing_api_key_fails_before_any_request(
    make_project: MakeProject, run_cli: RunCli
) -> None:
    files = dict(PROJECT)
    files["promptform.toml"] = "[defaults]\nsize = '1024x1024'\n"
    root = make_project(files)
    result = run_cli("-C", root, "apply", "--yes")
    assert result.exit_code == 1
    assert "WISGATE_API_KEY" in result.stderr
    assert not (root / "promptform.lock").exists()


@pytest.mark.parametrize("flag", ["--max-cost", "--max-images"])
def test_budget_flags_accept_a_plan_within_them(
    make_project: MakeProject, run_cli: RunCli, flag: str
) -> None:
    root = make_project(PROJECT)
    assert run_cli("-C", root, "apply", "--yes", flag, "10").exit_code == 0


def test_offline_apply_writes_every_output_format_of_the_images_api(
    make_project: MakeProject, run_cli: RunCli
) -> None:
    cases = {
        "png": "output_format: png\n",
        "jpeg": "output_format: jpeg\noutput_compression: 70\n",
        "webp": "output_format: webp\noutput_compression: 85\n",
        "png-transparent": "output_format: png\nbackground: transparent\n",
        "webp-transparent": "output_format: webp\nbackground: transparent\n",
    }
    files: dict[str, str | bytes] = {
        "promptform.toml": "[defaults]\nmodel = 'gpt-image-2'\nsize = '256x128'\n",
        **{
            f"prompts/{name}.yaml": f"prompt: A {name} tile.\n{params}"
            for name, params in cases.items()
        },
    }
    root = make_project(files)
    result = run_cli("-C", root, "apply", "--yes", "--provider", "offline")
    assert result.exit_code == 0, result.stderr
    entries = read_lockfile(root / "promptform.lock").targets
    assert sorted(entries) == sorted(cases)
    for name, entry in entries.items():
        fmt = name.split("-")[0]
        (output,) = entry.outputs
        data = (root / "generated" / output.path).read_bytes()
        assert check_format(data, fmt) == (fmt, 256, 128), name
        assert (output.format, output.width, output.height) == (fmt, 256, 128)
        expected_mode = "RGBA" if name.endswith("-transparent") else "RGB"
        assert Image.open(io.BytesIO(data)).mode == expected_mode, name
    assert (
        run_cli("-C", root, "plan", "--provider", "offline", "--detailed-exitcode").exit_code == 0
    )


def test_the_drift_hints_name_the_apply_that_does_what_they_say(
    make_project: MakeProject, run_cli: RunCli
) -> None:
    root = make_project(PROJECT)
    assert run_cli("-C", root, "apply", "--yes").exit_code == 0
    (root / "generated/hero-1.png").unlink()
    (root / "generated/hero-2.png").write_bytes(b"edited by hand")

    plan = run_cli("-C", root, "plan").stdout
    missing = (
        "generated/hero-1.png is missing; restore it from git, or run `promptform apply --repair`"
    )
    modified = "or regenerate it with `promptform apply --replace 'hero'`"
    assert missing in plan and modified in plan

    # Following the hints does what they say.
    assert run_cli("-C", root, "apply", "--repair", "--replace", "hero", "--yes").exit_code == 0
    assert run_cli("-C", root, "plan", "--detailed-exitcode").exit_code == 0


def test_outputs_get_the_permissions_the_umask_allows(
    make_project: MakeProject, run_cli: RunCli
) -> None:
    root = make_project(PROJECT)
    previous = os.umask(0o022)
    try:
        assert run_cli("-C", root, "apply", "--yes").exit_code == 0
        assert run_cli("-C", root, "plan").exit_code == 0
    finally:
        os.umask(previous)

    images = sorted((root / "generated").rglob("*.png"))
    assert images and {stat.S_IMODE(image.stat().st_mode) for image in images} == {0o644}
    # Local state stays private to its owner.
    assert stat.S_IMODE((root / ".promptform/stat-cache.json").stat().st_mode) == 0o600
