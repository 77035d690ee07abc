"""cost: spend and tokens from lockfile provenance, and from its git history with --since."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from syrupy.assertion import SnapshotAssertion

from promptform.state.lockfile import LockedOutput, LockEntry, Lockfile, ProviderRef, dumps
from tests.support.cli import RunCli
from tests.support.files import MakeProject

PROJECT: dict[str, str | bytes] = {
    "promptform.toml": "[promptform]\n",
    "prompts/hero.yaml": "prompt: A hero image.\n",
    "prompts/cards.yaml": "name: cards\nmatrix:\n  animal: [fox, owl]\nprompt: A {{ animal }}.\n",
}


def entry(
    model: str, when: str, cost: float | None, tokens: int | None, kind: str = "openai"
) -> LockEntry:
    usage = (
        {"input_tokens": tokens, "output_tokens": tokens * 10, "total_tokens": tokens * 11}
        if tokens is not None
        else None
    )
    return LockEntry(
        fingerprint=f"sha256:v1:{model}:{when}",
        request={"model": model, "prompt": "p"},
        outputs=[LockedOutput(path=f"{when}.png", sha256="0" * 64, bytes=1, format="png")],
        provider=ProviderRef(kind=kind, name="wisgate"),
        model=model,
        generated_at=when,
        usage=usage,
        cost_usd=cost,
    )


def write_lock(root: Path, entries: dict[str, LockEntry]) -> None:
    (root / "promptform.lock").write_text(dumps(Lockfile(targets=entries)))


def git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "commit.gpgsign=false", *args],
        cwd=root,
        check=True,
        capture_output=True,
        timeout=60,
    )


def commit(root: Path, message: str) -> None:
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)


@pytest.fixture
def root(make_project: MakeProject) -> Path:
    """History: hero and fox in January; in March hero regenerated, owl added, a tag between."""
    root = make_project(PROJECT)
    git(root, "init", "-q", "-b", "main")
    write_lock(
        root,
        {
            "hero": entry("gpt-image-2", "2026-01-10T10:00:00Z", 0.211, 100),
            "cards[animal=fox]": entry("gpt-image-1", "2026-01-11T10:00:00Z", 0.042, 50),
        },
    )
    commit(root, "january")
    git(root, "tag", "v1")
    write_lock(
        root,
        {
            "hero": entry("gpt-image-2", "2026-03-01T10:00:00Z", 0.053, 80),
            "cards[animal=fox]": entry("gpt-image-1", "2026-01-11T10:00:00Z", 0.042, 50),
            "cards[animal=owl]": entry(
                "gpt-image-1", "2026-03-02T10:00:00Z", None, None, "adopted"
            ),
        },
    )
    commit(root, "march")
    return root


def test_cost_json_of_the_current_lockfile(
    root: Path, run_cli: RunCli, snapshot: SnapshotAssertion
) -> None:
    result = run_cli("-C", root, "cost", "--json")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == snapshot


def test_cost_json_by_manifest(root: Path, run_cli: RunCli, snapshot: SnapshotAssertion) -> None:
    result = run_cli("-C", root, "cost", "--json", "--by", "manifest")
    assert json.loads(result.stdout) == snapshot


def test_cost_since_a_ref_counts_every_generation_after_it(
    root: Path, run_cli: RunCli, snapshot: SnapshotAssertion
) -> None:
    result = run_cli("-C", root, "cost", "--since", "v1", "--json")
    data = json.loads(result.stdout)
    assert data == snapshot
    assert data["total"]["targets"] == 2  # hero's March regeneration and the adopted owl


def test_cost_since_a_date_includes_replaced_generations(root: Path, run_cli: RunCli) -> None:
    data = json.loads(run_cli("-C", root, "cost", "--since", "2026-01-01", "--json").stdout)
    # hero twice (January, then replaced in March), fox once, owl once.
    assert data["total"]["targets"] == 4
    assert data["total"]["cost_usd"] == pytest.approx(0.211 + 0.053 + 0.042)
    later = json.loads(run_cli("-C", root, "cost", "--since", "2026-02-01", "--json").stdout)
    assert later["total"]["targets"] == 2


def test_cost_table(root: Path, run_cli: RunCli, snapshot: SnapshotAssertion) -> None:
    assert run_cli("-C", root, "cost").stdout == snapshot


def test_unknown_since_is_one_clear_error(root: Path, run_cli: RunCli) -> None:
    result = run_cli("-C", root, "cost", "--since", "nope")
    assert result.exit_code == 1
    assert (
        result.stderr
        == "error: 'nope' is not a commit in this repository (a branch, tag or hash)\n"
    )


def test_since_outside_a_repository_is_one_clear_error(
    make_project: MakeProject, run_cli: RunCli
) -> None:
    root = make_project(PROJECT)
    result = run_cli("-C", root, "cost", "--since", "2026-01-01")
    assert result.exit_code == 1
    assert "is not inside a git repository" in result.stderr
