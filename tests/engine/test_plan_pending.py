"""Plans with batch submissions not collected yet: pending, stale, and the formats that show them."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from syrupy.assertion import SnapshotAssertion

from promptform.core.config import Config, load_config
from promptform.engine.batch_submit import batch_changes
from promptform.engine.plan import compute_plan
from promptform.engine.plan_format import format_json, format_markdown, format_text
from promptform.engine.plan_model import Plan, PlanOptions
from promptform.engine.saved_plan import StalePlanError, check_fresh, load_saved_plan, save_plan
from promptform.state.lockfile import (
    LockedOutput,
    LockEntry,
    Lockfile,
    ProviderRef,
    entry_json,
    write_lockfile,
)
from promptform.state.pending_batches import (
    Submission,
    SubmittedTarget,
    custom_id_for,
    remove_submission,
    write_submission,
)
from tests.support.files import write_files

CONFIG = """\
[promptform]
default_provider = "gateway"

[providers.gateway]
kind = "openai"
base_url = "http://127.0.0.1:9/v1"

[defaults]
model = "gpt-image-2"
size = "1024x1024"
quality = "low"
"""
MANIFEST = "name: cards\nmatrix:\n  i: [1, 2, 3]\nprompt: Card {{ i }}.\n"
NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
SUBMITTED = "2026-01-01T10:00:00Z"


def submitted(address: str, fingerprint: str, index: int) -> SubmittedTarget:
    return SubmittedTarget(
        custom_id=custom_id_for(index, fingerprint),
        address=address,
        fingerprint=fingerprint,
        request={"prompt": "Card."},
        inputs=(),
        outputs=(f"{address}.png",),
        output_format="png",
        provider_kind="openai",
        model="gpt-image-2",
        cost_usd=0.003,
    )


@pytest.fixture
def config(tmp_path: Path) -> Config:
    root = write_files(
        tmp_path / "repo", {"promptform.toml": CONFIG, "prompts/cards.yaml": MANIFEST}
    )
    return load_config(root)


def submit(config: Config, batch_id: str | None, targets: dict[str, str], sid: str) -> Submission:
    submission = Submission(
        id=sid,
        provider="gateway",
        endpoint="images/generations",
        submitted_at=SUBMITTED,
        source_commit=None,
        targets=tuple(
            submitted(address, fingerprint, index)
            for index, (address, fingerprint) in enumerate(targets.items())
        ),
        input_file_id="file-1",
        batch_id=batch_id,
    )
    write_submission(config.batches_dir, submission)
    return submission


@pytest.fixture
def pending_plan(config: Config) -> Plan:
    fingerprints = compute_plan(config, PlanOptions())[2].fingerprints
    submit(
        config,
        "batch_abc",
        {"cards[i=1]": fingerprints["cards[i=1]"], "cards[i=2]": fingerprints["cards[i=2]"]},
        "20260101T100000Z-aaaa0001",
    )
    # cards[i=3] was submitted for a manifest that has changed since: stale.
    submit(config, None, {"cards[i=3]": "0" * 64}, "20260101T100000Z-aaaa0002")
    return compute_plan(config, PlanOptions())[2]


def test_text_shows_pending_targets_and_not_as_creates(
    pending_plan: Plan, snapshot: SnapshotAssertion
) -> None:
    text = format_text(pending_plan, now=NOW)
    assert "  … cards[i=1] pending in batch batch_abc (submitted 2 h ago)" in text
    assert "create  cards[i=1]" not in text
    assert text == snapshot


def test_markdown_lists_pending_targets(pending_plan: Plan, snapshot: SnapshotAssertion) -> None:
    assert format_markdown(pending_plan, now=NOW) == snapshot


def test_json_lists_pending_and_stale_targets(
    pending_plan: Plan, snapshot: SnapshotAssertion
) -> None:
    assert format_json(pending_plan) == snapshot


def test_a_stale_pending_target_is_planned_again(pending_plan: Plan) -> None:
    [change] = pending_plan.actionable
    assert (change.address, change.action) == ("cards[i=3]", "create")
    assert change.reasons[-1] == (
        "manifest changed since it was submitted in batch submission 20260101T100000Z-aaaa0002 "
        "(that result goes to the trash)"
    )
    summary = pending_plan.summary()
    assert (summary.create, summary.pending, summary.unchanged) == (1, 2, 0)


def test_a_result_recorded_by_an_interrupted_collect_is_not_pending(config: Config) -> None:
    fingerprint = compute_plan(config, PlanOptions())[2].fingerprints["cards[i=1]"]
    submit(config, "batch_abc", {"cards[i=1]": fingerprint}, "20260101T100000Z-aaaa0001")
    output = LockedOutput(path="cards-1-1.png", sha256="0" * 64, bytes=1, format="png")
    entry = LockEntry(
        fingerprint=fingerprint,
        request={"prompt": "Card 1."},
        outputs=[output],
        provider=ProviderRef(kind="openai", name="gateway"),
        model="gpt-image-2",
        generated_at=SUBMITTED,
        batch_id="batch_abc",
    )
    write_lockfile(config.lockfile, Lockfile(targets={"cards[i=1]": entry}))
    plan = compute_plan(config, PlanOptions())[2]
    assert plan.pending == ()
    assert [change.address for change in plan.actionable] == ["cards[i=2]", "cards[i=3]"]


def test_the_batch_id_is_recorded_only_for_batch_entries(config: Config) -> None:
    output = LockedOutput(path="a.png", sha256="0" * 64, bytes=1, format="png")
    plain = LockEntry(
        fingerprint="f",
        request={},
        outputs=[output],
        provider=ProviderRef(kind="openai", name="gateway"),
        model="gpt-image-2",
        generated_at=SUBMITTED,
    )
    assert "batch_id" not in entry_json(plain)
    batched = replace(plain, batch_id="batch_1")
    assert entry_json(batched)["batch_id"] == "batch_1"


def test_a_saved_plan_is_stale_once_a_pending_batch_is_collected(
    config: Config, pending_plan: Plan, tmp_path: Path
) -> None:
    saved = tmp_path / "plan.json"
    save_plan(pending_plan, saved)
    check_fresh(load_saved_plan(saved), compute_plan(config, PlanOptions())[2])
    remove_submission(config.batches_dir, "20260101T100000Z-aaaa0001")
    with pytest.raises(StalePlanError, match="the batches of 'cards\\[i=1\\]', 'cards\\[i=2\\]'"):
        check_fresh(load_saved_plan(saved), compute_plan(config, PlanOptions())[2])


def test_a_target_reading_a_pending_output_waits_for_it(tmp_path: Path) -> None:
    files = {
        "promptform.toml": CONFIG,
        "prompts/base.yaml": "name: base\nprompt: A base.\n",
        "prompts/edit.yaml": ("name: edit\nprompt: An edit.\nimages: [generated/base-1.png]\n"),
        "generated/base-1.png": b"",
    }
    config = load_config(write_files(tmp_path / "repo", files))
    fingerprint = compute_plan(config, PlanOptions())[2].fingerprints["base"]
    submit(config, "batch_abc", {"base": fingerprint}, "20260101T100000Z-aaaa0001")
    plan = compute_plan(config, PlanOptions())[2]
    [change] = plan.actionable
    assert change.address == "edit"
    assert batch_changes(plan) == ([], ["edit"])
