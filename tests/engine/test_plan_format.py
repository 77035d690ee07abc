"""Plan output in each format, snapshotted on a repository with every action and drift kind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from syrupy.assertion import SnapshotAssertion

from promptform.core.config import load_config
from promptform.engine.plan import compute_plan
from promptform.engine.plan_format import (
    GITHUB_COMMENT_LIMIT,
    format_json,
    format_markdown,
    format_text,
    format_usd,
    summary_line,
)
from promptform.engine.plan_model import Plan, PlanOptions
from tests.support.files import MakeProject
from tests.support.plans import CONFIG, apply_everything, build_showcase


@pytest.fixture
def showcase(tmp_path: Path) -> Plan:
    root = tmp_path / "repo"
    root.mkdir()
    return compute_plan(build_showcase(root), PlanOptions())[2]


def many_changes(make_project: MakeProject, count: int, prompt_lines: int) -> Plan:
    lines = "\n".join(
        f"  Line {index} of a long, detailed prompt." for index in range(prompt_lines)
    )
    files: dict[str, str | bytes] = {
        "promptform.toml": CONFIG,
        "prompts/grid.yaml": (
            "name: grid\nmatrix:\n  cell: ["
            + ", ".join(str(index) for index in range(count))
            + "]\nprompt: |\n  Cell {{ cell }}.\n"
            + lines
            + "\n"
        ),
    }
    return compute_plan(load_config(make_project(files)), PlanOptions())[2]


def test_text_format(showcase: Plan, snapshot: SnapshotAssertion) -> None:
    assert format_text(showcase) == snapshot


def test_markdown_format(showcase: Plan, snapshot: SnapshotAssertion) -> None:
    assert format_markdown(showcase) == snapshot


def test_json_format(showcase: Plan, snapshot: SnapshotAssertion) -> None:
    assert format_json(showcase) == snapshot


def test_markdown_truncation(make_project: MakeProject, snapshot: SnapshotAssertion) -> None:
    assert format_markdown(many_changes(make_project, 12, 4), limit=2500) == snapshot


def test_summary_line_matches_the_documented_shape(showcase: Plan) -> None:
    assert summary_line(showcase) == (
        "Plan: 1 to create, 3 to replace, 2 to move, 1 to delete. 4 images, estimated $0.36."
    )


def test_no_changes_says_how_many_targets_are_up_to_date(make_project: MakeProject) -> None:
    root = make_project({"promptform.toml": CONFIG, "prompts/x.yaml": "prompt: A fox.\n"})
    apply_everything(root)
    plan = compute_plan(load_config(root), PlanOptions())[2]
    assert format_text(plan) == "No changes. 1 target up to date.\n"


def test_text_has_colour_only_when_asked(showcase: Plan) -> None:
    assert "\x1b[" not in format_text(showcase)
    assert "\x1b[32m+ create\x1b[0m" in format_text(showcase, color=True)


def test_text_says_when_target_limited_the_plan(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    plan = compute_plan(build_showcase(root), PlanOptions(targets=("marketing/*",)))[2]
    assert format_text(plan).startswith(
        "Note: --target marketing/* limited this plan to 4 of 9 targets; "
        "the others were not checked.\n"
    )


def test_unknown_price_is_shown_as_unknown(make_project: MakeProject) -> None:
    files = {"promptform.toml": CONFIG, "prompts/x.yaml": "model: acme-img\nprompt: A.\n"}
    plan = compute_plan(load_config(make_project(files)), PlanOptions())[2]
    text = format_text(plan)
    assert "1 image, estimated unknown" in text
    assert "No known price for acme-img" in text
    assert text.endswith("1 image, estimated cost unknown.\n")
    assert json.loads(format_json(plan))["summary"]["estimated_cost_usd"] is None


def test_markdown_fits_githubs_comment_limit_keeping_summary_and_table(
    make_project: MakeProject,
) -> None:
    plan = many_changes(make_project, 300, 40)
    text = format_markdown(plan)
    assert len(text) < GITHUB_COMMENT_LIMIT
    assert text.startswith("### promptform plan\n\n**Plan: 300 to create")
    assert text.count("| + | <code>grid[cell=") == 300
    assert "change details left out to fit GitHub's 65,536-character comment limit" in text


def test_markdown_diff_fence_survives_backticks_in_prompts(make_project: MakeProject) -> None:
    files = {"promptform.toml": CONFIG, "prompts/x.yaml": "prompt: 'Print ```code``` on a mug.'\n"}
    text = format_markdown(compute_plan(load_config(make_project(files)), PlanOptions())[2])
    assert "````diff\n" in text


def test_json_keys_are_in_the_documented_order(showcase: Plan) -> None:
    data = json.loads(format_json(showcase))
    assert list(data) == [
        "format_version",
        "changes",
        "drift",
        "summary",
        "targets",
        "lock_hash",
        "pending",
        "unstarted",
    ]
    assert list(data["changes"][0]) == [
        "address",
        "action",
        "reasons",
        "moved_from",
        "renames",
        "model",
        "outputs",
        "images",
        "estimated_cost_usd",
        "prompt_diff",
        "paid_provider",
        "paid_estimated_cost_usd",
    ]
    assert list(data["summary"]) == [
        "create",
        "replace",
        "move",
        "delete",
        "unchanged",
        "images",
        "estimated_cost_usd",
        "paid_provider",
        "paid_estimated_cost_usd",
        "pending",
    ]


@pytest.mark.parametrize(
    ("value", "shown"), [(0.34, "$0.34"), (0.006, "$0.006"), (0.0, "$0.00"), (None, "unknown")]
)
def test_usd_amounts_never_round_a_cost_down_to_free(value: float | None, shown: str) -> None:
    assert format_usd(value) == shown
