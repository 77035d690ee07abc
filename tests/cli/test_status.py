"""`promptform status` and `promptform show`: reading what the lockfile records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import RunCli
from tests.support.files import MakeProject
from tests.support.plans import CONFIG, apply_everything

FILES = {
    "promptform.toml": CONFIG,
    "prompts/a.yaml": "name: cards/a\nprompt: A fox.\n",
    "prompts/b.yaml": "name: cards/b\nn: 2\nprompt: An owl.\n",
}


@pytest.fixture
def root(make_project: MakeProject) -> Path:
    root = make_project(FILES)
    apply_everything(root)
    return root


def test_status_lists_every_lock_entry(root: Path, run_cli: RunCli) -> None:
    result = run_cli("-C", root, "status")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "cards/a  gpt-image-2  2025-01-01T00:00:00Z  $0.05",
        "    generated/cards/a-1.png",
        "cards/b  gpt-image-2  2025-01-01T00:00:00Z  $0.05",
        "    generated/cards/b-1.png",
        "    generated/cards/b-2.png",
        "2 of 2 lock entries shown.",
    ]


def test_status_filters_by_address_pattern(root: Path, run_cli: RunCli) -> None:
    result = run_cli("-C", root, "status", "--json", "cards/b")
    rows = json.loads(result.stdout)
    assert [row["address"] for row in rows] == ["cards/b"]
    assert list(rows[0]) == ["address", "outputs", "model", "generated_at", "cost_usd"]


def test_status_without_a_lockfile_says_so(make_project: MakeProject, run_cli: RunCli) -> None:
    result = run_cli("-C", make_project(FILES), "status")
    assert result.exit_code == 0
    assert "No lock entries yet" in result.stdout


def test_show_prints_request_and_provenance(root: Path, run_cli: RunCli) -> None:
    result = run_cli("-C", root, "show", "cards/a")
    assert result.exit_code == 0
    assert "provider:       api (openai)" in result.stdout
    assert "generated_at:   2025-01-01T00:00:00Z" in result.stdout
    assert '"prompt": "A fox."' in result.stdout


def test_show_json_is_the_lock_entry(root: Path, run_cli: RunCli) -> None:
    data = json.loads(run_cli("-C", root, "show", "--json", "cards/a").stdout)
    assert data["address"] == "cards/a"
    assert data["request"]["prompt"] == "A fox."


def test_show_unknown_address_suggests_the_nearest(root: Path, run_cli: RunCli) -> None:
    result = run_cli("-C", root, "show", "cards/aa")
    assert result.exit_code == 1
    assert "no lock entry for 'cards/aa'; did you mean 'cards/a'?" in result.stderr
