"""The plan engine: one rule per test, on small repositories built on disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from promptform.core.config import load_config
from promptform.core.errors import ErrorGroup, PromptformError
from promptform.engine.plan import BudgetExceededError, check_budget, compute_plan, make_plan
from promptform.engine.plan_model import Change, Plan, PlanOptions
from promptform.engine.project import load_project
from promptform.state.lockfile import read_lockfile
from tests.support.files import MakeProject
from tests.support.plans import CONFIG, apply_everything

TWO_PROMPTS = {
    "promptform.toml": CONFIG,
    "templates/style.j2": "Watercolour, soft edges.\n",
    "prompts/a.yaml": """
        name: cards/a
        prompt: |
          {% include "style.j2" %}
          A fox.
        """,
    "prompts/b.yaml": """
        name: cards/b
        prompt: |
          {% include "style.j2" %}
          An owl.
        """,
    "prompts/c.yaml": """
        name: cards/c
        prompt: A plain heron.
        """,
}


def plan_of(root: Path, **options: object) -> Plan:
    return compute_plan(load_config(root), PlanOptions(**options))[2]  # type: ignore[arg-type]


def by_address(plan: Plan) -> dict[str, Change]:
    return {change.address: change for change in plan.changes}


def actions(plan: Plan) -> dict[str, str]:
    return {change.address: change.action for change in plan.changes}


def locked(make_project: MakeProject, files: dict[str, str | bytes]) -> Path:
    root = make_project(files)
    apply_everything(root)
    return root


def test_new_target_is_a_create(make_project: MakeProject) -> None:
    root = make_project(TWO_PROMPTS)
    plan = plan_of(root)
    assert set(actions(plan).values()) == {"create"}
    assert by_address(plan)["cards/a"].reasons == ("new target",)
    assert by_address(plan)["cards/a"].images == 1


def test_unchanged_repository_plans_nothing(make_project: MakeProject) -> None:
    root = locked(make_project, TWO_PROMPTS)
    plan = plan_of(root)
    assert not plan.has_changes
    assert plan.summary().unchanged == 3
    assert plan.drift == ()


def test_template_change_replans_every_prompt_that_includes_it(make_project: MakeProject) -> None:
    root = locked(make_project, TWO_PROMPTS)
    (root / "templates/style.j2").write_text("Ink drawing, hard edges.\n")
    plan = plan_of(root)
    assert actions(plan) == {"cards/a": "replace", "cards/b": "replace", "cards/c": "no-op"}
    assert by_address(plan)["cards/a"].reasons == ("prompt changed",)


@pytest.mark.parametrize(
    ("field", "old", "new", "reason"),
    [
        ("size", "1024x1024", "1536x1024", "size: 1024x1024 -> 1536x1024"),
        ("quality", "medium", "high", "quality: medium -> high"),
        ("model", "gpt-image-2", "gpt-image-1", "model: gpt-image-2 -> gpt-image-1"),
        ("n", "1", "2", "n: 1 -> 2"),
    ],
)
def test_replace_reasons_name_the_changed_field(
    make_project: MakeProject, field: str, old: str, new: str, reason: str
) -> None:
    files = {
        "promptform.toml": CONFIG,
        "prompts/x.yaml": f"name: x\n{field}: {old}\nprompt: A fox.\n",
    }
    root = locked(make_project, files)
    (root / "prompts/x.yaml").write_text(f"name: x\n{field}: {new}\nprompt: A fox.\n")
    change = by_address(plan_of(root))["x"]
    assert change.action == "replace"
    assert reason in change.reasons


def test_added_request_field_is_shown_as_set_from_unset(make_project: MakeProject) -> None:
    root = locked(make_project, {"promptform.toml": CONFIG, "prompts/x.yaml": "prompt: A fox.\n"})
    (root / "prompts/x.yaml").write_text("background: opaque\nprompt: A fox.\n")
    assert by_address(plan_of(root))["x"].reasons == ("background: (unset) -> opaque",)


def test_reference_image_content_change_is_a_replace(make_project: MakeProject) -> None:
    files = {
        "promptform.toml": CONFIG,
        "refs/logo.png": b"\x89PNG logo v1",
        "prompts/x.yaml": "images: [refs/logo.png]\nprompt: Put the logo on a mug.\n",
    }
    root = locked(make_project, files)
    (root / "refs/logo.png").write_bytes(b"\x89PNG logo v2")
    change = by_address(plan_of(root))["x"]
    assert change.action == "replace"
    assert change.reasons == ("reference image `refs/logo.png` content changed",)


def test_provider_kind_change_is_a_replace(make_project: MakeProject) -> None:
    root = locked(make_project, {"promptform.toml": CONFIG, "prompts/x.yaml": "prompt: A fox.\n"})
    (root / "prompts/x.yaml").write_text("provider: offline\nprompt: A fox.\n")
    assert by_address(plan_of(root))["x"].reasons == ("provider kind: openai -> offline",)


def test_output_rename_is_a_move_not_a_regeneration(make_project: MakeProject) -> None:
    files = {
        "promptform.toml": CONFIG,
        "prompts/x.yaml": "output: old/x.png\nprompt: A fox.\n",
    }
    root = locked(make_project, files)
    (root / "prompts/x.yaml").write_text("output: new/x.png\nprompt: A fox.\n")
    change = by_address(plan_of(root))["x"]
    assert change.action == "move"
    assert change.renames == (("old/x.png", "new/x.png"),)
    assert (change.images, change.cost_usd) == (0, 0.0)


def test_renamed_manifest_is_a_move_not_a_delete_and_create(make_project: MakeProject) -> None:
    root = locked(make_project, TWO_PROMPTS)
    (root / "prompts/c.yaml").write_text("name: birds/heron\nprompt: A plain heron.\n")
    plan = plan_of(root)
    change = by_address(plan)["birds/heron"]
    assert change.action == "move"
    assert change.moved_from == "cards/c"
    assert change.renames == (("cards/c-1.png", "birds/heron-1.png"),)
    assert "cards/c" not in actions(plan)
    assert plan.summary().images == 0


def test_removed_manifest_is_a_delete_planned_last(make_project: MakeProject) -> None:
    root = locked(make_project, TWO_PROMPTS)
    (root / "prompts/a.yaml").unlink()
    (root / "prompts/d.yaml").write_text("name: cards/d\nprompt: A wren.\n")
    plan = plan_of(root)
    assert plan.changes[-1].address == "cards/a"
    assert plan.changes[-1].action == "delete"
    assert plan.changes[-1].target is None


DAG = {
    "promptform.toml": CONFIG,
    # The downstream manifest comes first on purpose: apply order must not follow file order.
    "prompts/1-poster.yaml": """
        name: poster
        images: [generated/scene-1.png]
        prompt: A poster built from the scene.
        """,
    "prompts/2-scene.yaml": """
        name: scene
        images: [generated/base-1.png]
        prompt: A scene built on the base.
        """,
    "prompts/3-base.yaml": "name: base\nprompt: A base landscape.\n",
    "prompts/4-other.yaml": "name: other\nprompt: Unrelated.\n",
}


def test_changes_come_in_apply_order_with_upstream_first(make_project: MakeProject) -> None:
    root = make_project(DAG)
    plan = plan_of(root)
    assert [change.address for change in plan.changes] == ["base", "scene", "poster", "other"]


def test_changed_upstream_replans_everything_downstream(make_project: MakeProject) -> None:
    root = locked(make_project, DAG)
    (root / "prompts/3-base.yaml").write_text("name: base\nprompt: A base seascape.\n")
    plan = plan_of(root)
    assert actions(plan) == {
        "base": "replace",
        "scene": "replace",
        "poster": "replace",
        "other": "no-op",
    }
    assert by_address(plan)["poster"].reasons == ("input `scene` will be regenerated",)


def test_reference_image_cycle_is_an_error(make_project: MakeProject) -> None:
    root = make_project(
        {
            "promptform.toml": CONFIG,
            "prompts/a.yaml": "name: a\nimages: [generated/b-1.png]\nprompt: A.\n",
            "prompts/b.yaml": "name: b\nimages: [generated/a-1.png]\nprompt: B.\n",
        }
    )
    with pytest.raises(ErrorGroup, match="problem") as raised:
        plan_of(root)
    assert "cycle" in raised.value.problems[0].message


def test_forced_replace_regenerates_an_unchanged_target(make_project: MakeProject) -> None:
    root = locked(make_project, TWO_PROMPTS)
    change = by_address(plan_of(root, replace=("cards/c",)))["cards/c"]
    assert change.action == "replace"
    assert change.reasons == ("forced by --replace",)


def test_replace_of_unknown_address_is_an_error(make_project: MakeProject) -> None:
    root = locked(make_project, TWO_PROMPTS)
    with pytest.raises(PromptformError, match="--replace 'cards/zz' matches no target"):
        plan_of(root, replace=("cards/zz",))


def test_target_limits_the_plan_to_matching_addresses(make_project: MakeProject) -> None:
    root = make_project(TWO_PROMPTS)
    plan = plan_of(root, targets=("cards/a",))
    assert list(actions(plan)) == ["cards/a"]
    assert len(plan.fingerprints) == 3  # saved plans still pin every target


def test_target_brings_its_upstreams_along(make_project: MakeProject) -> None:
    root = make_project(DAG)
    plan = plan_of(root, targets=("poster",))
    assert [change.address for change in plan.changes] == ["base", "scene", "poster"]


def test_target_matching_nothing_is_an_error(make_project: MakeProject) -> None:
    root = make_project(TWO_PROMPTS)
    with pytest.raises(PromptformError, match="--target 'nope' matches no target"):
        plan_of(root, targets=("nope",))


def test_drift_is_reported_and_never_regenerated(make_project: MakeProject) -> None:
    root = locked(make_project, TWO_PROMPTS)
    (root / "generated/cards/a-1.png").unlink()
    plan = plan_of(root)
    assert not plan.has_changes
    assert [(item.address, item.kind) for item in plan.drift] == [("cards/a", "missing")]


def test_repair_regenerates_missing_outputs_only(make_project: MakeProject) -> None:
    root = locked(make_project, TWO_PROMPTS)
    (root / "generated/cards/a-1.png").unlink()
    (root / "generated/cards/b-1.png").write_bytes(b"changed by hand")
    plan = plan_of(root, repair=True)
    assert actions(plan) == {"cards/a": "replace", "cards/b": "no-op", "cards/c": "no-op"}
    assert by_address(plan)["cards/a"].reasons == ("output `cards/a-1.png` is missing (--repair)",)


def test_make_plan_is_pure_and_repeatable(make_project: MakeProject) -> None:
    root = locked(make_project, TWO_PROMPTS)
    (root / "templates/style.j2").write_text("Charcoal.\n")
    config = load_config(root)
    project = load_project(config)
    lockfile = read_lockfile(config.lockfile)
    first = make_plan(project, lockfile, PlanOptions(), (), "hash")
    second = make_plan(project, lockfile, PlanOptions(), (), "hash")
    assert first == second


def test_plan_estimates_cost_from_builtin_prices(make_project: MakeProject) -> None:
    root = make_project(TWO_PROMPTS)  # gpt-image-2, medium, 1024x1024
    summary = plan_of(root).summary()
    assert summary.images == 3
    assert summary.estimated_cost_usd == pytest.approx(3 * 0.053)


def test_unknown_price_makes_the_estimate_unknown(make_project: MakeProject) -> None:
    root = make_project(
        {"promptform.toml": CONFIG, "prompts/x.yaml": "model: acme-img\nprompt: A.\n"}
    )
    plan = plan_of(root)
    assert plan.changes[0].cost_usd is None
    assert plan.summary().estimated_cost_usd is None


def test_budget_refuses_too_many_images(make_project: MakeProject) -> None:
    summary = plan_of(make_project(TWO_PROMPTS)).summary()
    with pytest.raises(BudgetExceededError, match="generates 3 images, over the budget of 2"):
        check_budget(summary, max_images=2, max_cost=None)


def test_budget_refuses_too_much_cost(make_project: MakeProject) -> None:
    summary = plan_of(make_project(TWO_PROMPTS)).summary()
    with pytest.raises(
        BudgetExceededError, match=r"estimated at \$0.16, over the budget of \$0.10"
    ):
        check_budget(summary, max_images=None, max_cost=0.10)


def test_budget_refuses_an_unknown_cost_when_max_cost_is_set(make_project: MakeProject) -> None:
    root = make_project(
        {"promptform.toml": CONFIG, "prompts/x.yaml": "model: acme-img\nprompt: A.\n"}
    )
    with pytest.raises(BudgetExceededError, match="cost is unknown"):
        check_budget(plan_of(root).summary(), max_images=None, max_cost=5.0)


def test_budget_within_limits_passes(make_project: MakeProject) -> None:
    summary = plan_of(make_project(TWO_PROMPTS)).summary()
    check_budget(summary, max_images=3, max_cost=1.0)
