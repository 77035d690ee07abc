"""Start-up stays lazy: each command imports only the libraries it uses.

Pre-commit hooks run promptform on every commit, and most of its start-up is imports. These tests
run the `promptform` entry point in a fresh interpreter and look at what it imported, so re-adding an
eager import of a heavy library (at the top of cli.py, or of a module on a command's path) fails here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from promptform import __main__ as entry_point
from promptform.cli import main as cli_main
from tests.support.plans import CONFIG

MakeProject = Callable[[dict[str, str | bytes]], Path]

# Runs the `promptform` entry point on argv[2:], then writes the imported modules' names to argv[1].
CHILD = """\
import json, sys
modules_file, sys.argv = sys.argv[1], ["promptform", *sys.argv[2:]]
from promptform.__main__ import main
code = main()
with open(modules_file, "w", encoding="utf-8") as modules:
    json.dump(sorted(sys.modules), modules)
sys.exit(code)
"""

# Only generating images (HTTP), the apply progress bar and git-backed commands need these.
NETWORK_TERMINAL_GIT = {"httpx", "rich", "git"}
# Validating manifests (and hand-edited configs and locks) needs pydantic; parsing and rendering
# manifests needs yaml and jinja2.
PROJECT_LIBRARIES = {"pydantic", "pydantic_core", "yaml", "jinja2"}

FILES = {
    "promptform.toml": CONFIG,
    "prompts/a.yaml": "name: a\nprompt: A fox.\n",
    "prompts/b.yaml": "name: b\nprompt: An owl.\n",
}


# Building a pydantic validator scans for pydantic plugins through importlib.metadata, which
# imports email and zipfile: together more than a no-op plan's own work on 100 targets.
VALIDATION_AND_METADATA = {"importlib.metadata", "pydantic.plugin._loader", "email"}


def imported_packages(tmp_path: Path, *args: str) -> set[str]:
    """The top-level packages a `promptform ARGS...` run in a fresh interpreter imported."""
    return {name.split(".")[0] for name in imported_modules(tmp_path, *args)}


def imported_modules(tmp_path: Path, *args: str) -> set[str]:
    """The modules a `promptform ARGS...` run in a fresh interpreter imported."""
    modules = tmp_path / "modules.json"
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(modules), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(modules.read_text(encoding="utf-8")))


def test_version_alone_is_answered_without_click(tmp_path: Path) -> None:
    imported = imported_packages(tmp_path, "--version")

    assert "promptform" in imported  # the check sees real imports
    assert imported.isdisjoint({"click"} | NETWORK_TERMINAL_GIT | PROJECT_LIBRARIES)
    # Not even these: each takes longer to import than printing the version (pathlib pulls re).
    assert imported.isdisjoint({"pathlib", "typing", "dataclasses"})


def test_version_alone_prints_what_the_cli_prints(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["--version"]) == 0
    from_click = capsys.readouterr()
    monkeypatch.setattr("sys.argv", ["promptform", "--version"])

    assert entry_point.main() == 0

    assert capsys.readouterr() == from_click


@pytest.mark.parametrize("args", [["-q", "--version"], ["--help"], ["plan", "--help"]])
def test_version_and_help_load_no_config_and_no_heavy_library(
    tmp_path: Path, args: list[str]
) -> None:
    imported = imported_packages(tmp_path, *args)

    assert "click" in imported  # these go through the CLI
    assert imported.isdisjoint(NETWORK_TERMINAL_GIT | PROJECT_LIBRARIES)


def test_validate_loads_no_network_terminal_or_git_library(
    tmp_path: Path, make_project: MakeProject
) -> None:
    root = make_project(FILES)

    imported = imported_packages(tmp_path, "-C", str(root), "validate")

    assert {"pydantic", "yaml", "jinja2"} <= imported
    assert imported.isdisjoint(NETWORK_TERMINAL_GIT)


def test_plan_answered_by_the_render_cache_parses_no_yaml(
    tmp_path: Path, make_project: MakeProject
) -> None:
    root = make_project(FILES)
    first = imported_packages(tmp_path, "-C", str(root), "--quiet", "plan")

    again = imported_packages(tmp_path, "-C", str(root), "--quiet", "plan")

    assert "yaml" in first  # the first plan parsed the manifests and filled the cache
    assert "yaml" not in again
    assert (first | again).isdisjoint(NETWORK_TERMINAL_GIT)


def test_plan_and_validate_answered_by_the_render_cache_import_no_jinja_or_yaml(
    tmp_path: Path, make_project: MakeProject
) -> None:
    root = make_project(
        {
            **FILES,
            "templates/style.j2": "Watercolour.\n",
            "prompts/c.yaml": "name: c\nprompt: \"{% include 'style.j2' %} A cat.\"\n",
        }
    )
    first = imported_packages(tmp_path, "-C", str(root), "--quiet", "plan")

    plan_again = imported_packages(tmp_path, "-C", str(root), "--quiet", "plan")
    validate_again = imported_packages(tmp_path, "-C", str(root), "--quiet", "validate")

    assert {"yaml", "jinja2"} <= first  # the first plan parsed and rendered the manifests
    for again in (plan_again, validate_again):
        assert "promptform" in again
        assert again.isdisjoint({"yaml", "jinja2"} | NETWORK_TERMINAL_GIT)


def test_a_no_op_plan_and_validate_import_no_pydantic_and_no_click(
    tmp_path: Path, make_project: MakeProject
) -> None:
    offline = '[promptform]\ndefault_provider = "offline"\n'  # apply generates without a network
    root = make_project({**FILES, "promptform.toml": offline})
    first = imported_modules(tmp_path, "-C", str(root), "--quiet", "apply", "--yes")
    lock = root / "promptform.lock"
    assert any(lock.rglob("*.json"))  # apply wrote shards for the plans to read

    plan_again = imported_modules(tmp_path, "-C", str(root), "--quiet", "plan")
    validate_again = imported_modules(tmp_path, "-C", str(root), "--quiet", "validate")

    assert "pydantic.plugin._loader" in first  # apply built validators (the check sees them)
    assert "promptform.state.lockfile" in plan_again
    assert "promptform.core.config" in validate_again
    assert (plan_again | validate_again).isdisjoint(VALIDATION_AND_METADATA | {"click"})
    # Config, lock and cached targets are read without pydantic: importing it (with
    # annotated_types) took longer than the whole of such a plan on 100 targets does now.
    packages = {name.split(".")[0] for name in plan_again | validate_again}
    assert packages.isdisjoint({"pydantic", "pydantic_core", "annotated_types"})
    assert "pydantic" in {name.split(".")[0] for name in first}
    # Nor what only a plan that pays for images, or a project with pending batches, needs.
    only_when_needed = {
        "promptform.engine.credentials",
        "promptform.commands.rescued",
        "promptform.engine.saved_plan",
        "promptform.state.pending_batches",
    }
    assert plan_again.isdisjoint(only_when_needed)


def test_a_template_edited_after_the_cache_was_filled_is_rendered_again(
    tmp_path: Path, make_project: MakeProject
) -> None:
    root = make_project(
        {
            **FILES,
            "templates/style.j2": "Watercolour.\n",
            "prompts/c.yaml": ("name: c\nprompt: \"{% include 'style.j2' %} A cat.\"\n"),
        }
    )
    imported_packages(tmp_path, "-C", str(root), "--quiet", "plan")
    (root / "templates/style.j2").write_text("Oil paint.\n", encoding="utf-8")

    again = imported_packages(tmp_path, "-C", str(root), "--quiet", "plan")

    assert "jinja2" in again  # the digest check, done without Jinja, saw the edit
