"""The package layers (docs/architecture.md) hold: imports point down only, only the CLI imports click.

The contracts live in pyproject.toml ([tool.importlinter]); import-linter checks them on the real
import graph, including imports inside functions.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(project: Path) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env["PYTHONPATH"] = str(project / "src")
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(project / "pyproject.toml")],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _copy_project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    shutil.copytree(REPO / "src", project / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", project / "pyproject.toml")
    return project


def test_the_layer_contracts_hold() -> None:
    result = _lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "upward_import"),
    [
        # a leaf reaching for the engine
        ("core/errors.py", "from promptform.engine import plan_model"),
        # the state layer reaching for a review tool, inside a function (still an import)
        ("state/lockfile.py", "def _late():\n    from promptform.review import gc\n"),
        # the engine importing click
        ("engine/plan.py", "import click"),
    ],
)
def test_an_upward_import_breaks_a_contract(
    tmp_path: Path, module: str, upward_import: str
) -> None:
    project = _copy_project(tmp_path)
    path = project / "src" / "promptform" / module
    path.write_text(path.read_text() + "\n" + upward_import + "\n")

    result = _lint_imports(project)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 broken" in result.stdout
