"""`[budget] max_images_per_pull_request` and `max_cost_per_pull_request`, enforced with
`--base-config REF`: what the branch already generated since it forked from REF, plus this run.

One apply's `[budget]` does not bound a pull request that is applied again after every push. What was
already paid for is read from git: every version of the lockfile committed since the merge base
with REF (a target regenerated twice has one entry at the tip, but both versions are in history),
and the working tree's. A generation is known by its outputs' sha256 (every generated image differs),
so a rename, or an entry also in the lockfile at the merge base or at REF, is not counted again.
Offline previews and images adopted by hand were not bought from an API and are not counted; images
adopted from .promptform/rescued/ were.
"""

from __future__ import annotations

from dataclasses import dataclass

from promptform.core.config import Config
from promptform.core.errors import PromptformError
from promptform.core.pricing import request_cost
from promptform.engine.base_config import BaseConfig
from promptform.engine.plan import BudgetExceededError
from promptform.engine.plan_format import count_text
from promptform.engine.plan_model import Summary
from promptform.gitops.gitrepo import is_shallow_clone, merge_base, repo_path
from promptform.gitops.lock_history import lock_history, lockfile_at
from promptform.state.lockfile import LockEntry, Lockfile, read_lockfile

FREE_KINDS = ("offline",)
ADOPTED_KIND, RESCUED_SOURCE = "adopted", "rescued"
LIMIT_HINT = (
    "narrow this run with --target, or raise the limit on the base branch in its own reviewed "
    "pull request"
)


@dataclass(frozen=True)
class Spent:
    """What a pull request's branch has generated since it forked from the base."""

    images: int
    cost_usd: float | None  # None when some generation's cost is unknown
    unpriced_model: str | None = None  # a model whose generation has no known cost


def has_pull_request_budget(config: Config) -> bool:
    budget = config.budget
    return (
        budget.max_images_per_pull_request is not None
        or budget.max_cost_per_pull_request is not None
    )


def check_pull_request_budget(
    config: Config, base: BaseConfig, summary: Summary, run: str = "this apply"
) -> Spent | None:
    """Refuse when what the branch already generated plus `summary` passes a per-pull-request
    limit. `config` has been checked against the base (its limits are at most the base's).
    Returns what was spent (None when no such limit is set) so the caller can say so."""
    if not has_pull_request_budget(config):
        return None
    spent = spent_on_pull_request(config, base)
    max_images = config.budget.max_images_per_pull_request
    max_cost = config.budget.max_cost_per_pull_request
    since = f"since it forked from {base.ref}"
    if max_images is not None and spent.images + summary.images > max_images:
        raise BudgetExceededError(
            f"this pull request already generated {count_text(spent.images, 'image')} {since} and {run} "
            f"would generate {summary.images} more, {spent.images + summary.images} in all, over "
            f"the limit of {max_images} ([budget] max_images_per_pull_request); {LIMIT_HINT}"
        )
    if max_cost is None:
        return spent
    if spent.cost_usd is None or summary.estimated_cost_usd is None:
        whose = (
            f"an image this pull request already generated ({spent.unpriced_model})"
            if spent.cost_usd is None
            else f"{run}"
        )
        raise BudgetExceededError(
            f"the cost of {whose} is unknown, so it cannot be checked against "
            f"max_cost_per_pull_request ${max_cost:.2f}; add a [pricing.MODEL] table on the base "
            "branch in its own reviewed pull request"
        )
    total = spent.cost_usd + summary.estimated_cost_usd
    if total > max_cost:
        raise BudgetExceededError(
            f"this pull request already spent ${spent.cost_usd:.2f} ({count_text(spent.images, 'image')}) "
            f"{since} and {run} is estimated at ${summary.estimated_cost_usd:.2f} more, "
            f"${total:.2f} in all, over the limit of ${max_cost:.2f} "
            f"([budget] max_cost_per_pull_request); {LIMIT_HINT}"
        )
    return spent


def spent_on_pull_request(config: Config, base: BaseConfig) -> Spent:
    root = config.root
    if is_shallow_clone(root):
        # Missing commits would hide generations already paid for: refuse rather than undercount.
        raise PromptformError(
            "this is a shallow clone, so what this pull request already generated cannot be "
            "counted for [budget] max_*_per_pull_request; check out the whole history "
            "(actions/checkout with fetch-depth: 0)"
        )
    fork = merge_base(root, base.commit, "HEAD")
    if fork is None:
        raise PromptformError(
            f"--base-config {base.ref} shares no history with HEAD, so what this branch already "
            "generated cannot be counted; pass the branch the pull request is based on"
        )
    lock_path = repo_path(root, config.lockfile)
    already_there = _generations(lockfile_at(root, fork, lock_path))
    already_there |= _generations(
        lockfile_at(root, base.commit, repo_path(root, base.config.lockfile))
    )
    lockfiles = lock_history(root, lock_path, since=fork, every_branch=True)
    lockfiles.append(read_lockfile(config.lockfile))
    # Each generation once, at the highest cost any version of its entry records.
    costs: dict[tuple[str, ...], tuple[int, float | None, str]] = {}
    for lockfile in lockfiles:
        for entry in lockfile.targets.values():
            key = _generation(entry)
            if key in already_there or not _bought(entry):
                continue
            cost = entry.cost_usd
            if cost is None:
                cost = request_cost(entry.request, config.pricing)
            known = costs.get(key)
            if known is None or (cost is not None and (known[1] is None or cost > known[1])):
                costs[key] = (len(entry.outputs), cost, entry.model)
    unpriced = next((model for _, cost, model in costs.values() if cost is None), None)
    return Spent(
        images=sum(images for images, _, _ in costs.values()),
        cost_usd=None if unpriced else sum(cost or 0.0 for _, cost, _ in costs.values()),
        unpriced_model=unpriced,
    )


def _generations(lockfile: Lockfile) -> set[tuple[str, ...]]:
    return {_generation(entry) for entry in lockfile.targets.values()}


def _generation(entry: LockEntry) -> tuple[str, ...]:
    return tuple(sorted(output.sha256 for output in entry.outputs))


def _bought(entry: LockEntry) -> bool:
    if entry.provider.kind in FREE_KINDS:
        return False
    return entry.provider.kind != ADOPTED_KIND or entry.provider.name == RESCUED_SOURCE


def describe_spent(config: Config, base: BaseConfig, spent: Spent, summary: Summary) -> str:
    """One line for the log: what the pull request spent, this run adds, and the limits."""
    budget = config.budget
    limits = [
        text
        for text in (
            None
            if budget.max_images_per_pull_request is None
            else count_text(budget.max_images_per_pull_request, "image"),
            None
            if budget.max_cost_per_pull_request is None
            else f"${budget.max_cost_per_pull_request:.2f}",
        )
        if text is not None
    ]
    spent_cost = "" if spent.cost_usd is None else f" (${spent.cost_usd:.2f})"
    run_cost = "" if summary.estimated_cost_usd is None else f" (${summary.estimated_cost_usd:.2f})"
    return (
        f"Pull request budget: {count_text(spent.images, 'image')}{spent_cost} already generated since the "
        f"branch forked from {base.ref}, {summary.images} more{run_cost} now; limit "
        f"{' and '.join(limits)}."
    )
