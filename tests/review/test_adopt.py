"""adopt: images made elsewhere become a target's outputs; plan then has nothing to do for it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from promptform.core.config import load_config
from promptform.core.images import encode_png
from promptform.review.adopt import AdoptError, adopt
from promptform.state.lockfile import read_lockfile
from tests.support.cli import RunCli
from tests.support.files import MakeProject

CONFIG = """
[promptform]
default_provider = "wisgate"

[defaults]
size = "64x64"
quality = "low"
"""

PROJECT: dict[str, str | bytes] = {
    "promptform.toml": CONFIG,
    "prompts/hero.yaml": "prompt: A hero image.\n",
    "prompts/pair.yaml": "prompt: A pair.\nn: 2\n",
    "prompts/photo.yaml": "prompt: A photo.\noutput_format: jpeg\n",
}


def png(width: int = 64, height: int = 64, shade: int = 90) -> bytes:
    return encode_png(width, height, [bytes([shade, 120, 200]) * width] * height)


@pytest.fixture
def root(make_project: MakeProject) -> Path:
    return make_project(PROJECT)


def studio_file(root: Path, name: str, data: bytes) -> Path:
    path = root.parent / "downloads" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    return path


def test_adopted_image_is_copied_and_recorded_with_the_targets_fingerprint(
    root: Path, run_cli: RunCli
) -> None:
    data = png()
    source = studio_file(root, "studio.png", data)
    result = run_cli("-C", root, "adopt", "hero", source, "--source", "wisgate-studio")
    assert result.exit_code == 0, result.stderr
    assert (root / "generated/hero-1.png").read_bytes() == data
    entry = read_lockfile(root / "promptform.lock").targets["hero"]
    assert entry.provider.kind == "adopted" and entry.provider.name == "wisgate-studio"
    assert entry.outputs[0].sha256 == hashlib.sha256(data).hexdigest()
    assert (entry.outputs[0].width, entry.outputs[0].height) == (64, 64)
    assert entry.request["prompt"] == "A hero image."
    assert entry.cost_usd is None


def test_plan_shows_no_op_for_an_adopted_target(root: Path, run_cli: RunCli) -> None:
    run_cli("-C", root, "adopt", "hero", studio_file(root, "a.png", png()))
    result = run_cli("-C", root, "plan", "--format", "json", "--target", "hero")
    assert result.exit_code == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["changes"] == [] and plan["drift"] == []
    assert plan["summary"]["unchanged"] == 1


def test_a_later_prompt_change_is_not_blamed_on_the_provider_kind(
    root: Path, run_cli: RunCli
) -> None:
    run_cli("-C", root, "adopt", "hero", studio_file(root, "a.png", png()))
    (root / "prompts/hero.yaml").write_text("prompt: Another hero.\n")
    result = run_cli("-C", root, "plan", "--target", "hero")
    assert "prompt changed" in result.stdout
    assert "provider kind" not in result.stdout


def test_adopt_replaces_a_previous_output_and_keeps_it_in_the_trash(
    root: Path, run_cli: RunCli
) -> None:
    run_cli("-C", root, "adopt", "hero", studio_file(root, "a.png", png(shade=1)))
    run_cli("-C", root, "adopt", "hero", studio_file(root, "b.png", png(shade=2)))
    assert (root / "generated/hero-1.png").read_bytes() == png(shade=2)
    kept = list((root / ".promptform/trash").rglob("hero-1.png"))
    assert [path.read_bytes() for path in kept] == [png(shade=1)]


def test_adopt_refuses_a_file_of_another_format(root: Path) -> None:
    with pytest.raises(
        AdoptError, match=r"expected a jpeg image but got png; 'photo' outputs jpeg"
    ):
        adopt(load_config(root), "photo", [studio_file(root, "x.png", png())])


def test_adopt_refuses_bytes_that_are_not_an_image(root: Path) -> None:
    fake = studio_file(root, "x.png", b"<html>not an image</html>")
    with pytest.raises(AdoptError, match="not a PNG, JPEG or WEBP image"):
        adopt(load_config(root), "hero", [fake])


def test_adopt_refuses_a_truncated_image(root: Path) -> None:
    with pytest.raises(AdoptError, match="truncated PNG"):
        adopt(load_config(root), "hero", [studio_file(root, "x.png", png()[:-20])])


def test_adopt_refuses_fewer_files_than_n(root: Path) -> None:
    with pytest.raises(AdoptError, match=r"'pair' has n=2 images, but 1 file was given"):
        adopt(load_config(root), "pair", [studio_file(root, "x.png", png())])


def test_adopt_refuses_more_files_than_n(root: Path) -> None:
    files = [studio_file(root, f"{index}.png", png()) for index in range(2)]
    with pytest.raises(AdoptError, match=r"'hero' has n=1 image, but 2 files were given"):
        adopt(load_config(root), "hero", files)


def test_adopt_refuses_an_unknown_address_and_suggests_one(root: Path) -> None:
    with pytest.raises(AdoptError, match=r"no target 'heros'; did you mean 'hero'\?"):
        adopt(load_config(root), "heros", [studio_file(root, "x.png", png())])


def test_refused_adopt_writes_nothing(root: Path, run_cli: RunCli) -> None:
    result = run_cli("-C", root, "adopt", "pair", studio_file(root, "x.png", png()))
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert not (root / "promptform.lock").exists()
    assert not (root / "generated").exists()


def test_adopt_refuses_a_missing_file_in_one_line(root: Path, run_cli: RunCli) -> None:
    result = run_cli("-C", root, "adopt", "hero", root / "nope.png")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot read ") and result.stderr.count("\n") == 1


def test_adopt_warns_when_the_size_differs_from_the_request(root: Path, run_cli: RunCli) -> None:
    result = run_cli("-C", root, "adopt", "hero", studio_file(root, "big.png", png(128, 64)))
    assert result.exit_code == 0
    assert "is 128x64, the manifest asks for 64x64" in result.stderr


def test_adopt_waits_for_no_apply(root: Path) -> None:
    from promptform.state.apply_lock import apply_lock

    config = load_config(root)
    with apply_lock(config.state_dir), pytest.raises(Exception, match="another apply is running"):
        adopt(config, "hero", [studio_file(root, "x.png", png())])
