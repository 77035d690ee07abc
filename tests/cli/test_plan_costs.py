"""Plan cost estimates explain themselves: unset quality, and what offline previews would cost."""

from __future__ import annotations

import json

from syrupy.assertion import SnapshotAssertion

from tests.support.cli import RunCli
from tests.support.files import MakeProject

# Like an imported Studio request: no quality, so the API picks (`auto`) and may pick high.
NO_QUALITY = "name: otter\nprompt: An otter.\nmodel: gpt-image-2\nsize: 1024x1024\n"
PAID = """
[promptform]
default_provider = "wisgate"

[providers.wisgate]
kind = "openai"
base_url = "http://127.0.0.1:9/v1"

[providers.offline]
kind = "offline"
"""
OFFLINE_ONLY = """
[promptform]
default_provider = "offline"

[providers.offline]
kind = "offline"
"""


def test_unset_quality_is_priced_at_high_and_the_plan_says_why(
    make_project: MakeProject, run_cli: RunCli, snapshot: SnapshotAssertion
) -> None:
    root = make_project({"promptform.toml": PAID, "prompts/otter.yaml": NO_QUALITY})
    result = run_cli("-C", root, "plan")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == snapshot


def test_a_set_quality_gets_no_note(make_project: MakeProject, run_cli: RunCli) -> None:
    manifest = NO_QUALITY + "quality: medium\n"
    root = make_project({"promptform.toml": PAID, "prompts/otter.yaml": manifest})
    assert "priced at high" not in run_cli("-C", root, "plan").stdout


def test_offline_plan_shows_what_the_projects_paid_provider_would_cost(
    make_project: MakeProject, run_cli: RunCli, snapshot: SnapshotAssertion
) -> None:
    root = make_project(
        {"promptform.toml": PAID, "prompts/otter.yaml": NO_QUALITY + "quality: low\nn: 2\n"}
    )
    result = run_cli("-C", root, "plan", "--provider", "offline")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == snapshot


def test_offline_only_project_compares_with_wisgate_prices(
    make_project: MakeProject, run_cli: RunCli
) -> None:
    root = make_project(
        {"promptform.toml": OFFLINE_ONLY, "prompts/otter.yaml": NO_QUALITY + "quality: medium\n"}
    )
    result = run_cli("-C", root, "plan")
    assert "1 image, estimated $0.000 (offline; with wisgate: $0.053)" in result.stdout
    assert result.stdout.endswith("estimated $0.00 (offline; with wisgate: $0.05).\n")


def test_json_plan_adds_the_paid_estimate_and_keeps_its_fields(
    make_project: MakeProject, run_cli: RunCli
) -> None:
    root = make_project(
        {"promptform.toml": PAID, "prompts/otter.yaml": NO_QUALITY + "quality: medium\n"}
    )
    data = json.loads(
        run_cli("-C", root, "plan", "--provider", "offline", "--format", "json").stdout
    )
    change = data["changes"][0]
    assert change["estimated_cost_usd"] == 0.0
    assert (change["paid_provider"], change["paid_estimated_cost_usd"]) == ("wisgate", 0.053)
    summary = data["summary"]
    assert summary["estimated_cost_usd"] == 0.0
    assert (summary["paid_provider"], summary["paid_estimated_cost_usd"]) == ("wisgate", 0.053)


def test_json_plan_of_a_paid_provider_has_no_paid_comparison(
    make_project: MakeProject, run_cli: RunCli
) -> None:
    root = make_project(
        {"promptform.toml": PAID, "prompts/otter.yaml": NO_QUALITY + "quality: medium\n"}
    )
    data = json.loads(run_cli("-C", root, "plan", "--format", "json").stdout)
    assert data["changes"][0]["paid_provider"] is None
    assert data["summary"]["paid_estimated_cost_usd"] is None
