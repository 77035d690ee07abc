"""A matrix is sized before it is expanded: over the limit it is refused at once, saying why."""

from __future__ import annotations

import string

from tests.support.cli import RunCli
from tests.support.files import MakeProject

CONFIG = '[promptform]\ndefault_provider = "offline"\n'


def _matrix(axes: int, values: int) -> str:
    lines = ["prompt: A {{ a }} poster.", "matrix:"]
    for axis in string.ascii_lowercase[:axes]:
        lines.append(f"  {axis}: [{', '.join(str(value) for value in range(values))}]")
    return "\n".join(lines) + "\n"


def test_a_matrix_bomb_is_refused_naming_the_manifest_its_axes_and_product(
    make_project: MakeProject, run_cli: RunCli
) -> None:
    root = make_project({"promptform.toml": CONFIG, "prompts/bomb.yaml": _matrix(10, 10)})

    result = run_cli("-C", root, "validate")

    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: prompts/bomb.yaml:2:1: matrix a (10) x b (10) x c (10) x d (10) x e (10) x f (10) "
        "x g (10) x h (10) x i (10) x j (10) makes 10,000,000,000 cells, over the limit of "
        "10,000 per manifest; split it into several manifests or raise [limits] "
        "max_cells_per_manifest in promptform.toml"
    ]


def test_a_product_too_large_to_print_is_still_refused_at_once(
    make_project: MakeProject, run_cli: RunCli
) -> None:
    axes = "\n".join(f"  axis{index}: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]" for index in range(40))
    manifest = f"prompt: A poster.\nmatrix:\n{axes}\n"
    root = make_project({"promptform.toml": CONFIG, "prompts/bomb.yaml": manifest})

    result = run_cli("-C", root, "plan")

    assert result.exit_code == 1
    assert "makes more than 10^30 cells, over the limit of 10,000 per manifest" in result.stderr


def test_the_limit_counts_included_cells_and_can_be_raised(
    make_project: MakeProject, run_cli: RunCli
) -> None:
    manifest = _matrix(2, 3) + "  include:\n    - {a: 9, b: 9}\n"  # 3 x 3 + 1 = 10 cells
    root = make_project(
        {
            "promptform.toml": CONFIG + "[limits]\nmax_cells_per_manifest = 9\n",
            "prompts/grid.yaml": manifest,
        }
    )

    refused = run_cli("-C", root, "validate")
    assert refused.exit_code == 1
    assert "makes 10 cells, over the limit of 9 per manifest" in refused.stderr

    (root / "promptform.toml").write_text(CONFIG + "[limits]\nmax_cells_per_manifest = 10\n")
    assert run_cli("-C", root, "validate").exit_code == 0


def test_a_project_over_max_targets_is_refused_naming_where_it_passed_the_limit(
    make_project: MakeProject, run_cli: RunCli
) -> None:
    root = make_project(
        {
            "promptform.toml": CONFIG + "[limits]\nmax_targets = 5\n",
            "prompts/one.yaml": _matrix(1, 3),
            "prompts/two.yaml": _matrix(1, 3),
        }
    )

    result = run_cli("-C", root, "validate")

    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: promptform.toml: the project has more than 5 targets (passed at "
        "prompts/two.yaml); split it into several projects or raise [limits] max_targets in "
        "promptform.toml"
    ]


def test_a_misspelt_limit_is_a_config_error(make_project: MakeProject, run_cli: RunCli) -> None:
    root = make_project(
        {
            "promptform.toml": CONFIG + "[limits]\nmax_cells_per_manifests = 3\n",
            "prompts/a.yaml": "prompt: A.\n",
        }
    )

    result = run_cli("-C", root, "validate")

    assert result.exit_code == 1
    assert "unknown field 'max_cells_per_manifests' in [limits]" in result.stderr
    assert "did you mean 'max_cells_per_manifest'?" in result.stderr


def test_a_matrix_at_the_limit_expands(make_project: MakeProject, run_cli: RunCli) -> None:
    root = make_project(
        {
            "promptform.toml": CONFIG + "[limits]\nmax_cells_per_manifest = 4\n",
            "prompts/grid.yaml": _matrix(2, 2),
        }
    )

    result = run_cli("-C", root, "render")

    assert result.exit_code == 0, result.stderr
    assert result.stdout.count("A 0 poster.") + result.stdout.count("A 1 poster.") == 4
