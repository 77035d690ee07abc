"""One address syntax for render, plan/apply --target and --replace, status and show."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from syrupy.assertion import SnapshotAssertion

from tests.support.cli import RunCli
from tests.support.files import MakeProject
from tests.support.plans import CONFIG, apply_everything

HERO = "marketing/product-hero[product=water bottle,time=dawn]"
FILES = {
    "promptform.toml": CONFIG,
    "prompts/marketing/hero.yaml": """
        name: marketing/product-hero
        matrix:
          product: [water bottle, mug]
          time: [dawn, dusk]
        prompt: A {{ product }} at {{ time }}.
        """,
    "prompts/sunset.yaml": "prompt: A sunset.\n",
}
README = Path(__file__).parents[2] / "README.md"


@pytest.fixture
def root(make_project: MakeProject) -> Path:
    return make_project(FILES)


def _rendered(run_cli: RunCli, root: Path, *patterns: str) -> list[str]:
    result = run_cli("-C", root, "render", "--json", *patterns)
    assert result.exit_code == 0, result.stderr
    return [request["address"] for request in json.loads(result.stdout)]


@pytest.mark.parametrize(
    "pattern",
    [
        HERO,
        "marketing/product-hero[time=dawn,product=water bottle]",
        "generated/marketing/product-hero-water-bottle-dawn-1.png",
        "marketing/product-hero-water-bottle-dawn-1.png",
    ],
)
def test_render_selects_one_cell_by_address_axes_in_any_order_or_output(
    run_cli: RunCli, root: Path, pattern: str
) -> None:
    assert _rendered(run_cli, root, pattern) == [HERO]


@pytest.mark.parametrize("pattern", ["prompts/marketing/hero.yaml", "marketing/hero.yaml"])
def test_a_manifest_path_selects_all_its_targets(run_cli: RunCli, root: Path, pattern: str) -> None:
    addresses = _rendered(run_cli, root, pattern)
    assert len(addresses) == 4
    assert all(address.startswith("marketing/product-hero[") for address in addresses)


def test_plan_target_and_replace_accept_paths_and_reordered_axes(
    run_cli: RunCli, root: Path
) -> None:
    apply_everything(root)
    result = run_cli(
        "-C",
        root,
        "plan",
        "--format",
        "json",
        "--target",
        "generated/marketing/product-hero-water-bottle-dawn-1.png",
        "--replace",
        "marketing/product-hero[time=dawn,product=water bottle]",
    )
    assert result.exit_code == 0, result.stderr
    changes = json.loads(result.stdout)["changes"]
    assert [(change["address"], change["action"]) for change in changes] == [(HERO, "replace")]


def test_status_and_show_accept_an_output_path(run_cli: RunCli, root: Path) -> None:
    apply_everything(root)
    output = "generated/marketing/product-hero-mug-dusk-1.png"
    status = run_cli("-C", root, "status", "--json", output)
    assert [row["address"] for row in json.loads(status.stdout)] == [
        "marketing/product-hero[product=mug,time=dusk]"
    ]
    show = run_cli("-C", root, "show", "--json", "marketing/product-hero[time=dusk,product=mug]")
    assert show.exit_code == 0, show.stderr
    assert json.loads(show.stdout)["address"] == "marketing/product-hero[product=mug,time=dusk]"


def test_show_of_a_pattern_matching_several_entries_names_them(
    run_cli: RunCli, root: Path, snapshot: SnapshotAssertion
) -> None:
    apply_everything(root)
    result = run_cli("-C", root, "show", "prompts/marketing/hero.yaml")
    assert result.exit_code == 1
    assert result.stderr == snapshot


@pytest.mark.parametrize(
    "command",
    [
        ("render", "marketing/product-hero[time=daw,product=water bottle]"),
        ("plan", "--target", "marketing/prodcut-hero"),
        ("plan", "--replace", "generated/marketing/product-hero-mug-dusk.png"),
        ("status", "marketing/product-hero[product=mug,time=dusc]"),
        ("show", "marketing/product-hero[product=mug,time=dusc]"),
    ],
)
def test_nothing_matching_suggests_the_closest(
    run_cli: RunCli, root: Path, snapshot: SnapshotAssertion, command: tuple[str, ...]
) -> None:
    apply_everything(root)
    result = run_cli("-C", root, *command)
    assert result.exit_code == 1
    assert result.stderr == snapshot


def _readme_target_examples() -> list[str]:
    """README command lines that pass an address with axes: `promptform ... '<name>[...]'`."""
    return [
        line.strip()
        for line in README.read_text(encoding="utf-8").splitlines()
        if line.lstrip().startswith("promptform ") and re.search(r"'[^']*\[[^']*\]'", line)
    ]


def test_readme_quotes_every_address_with_axes_in_single_quotes() -> None:
    examples = _readme_target_examples()
    assert examples, "README shows how to pass an address with axes"
    for line in examples:
        unquoted = re.sub(r"'[^']*'", "", line.split("#", 1)[0])
        assert "[" not in unquoted, f"unquoted [ in README example: {line}"


@pytest.mark.skipif(
    shutil.which("zsh") is None, reason="zsh is not installed (apt-get install zsh)"
)
def test_readme_address_examples_reach_promptform_intact_through_zsh() -> None:
    for line in _readme_target_examples():
        command = line.split("  #", 1)[0].strip()
        intended = re.findall(r"'([^']*\[[^']*\])'", command)
        # `print -rl --` prints each argument zsh passes on one line, so globbing or word
        # splitting of the quoted address would show up as a changed or missing line.
        argv_printer = command.replace("promptform", "print -rl --", 1)
        result = subprocess.run(
            ["zsh", "-f", "-c", argv_printer], capture_output=True, text=True, timeout=20
        )
        assert result.returncode == 0, result.stderr
        arguments = result.stdout.splitlines()
        for address in intended:
            assert address in arguments, f"zsh changed {address!r}: {arguments}"
