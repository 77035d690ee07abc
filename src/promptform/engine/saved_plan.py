"""Saved plans (`plan --out FILE`) and the check that refuses to apply a stale one.

A saved plan pins the lockfile's hash and every target's fingerprint, with the options, and the action
and output paths per address to change (where apply writes is part of what was reviewed). `apply FILE` recomputes the plan with the saved options and applies it only when all of
that is unchanged, as Terraform does: anything that moved since the review makes the file stale.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from promptform import __version__
from promptform.core.atomic import atomic_write
from promptform.core.errors import PromptformError
from promptform.engine.plan_model import Plan, PlanOptions

SAVED_PLAN_KIND = "promptform-saved-plan"
SAVED_PLAN_VERSION = 2
_MAX_LISTED = 5


class StalePlanError(PromptformError):
    pass


class SavedPlanError(PromptformError):
    pass


@dataclass(frozen=True)
class SavedPlan:
    lock_hash: str
    fingerprints: dict[str, str]
    options: PlanOptions
    actions: dict[str, str]  # address -> action, for every actionable change
    outputs: dict[str, list[str]]  # address -> output paths, for every actionable change
    promptform_version: str
    # address -> submission id of each target left to a batch; a collect or cancel since changes it
    pending: dict[str, str] = dataclasses.field(default_factory=dict)


def saved_plan_document(plan: Plan) -> dict[str, Any]:
    """The JSON written by `plan --out`, sorted for byte-stable files."""
    return {
        "kind": SAVED_PLAN_KIND,
        "version": SAVED_PLAN_VERSION,
        "promptform_version": __version__,
        "lock_hash": plan.lock_hash,
        "options": {
            "targets": list(plan.options.targets),
            "replace": list(plan.options.replace),
            "repair": plan.options.repair,
            "verify": plan.options.verify,
            "provider": plan.options.provider,
            "batch": plan.options.batch,
        },
        "fingerprints": dict(sorted(plan.fingerprints.items())),
        "actions": {change.address: change.action for change in plan.actionable},
        "outputs": _outputs(plan),
        "pending": _pending(plan),
    }


def _pending(plan: Plan) -> dict[str, str]:
    return {item.address: item.submission_id for item in plan.waiting}


def _outputs(plan: Plan) -> dict[str, list[str]]:
    return {
        change.address: list(change.target.outputs) if change.target else []
        for change in plan.actionable
    }


def save_plan(plan: Plan, path: Path) -> None:
    text = json.dumps(saved_plan_document(plan), indent=2, sort_keys=True, ensure_ascii=False)
    atomic_write(path, (text + "\n").encode("utf-8"))


def load_saved_plan(path: Path) -> SavedPlan:
    """The saved plan at `path`; a clear error when it is unreadable or not a promptform plan."""
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise SavedPlanError(f"saved plan '{path}' does not exist") from None
    except (OSError, ValueError) as exc:
        raise SavedPlanError(f"cannot read saved plan '{path}': {exc}") from None
    except RecursionError:
        raise SavedPlanError(f"cannot read saved plan '{path}': nested too deeply") from None
    if not isinstance(data, dict) or data.get("kind") != SAVED_PLAN_KIND:
        raise SavedPlanError(f"'{path}' is not a plan saved by `promptform plan --out`")
    if data.get("version") != SAVED_PLAN_VERSION:
        raise SavedPlanError(
            f"saved plan '{path}' has format version {data.get('version')}; this promptform reads "
            f"version {SAVED_PLAN_VERSION}: run `promptform plan --out` again"
        )
    try:
        options = data["options"]
        return SavedPlan(
            lock_hash=str(data["lock_hash"]),
            fingerprints={str(key): str(value) for key, value in data["fingerprints"].items()},
            options=PlanOptions(
                targets=tuple(str(item) for item in options["targets"]),
                replace=tuple(str(item) for item in options["replace"]),
                repair=bool(options["repair"]),
                verify=bool(options["verify"]),
                provider=_optional_str(options.get("provider")),
                batch=bool(options.get("batch", False)),
            ),
            actions={str(key): str(value) for key, value in data["actions"].items()},
            outputs={str(key): [str(p) for p in value] for key, value in data["outputs"].items()},
            promptform_version=str(data.get("promptform_version", "unknown")),
            pending={str(key): str(value) for key, value in data.get("pending", {}).items()},
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise SavedPlanError(f"saved plan '{path}' is incomplete or corrupt ({exc})") from None


def check_fresh(saved: SavedPlan, current: Plan) -> None:
    """Raise StalePlanError unless `current` (recomputed with saved.options) is the saved plan."""
    advice = "run `promptform plan --out FILE` again and review the new plan"
    if saved.lock_hash != current.lock_hash:
        raise StalePlanError(
            "the saved plan is stale: promptform.lock changed since it was made "
            f"(another apply ran?); {advice}"
        )
    changed = _differences(saved.fingerprints, current.fingerprints)
    if changed:
        raise StalePlanError(
            f"the saved plan is stale: {_listed(changed)} changed since it was made; {advice}"
        )
    waiting = _differences(saved.pending, _pending(current))
    if waiting:
        raise StalePlanError(
            f"the saved plan is stale: the batches of {_listed(waiting)} were submitted, "
            f"collected or cancelled since it was made; {advice}"
        )
    actions = {change.address: change.action for change in current.actionable}
    differing = _differences(saved.actions, actions)
    if differing:
        raise StalePlanError(
            f"the saved plan is stale: the plan for {_listed(differing)} is different now "
            f"(outputs on disk changed?); {advice}"
        )
    moved = sorted(
        address
        for address in saved.outputs.keys() | _outputs(current).keys()
        if saved.outputs.get(address) != _outputs(current).get(address)
    )
    if moved:
        raise StalePlanError(
            f"the saved plan is stale: the output paths of {_listed(moved)} changed since it was "
            f"made; {advice}"
        )


def _differences(old: Mapping[str, str], new: Mapping[str, str]) -> list[str]:
    return sorted(key for key in old.keys() | new.keys() if old.get(key) != new.get(key))


def _listed(addresses: list[str]) -> str:
    shown = ", ".join(f"'{address}'" for address in addresses[:_MAX_LISTED])
    more = len(addresses) - _MAX_LISTED
    return shown + (f" and {more} more" if more > 0 else "")


def _optional_str(value: object) -> str | None:
    return None if value is None else str(value)
