"""Saved plans: `plan --out` pins the lockfile and every fingerprint; a stale plan is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from promptform.core.config import load_config
from promptform.engine.plan import compute_plan
from promptform.engine.plan_model import Plan, PlanOptions
from promptform.engine.saved_plan import (
    SavedPlanError,
    StalePlanError,
    check_fresh,
    load_saved_plan,
    save_plan,
)
from promptform.state.lockfile import read_lockfile, write_lockfile
from tests.support.files import MakeProject
from tests.support.plans import CONFIG, apply_everything

FILES = {
    "promptform.toml": CONFIG,
    "prompts/a.yaml": "name: a\nprompt: A fox.\n",
    "prompts/b.yaml": "name: b\nprompt: An owl.\n",
}


def current(root: Path, options: PlanOptions | None = None) -> Plan:
    return compute_plan(load_config(root), options or PlanOptions())[2]


@pytest.fixture
def root(make_project: MakeProject) -> Path:
    root = make_project(FILES)
    apply_everything(root)
    (root / "prompts/a.yaml").write_text("name: a\nprompt: A red fox.\n")
    return root


def test_saved_plan_round_trips_options_and_pins(root: Path) -> None:
    options = PlanOptions(targets=("a",), replace=("a",), repair=True, verify=True)
    plan = current(root, options)
    save_plan(plan, root / "plan.json")
    saved = load_saved_plan(root / "plan.json")
    assert saved.options == options
    assert saved.lock_hash == plan.lock_hash
    assert saved.fingerprints == plan.fingerprints
    assert saved.actions == {"a": "replace"}
    assert saved.outputs == {"a": ["a-1.png"]}


def test_unchanged_repository_keeps_the_saved_plan_fresh(root: Path) -> None:
    save_plan(current(root), root / "plan.json")
    saved = load_saved_plan(root / "plan.json")
    check_fresh(saved, current(root, saved.options))


def test_saved_plan_is_byte_stable(root: Path) -> None:
    save_plan(current(root), root / "one.json")
    save_plan(current(root), root / "two.json")
    assert (root / "one.json").read_bytes() == (root / "two.json").read_bytes()


def test_lockfile_change_makes_the_saved_plan_stale(root: Path) -> None:
    save_plan(current(root), root / "plan.json")
    config = load_config(root)
    write_lockfile(config.lockfile, read_lockfile(config.lockfile).without("b"))
    with pytest.raises(StalePlanError, match=r"promptform.lock changed since it was made"):
        check_fresh(load_saved_plan(root / "plan.json"), current(root))


def test_fingerprint_change_makes_the_saved_plan_stale(root: Path) -> None:
    save_plan(current(root), root / "plan.json")
    (root / "prompts/b.yaml").write_text("name: b\nprompt: A snowy owl.\n")
    with pytest.raises(StalePlanError, match=r"'b' changed since it was made"):
        check_fresh(load_saved_plan(root / "plan.json"), current(root))


def test_new_target_makes_the_saved_plan_stale(root: Path) -> None:
    save_plan(current(root), root / "plan.json")
    (root / "prompts/c.yaml").write_text("name: c\nprompt: A wren.\n")
    with pytest.raises(StalePlanError, match=r"'c' changed"):
        check_fresh(load_saved_plan(root / "plan.json"), current(root))


def test_changed_outputs_on_disk_make_a_repair_plan_stale(root: Path) -> None:
    (root / "generated/b-1.png").unlink()
    options = PlanOptions(repair=True)
    save_plan(current(root, options), root / "plan.json")
    apply_everything(root)  # someone restored b's output (and re-locked everything)
    saved = load_saved_plan(root / "plan.json")
    with pytest.raises(StalePlanError):
        check_fresh(saved, current(root, saved.options))


def test_an_output_path_changed_after_review_makes_the_saved_plan_stale(root: Path) -> None:
    # The path is not part of the fingerprint, but where apply writes was part of the review.
    save_plan(current(root), root / "plan.json")
    (root / "prompts/a.yaml").write_text('name: a\nprompt: A red fox.\noutput: "elsewhere/a.png"\n')
    with pytest.raises(StalePlanError, match=r"output paths of 'a' changed since it was made"):
        check_fresh(load_saved_plan(root / "plan.json"), current(root))


def test_missing_saved_plan_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SavedPlanError, match="does not exist"):
        load_saved_plan(tmp_path / "nope.json")


def test_foreign_json_is_not_taken_for_a_plan(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text(json.dumps({"hello": 1}))
    with pytest.raises(SavedPlanError, match="not a plan saved by `promptform plan --out`"):
        load_saved_plan(tmp_path / "x.json")


def test_a_saved_plan_nested_too_deeply_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(SavedPlanError, match=r"cannot read saved plan .*nested too deeply"):
        load_saved_plan(tmp_path / "x.json")


def test_saved_plan_from_another_format_version_is_refused(root: Path) -> None:
    save_plan(current(root), root / "plan.json")
    data = json.loads((root / "plan.json").read_text())
    data["version"] = 99
    (root / "plan.json").write_text(json.dumps(data))
    with pytest.raises(SavedPlanError, match="format version 99"):
        load_saved_plan(root / "plan.json")
