"""Template mistakes in a matrix: one line per distinct mistake, with a did-you-mean."""

from __future__ import annotations

from syrupy.assertion import SnapshotAssertion

from tests.support.cli import RunCli
from tests.support.files import MakeProject

CONFIG = '[promptform]\ndefault_provider = "offline"\n\n[providers.offline]\nkind = "offline"\n'
MATRIX = """
name: marketing/product-hero
vars:
  brand: Acme
matrix:
  product: [water bottle, mug]
  time: [dawn, dusk]
prompt: A {{ product }} at {{ tme }}, by {{ brand }}.
"""


def test_a_typo_in_every_cell_is_one_line_with_a_suggestion(
    make_project: MakeProject, run_cli: RunCli, snapshot: SnapshotAssertion
) -> None:
    root = make_project({"promptform.toml": CONFIG, "prompts/hero.yaml": MATRIX})
    result = run_cli("-C", root, "validate")
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr == snapshot


def test_a_mistake_in_some_cells_says_how_many(
    make_project: MakeProject, run_cli: RunCli, snapshot: SnapshotAssertion
) -> None:
    manifest = MATRIX.replace("{{ tme }}", "{{ time if product == 'mug' else brnd }}")
    root = make_project({"promptform.toml": CONFIG, "prompts/hero.yaml": manifest})
    result = run_cli("-C", root, "validate")
    assert result.exit_code == 1
    assert result.stderr == snapshot


def test_suggestions_come_from_vars_and_template_names(
    make_project: MakeProject, run_cli: RunCli
) -> None:
    manifest = "name: otter\nvars:\n  colour: teal\nprompt: A {{ color }} {{ nmae }}.\n"
    root = make_project({"promptform.toml": CONFIG, "prompts/otter.yaml": manifest})
    result = run_cli("-C", root, "validate")
    assert "'color' is undefined; did you mean 'colour'?" in result.stderr


def test_an_unrelated_name_gets_no_suggestion(make_project: MakeProject, run_cli: RunCli) -> None:
    manifest = "name: otter\nprompt: A {{ zzzz }}.\n"
    root = make_project({"promptform.toml": CONFIG, "prompts/otter.yaml": manifest})
    result = run_cli("-C", root, "validate")
    assert result.stderr == (
        "error: prompts/otter.yaml:2: undefined variable: 'zzzz' is undefined; "
        "define it under vars: or as a matrix axis\n"
    )


def test_a_bad_size_shared_by_every_cell_is_one_line(
    make_project: MakeProject, run_cli: RunCli
) -> None:
    manifest = MATRIX.replace("{{ tme }}", "{{ time }}") + "size: 1000x1000\n"
    root = make_project({"promptform.toml": CONFIG, "prompts/hero.yaml": manifest})
    result = run_cli("-C", root, "validate")
    assert result.stderr == (
        "error: prompts/hero.yaml:8:1: gpt-image-2 cannot make 1000x1000: both sides must be "
        "divisible by 16; the nearest size it can make is 1008x1008 (in all 4 matrix cells)\n"
    )
