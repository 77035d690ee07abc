"""The plan engine: what apply must do, per address, to make promptform.lock match the manifests.

`make_plan` is pure (project + lockfile + drift in, Plan out). `compute_plan` does the reading around
it, for `plan` and `apply` alike. Changes come in apply order: upstream targets before the targets
that use their outputs as reference images, deletes last.
"""

from __future__ import annotations

import dataclasses
import heapq
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from promptform.core.config import Config
from promptform.core.errors import PromptformError, display_path
from promptform.core.fingerprint import fingerprint
from promptform.core.paths import path_key
from promptform.core.pricing import assumed_quality, batch_request_cost, request_cost
from promptform.engine.plan_model import (
    Change,
    PendingTarget,
    Plan,
    PlanOptions,
    Summary,
    UnstartedBatch,
)
from promptform.engine.project import Project, load_project
from promptform.manifests.addresses import (
    address_matches,
    closest_address,
    matching_addresses,
    path_aliases,
)
from promptform.manifests.targets import Target
from promptform.state.drift import Drift, check_drift, detect_outputs_dir_change
from promptform.state.lockfile import (
    LockEntry,
    Lockfile,
    read_lock_state,
    shards_of,
)

if TYPE_CHECKING:
    from promptform.state.pending_batches import Submission, SubmittedTarget

# Request fields named first in reasons, in this order; any others follow alphabetically.
_FIELD_ORDER = ("prompt", "model", "size", "quality", "n")


class BudgetExceededError(PromptformError):
    pass


def compute_plan(config: Config, options: PlanOptions) -> tuple[Project, Lockfile, Plan]:
    """Load the project and lockfile, check drift, and plan. Reads files; never writes but the cache."""
    config = config.with_provider(options.provider)
    project = load_project(config, use_cache=True)
    # The hash is of the very bytes parsed, so a saved plan pins exactly the lock it was made from.
    state = read_lock_state(config.lockfile, display_path(config.lockfile, config.root))
    lockfile, lock_hash = state.lockfile, state.hash
    in_scope = selected_addresses(project.targets, lockfile, options.targets, config)
    targets = project.by_address()
    entries = {
        address: entry
        for address, entry in lockfile.targets.items()
        if address in in_scope and address in targets
    }
    drift = check_drift(config, entries, verify=options.verify)
    submissions = _pending_submissions(config)
    plan = make_plan(project, lockfile, options, drift, lock_hash, submissions)
    moved = detect_outputs_dir_change(config, lockfile.targets)
    return project, lockfile, dataclasses.replace(plan, outputs_dir_change=moved)


def _pending_submissions(config: Config) -> list[Submission]:
    if not config.batches_dir.is_dir():
        return []  # the usual project: no batch module to import
    from promptform.state.pending_batches import read_submissions

    return read_submissions(config.batches_dir, config.root)


def lock_shards(project: Project) -> dict[str, str]:
    """address -> the shard of promptform.lock its entry belongs in: its manifest file's."""
    config = project.config
    prompts_dir = display_path(config.prompts_dir, config.root)
    return shards_of(((target.address, target.file) for target in project.targets), prompts_dir)


def make_plan(
    project: Project,
    lockfile: Lockfile,
    options: PlanOptions,
    drift: Sequence[Drift],
    lock_hash: str,
    submissions: Sequence[Submission] = (),
) -> Plan:
    """The plan for `project` against `lockfile` and the batches not collected yet. Pure: no
    files, no clock, no network."""
    prefix = project.config.project.outputs_dir.strip("/") + "/"
    project = dataclasses.replace(
        project, targets=_with_moved_inputs(project.targets, lockfile, prefix)
    )
    targets = project.by_address()
    in_scope = selected_addresses(project.targets, lockfile, options.targets, project.config)
    replaced = (
        _replaced(
            options.replace, targets, selection_aliases(project.targets, lockfile, project.config)
        )
        if options.replace
        else set()
    )
    removed = sorted(address for address in lockfile.targets if address not in targets)
    renamable = _by_fingerprint(removed, lockfile)
    missing = _missing_outputs(drift) if options.repair else {}
    pricing = project.config.pricing
    paid_provider = paid_provider_name(project.config)
    submitted = uncollected_targets(submissions, lockfile)
    # Requests pending for an address no target has any more, by fingerprint: a renamed
    # manifest's target waits for them, as a renamed target's locked image moves.
    renamed_pending = _by_submitted_fingerprint(submitted, targets)
    pending: list[PendingTarget] = []
    regenerated: set[str] = set()
    waiting: set[str] = set()
    changes: list[Change] = []
    upstream = _Upstream(regenerated, waiting)
    for target in _apply_order(project.targets, in_scope):
        in_batches: list[PendingTarget] = []
        if submitted:  # nothing in a batch: the usual plan skips this per target
            in_batches = _pending_for(submitted.get(target.address, ()), target.fingerprint)
            if not in_batches and target.address not in lockfile.targets:
                moved = renamed_pending.pop(target.fingerprint, ())
                in_batches = _pending_for(moved, target.fingerprint, target.address)
            pending += in_batches
            if any(not item.stale for item in in_batches):
                # Left to its batch, even under --replace: a request is never paid for twice.
                waiting.add(target.address)
                continue
        change = _change_for(
            target, lockfile, options, upstream, renamable, missing, pricing, replaced
        )
        if change.generates:
            change = _priced(change, pricing, paid_provider)
            if in_batches:  # all stale here: the ones still current were left to their batch
                change = _with_stale_batches(change, in_batches)
            regenerated.add(target.address)
        changes.append(change)
    # Requests of gone addresses a renamed target took over above are its, not stale leftovers.
    waited_for = {(item.submission_id, item.fingerprint) for item in pending}
    for address in sorted(in_scope - targets.keys()):
        left = submitted.get(address, ())
        pending += _pending_for(
            [(sub, item) for sub, item in left if (sub.id, item.fingerprint) not in waited_for],
            None,
        )
    _refuse_moving_read_inputs(changes, project.targets, prefix)
    consumed = {change.moved_from for change in changes if change.moved_from}
    for address in removed:
        if address in in_scope and address not in consumed:
            changes.append(_delete(address, lockfile.targets[address]))
    scoped_drift = tuple(
        _collect_hint(item) if item.kind == "modified" and item.address in submitted else item
        for item in drift
        if item.address in in_scope
    )
    return Plan(
        changes=tuple(changes),
        drift=scoped_drift,
        options=options,
        lock_hash=lock_hash,
        fingerprints={target.address: target.fingerprint for target in project.targets},
        target_paths=frozenset(
            path_key(path) for target in project.targets for path in target.outputs
        ),
        pending=tuple(sorted(pending, key=lambda item: (item.address, item.submission_id))),
        unstarted=tuple(
            _unstarted(submission, pricing) for submission in submissions if not submission.batch_id
        ),
    )


def _unstarted(
    submission: Submission, pricing: Mapping[str, Mapping[str, float]]
) -> UnstartedBatch:
    """What creating `submission`'s batch would cost, priced from its request lines as recorded
    (whatever targets the manifests declare now: the batch runs what was uploaded)."""
    cost: float | None = 0.0
    images = 0
    for item in submission.targets:
        images += _requested_images(item.request)
        price = _batch_price({"model": item.model, **item.request}, pricing)
        cost = None if cost is None or price is None else cost + price
    return UnstartedBatch(
        submission_id=submission.id,
        provider=submission.provider,
        endpoint=submission.endpoint,
        submitted_at=submission.submitted_at,
        requests=len(submission.targets),
        images=images,
        cost_usd=round(cost, 6) if cost is not None else None,
    )


def _batch_price(
    request: Mapping[str, Any], pricing: Mapping[str, Mapping[str, float]]
) -> float | None:
    # A request as the submission file records it, which may have been edited: unpriceable
    # rather than a crash.
    try:
        return batch_request_cost(request, pricing)
    except (KeyError, TypeError, ValueError):
        return None


def _requested_images(request: Mapping[str, Any]) -> int:
    count = request.get("n", 1)
    return count if isinstance(count, int) and count > 0 else 1


def uncollected_targets(
    submissions: Sequence[Submission], lockfile: Lockfile
) -> dict[str, list[tuple[Submission, SubmittedTarget]]]:
    """address -> each batch request for it whose result is not recorded, with its submission.

    A collect killed half-way leaves its submission listing targets already recorded (the lock
    entry names the batch and the fingerprint): those are done, not pending.
    """
    found: dict[str, list[tuple[Submission, SubmittedTarget]]] = {}
    for submission in submissions:
        for item in submission.targets:
            entry = lockfile.targets.get(item.address)
            if (
                entry is not None
                and submission.batch_id is not None
                and entry.batch_id == submission.batch_id
                and entry.fingerprint == item.fingerprint
            ):
                continue
            found.setdefault(item.address, []).append((submission, item))
    return found


def _collect_hint(drift: Drift) -> Drift:
    """A changed output whose target waits in a batch: most likely the batch's image, written by a
    collect that was stopped before it recorded it. Restoring it from git would not lose it (the
    batch keeps it), but collecting records it."""
    message = (
        f"{drift.path} differs from what promptform.lock records while its batch is pending: a "
        "collect stopped before recording may have written it; `promptform batch collect` "
        "records it"
    )
    return dataclasses.replace(drift, message=message)


def _by_submitted_fingerprint(
    submitted: dict[str, list[tuple[Submission, SubmittedTarget]]], targets: Mapping[str, Target]
) -> dict[str, list[tuple[Submission, SubmittedTarget]]]:
    """fingerprint -> uncollected requests of addresses that no target has any more."""
    found: dict[str, list[tuple[Submission, SubmittedTarget]]] = {}
    for address, requests in submitted.items():
        if address not in targets:
            for submission, item in requests:
                found.setdefault(item.fingerprint, []).append((submission, item))
    return found


def _pending_for(
    submitted: Sequence[tuple[Submission, SubmittedTarget]],
    fingerprint: str | None,
    address: str | None = None,
) -> list[PendingTarget]:
    """The plan's view of one address's uncollected batch requests (`fingerprint`: the target's
    now, None when it no longer exists; `address`: the target's, when it was renamed since)."""
    return [
        PendingTarget(
            address=address or item.address,
            batch_id=submission.batch_id,
            submission_id=submission.id,
            fingerprint=item.fingerprint,
            submitted_at=submission.submitted_at,
            stale=item.fingerprint != fingerprint,
        )
        for submission, item in submitted
    ]


def _with_stale_batches(change: Change, in_batches: Sequence[PendingTarget]) -> Change:
    labels = ", ".join(item.batch_id or f"submission {item.submission_id}" for item in in_batches)
    reason = (
        f"manifest changed since it was submitted in batch {labels} (that result goes to the trash)"
    )
    return dataclasses.replace(change, reasons=(*change.reasons, reason))


@dataclasses.dataclass(frozen=True)
class _Upstream:
    """Targets earlier in the plan that downstream targets must wait for."""

    regenerated: set[str]  # generated by this plan
    waiting: set[str]  # pending in a batch


def _with_moved_inputs(targets: list[Target], lockfile: Lockfile, prefix: str) -> list[Target]:
    """Targets whose reference image is an upstream's output that only moves (not there yet at
    its new path), fingerprinted with the hash the upstream's entry records for it: the same
    pixels, so nothing to pay for. Upstreams first, so a chain of moves carries through."""
    if all(item.sha256 is not None for target in targets for item in target.inputs):
        return targets  # every reference image exists: the usual plan does no more work here
    by_address = {target.address: target for target in targets}
    producer = {
        prefix + path: (target.address, index)
        for target in targets
        for index, path in enumerate(target.outputs)
    }
    for target in _apply_order(targets, set(by_address)):
        if all(item.sha256 is not None for item in target.inputs):
            continue
        inputs = []
        for item in target.inputs:
            owner = producer.get(item.path) if item.sha256 is None else None
            locked = _locked_output_hash(owner, by_address, lockfile) if owner else None
            inputs.append(dataclasses.replace(item, sha256=locked) if locked else item)
        if inputs != list(target.inputs):
            by_address[target.address] = dataclasses.replace(
                target,
                inputs=tuple(inputs),
                fingerprint=fingerprint(
                    target.provider_kind,
                    target.endpoint,
                    target.body,
                    ((item.role, item.sha256 or f"pending:{item.path}") for item in inputs),
                ),
            )
    return [by_address[target.address] for target in targets]


def _locked_output_hash(
    owner: tuple[str, int], targets: Mapping[str, Target], lockfile: Lockfile
) -> str | None:
    """The recorded hash of an upstream's output, if the upstream is up to date (so only moves)."""
    address, index = owner
    entry = lockfile.targets.get(address)
    if entry is None or entry.fingerprint != targets[address].fingerprint:
        return None
    return entry.outputs[index].sha256 if index < len(entry.outputs) else None


def _refuse_moving_read_inputs(
    changes: Sequence[Change], targets: Sequence[Target], prefix: str
) -> None:
    """A move must not take away a file some target reads as a reference image: afterwards that
    target could be neither planned nor generated."""
    written = {prefix + path for target in targets for path in target.outputs}
    vacated = {
        prefix + old: (change, prefix + new)
        for change in changes
        if change.action == "move"
        for old, new in change.renames
        if prefix + old not in written
    }
    for target in targets:
        for item in target.inputs:
            if item.path in vacated:
                change, new = vacated[item.path]
                raise PromptformError(
                    f"moving `{change.address}` takes {item.path} away, but `{target.address}` "
                    f"reads it as a reference image; point its images: at {new} in "
                    f"{target.location()} (or keep the old output path)"
                )


def paid_provider_name(config: Config) -> str:
    """The provider an offline preview stands in for: the project's default unless that is offline
    too, then the first paid provider configured, else wisgate (whose prices are the built-in ones).
    """
    default = config.project.default_provider
    settings = config.providers.get(default)
    if settings is not None and settings.kind != "offline":
        return default
    paid = [name for name, provider in config.providers.items() if provider.kind != "offline"]
    return paid[0] if paid else "wisgate"


def _priced(
    change: Change, pricing: Mapping[str, Mapping[str, float]], paid_provider: str
) -> Change:
    """`change` with what its estimate assumed, and for an offline preview, the paid price."""
    target = change.target
    if target is None or not change.generates:
        return change
    assumed = assumed_quality(target.body, pricing)
    if target.provider_kind != "offline":
        return dataclasses.replace(change, assumed_quality=assumed)
    return dataclasses.replace(
        change,
        assumed_quality=assumed,
        paid_provider=paid_provider,
        paid_cost_usd=request_cost(target.body, pricing),
    )


def selection_aliases(
    targets: Sequence[Target], lockfile: Lockfile, config: Config
) -> dict[str, tuple[str, ...]]:
    """The paths that select each address: its manifest and its outputs, planned or recorded."""
    prompts_dir, outputs_dir = config.project.prompts_dir, config.project.outputs_dir
    aliases = {
        target.address: path_aliases(target.file, target.outputs, prompts_dir, outputs_dir)
        for target in targets
    }
    for address, entry in lockfile.targets.items():
        recorded = path_aliases(
            None, [item.path for item in entry.outputs], prompts_dir, outputs_dir
        )
        aliases[address] = tuple(dict.fromkeys([*aliases.get(address, ()), *recorded]))
    return aliases


def selected_addresses(
    targets: Sequence[Target], lockfile: Lockfile, patterns: Sequence[str], config: Config
) -> set[str]:
    """Addresses a plan covers: all, or those `--target` patterns match plus their upstreams.

    Upstreams come along because a target cannot be generated from inputs that are out of date.
    A pattern that matches neither a target nor a lock entry is an error (a typo plans nothing).
    """
    everything = list(dict.fromkeys([*(target.address for target in targets), *lockfile.targets]))
    if not patterns:
        return set(everything)
    chosen = set(
        matching_addresses(
            everything,
            patterns,
            lambda pattern, suggestion: (
                f"--target '{pattern}' matches no target and no lock entry; "
                + (f"did you mean '{suggestion}'? " if suggestion else "")
                + "`promptform render` lists the targets"
            ),
            selection_aliases(targets, lockfile, config),
        )
    )
    upstream = {target.address: target.upstream for target in targets}
    pending = list(chosen)
    while pending:
        for parent in upstream.get(pending.pop(), ()):
            if parent not in chosen:
                chosen.add(parent)
                pending.append(parent)
    return chosen


def _replaced(
    patterns: Sequence[str], targets: Mapping[str, Target], aliases: Mapping[str, Sequence[str]]
) -> set[str]:
    """The addresses `--replace` patterns select; one selecting no target is an error."""
    replaced: set[str] = set()
    for pattern in patterns:
        matched = {
            address
            for address in targets
            if address_matches(address, pattern, aliases.get(address, ()))
        }
        if not matched:
            suggestion = closest_address(pattern, list(targets), aliases)
            hint = f"did you mean '{suggestion}'? " if suggestion else ""
            raise PromptformError(
                f"--replace '{pattern}' matches no target; {hint}`promptform render` lists the "
                "targets"
            )
        replaced |= matched
    return replaced


def check_budget(summary: Summary, max_images: int | None, max_cost: float | None) -> None:
    """Refuse a plan that would generate more images or spend more than allowed."""
    if max_images is not None and summary.images > max_images:
        raise BudgetExceededError(
            f"the plan generates {summary.images} images, over the budget of {max_images} "
            "([budget] max_images); narrow it with --target or raise the budget"
        )
    if max_cost is None:
        return
    if summary.estimated_cost_usd is None:
        raise BudgetExceededError(
            f"the plan's cost is unknown, so it cannot be checked against max_cost ${max_cost:.2f}; "
            "add a [pricing.MODEL] table to the config for the models marked `unknown`"
        )
    if summary.estimated_cost_usd > max_cost:
        raise BudgetExceededError(
            f"the plan is estimated at ${summary.estimated_cost_usd:.2f}, over the budget of "
            f"${max_cost:.2f} ([budget] max_cost); narrow it with --target or raise the budget"
        )


def change_reasons(target: Target, entry: LockEntry) -> list[str]:
    """Which parts of the request differ between the lock entry and the target, one line each."""
    reasons = [
        _field_reason(key, entry.request.get(key), target.body.get(key))
        for key in _ordered_keys(entry.request, target.body)
        if entry.request.get(key) != target.body.get(key)
    ]
    reasons += _input_reasons(target, entry)
    # Adopted images stand in for the target's own provider: that is not a reason to regenerate.
    if entry.provider.kind not in (target.provider_kind, "adopted"):
        reasons.append(f"provider kind: {entry.provider.kind} -> {target.provider_kind}")
    if entry.endpoint != target.endpoint:
        reasons.append(f"endpoint: {entry.endpoint} -> {target.endpoint}")
    return reasons


def _change_for(
    target: Target,
    lockfile: Lockfile,
    options: PlanOptions,
    upstream: _Upstream,
    renamable: dict[str, list[str]],
    missing: Mapping[str, list[str]],
    pricing: Mapping[str, Mapping[str, float]],
    replaced: set[str],
) -> Change:
    entry = lockfile.targets.get(target.address)
    upstream_reasons = _upstream_reasons(target, upstream) if target.upstream else []
    forced = target.address in replaced

    def cost() -> float | None:
        # Priced only for what generates: most targets of a plan are up to date.
        if target.provider_kind == "offline":  # previews cost nothing, whatever they stand in for
            return 0.0
        return (batch_request_cost if options.batch else request_cost)(target.body, pricing)

    if entry is None:
        old_address = (
            _take_rename(target, renamable) if not upstream_reasons and not forced else None
        )
        if old_address is not None:
            old = lockfile.targets[old_address]
            return Change(
                target.address,
                "move",
                (f"renamed from `{old_address}` (same fingerprint: no regeneration)",),
                target,
                old,
                moved_from=old_address,
                renames=_renames(old, target),
            )
        return Change(
            target.address,
            "create",
            ("new target",),
            target,
            None,
            images=target.images,
            cost_usd=cost(),
        )
    reasons: list[str] = []
    if forced:
        reasons.append("forced by --replace")
    if entry.fingerprint != target.fingerprint:
        reasons += change_reasons(target, entry) or ["fingerprint changed"]
    reasons += upstream_reasons
    if options.repair:
        reasons += [
            f"output `{path}` is missing (--repair)" for path in missing.get(target.address, [])
        ]
    if reasons:
        return Change(
            target.address,
            "replace",
            tuple(reasons),
            target,
            entry,
            images=target.images,
            cost_usd=cost(),
        )
    renames = _renames(entry, target)
    if renames:
        return Change(
            target.address, "move", ("output path changed",), target, entry, renames=renames
        )
    return Change(target.address, "no-op", (), target, entry)


def _upstream_reasons(target: Target, upstream: _Upstream) -> list[str]:
    return [
        f"input `{parent}` will be regenerated"
        for parent in target.upstream
        if parent in upstream.regenerated
    ] + [
        f"input `{parent}` is pending in a batch"
        for parent in target.upstream
        if parent in upstream.waiting
    ]


def _delete(address: str, entry: LockEntry) -> Change:
    return Change(address, "delete", ("manifest removed",), None, entry)


def _renames(entry: LockEntry, target: Target) -> tuple[tuple[str, str], ...]:
    if [output.path for output in entry.outputs] == list(target.outputs):
        return ()  # the usual case, checked without building pairs
    return tuple(
        (old.path, new)
        for old, new in zip(entry.outputs, target.outputs, strict=False)
        if old.path != new
    )


def _by_fingerprint(removed: Iterable[str], lockfile: Lockfile) -> dict[str, list[str]]:
    """Removed addresses by fingerprint, so a renamed manifest is a move, not delete + create."""
    found: dict[str, list[str]] = {}
    for address in removed:
        found.setdefault(lockfile.targets[address].fingerprint, []).append(address)
    return found


def _take_rename(target: Target, renamable: dict[str, list[str]]) -> str | None:
    candidates = renamable.get(target.fingerprint)
    return candidates.pop(0) if candidates else None


def _missing_outputs(drift: Sequence[Drift]) -> dict[str, list[str]]:
    missing: dict[str, list[str]] = {}
    for item in drift:
        if item.kind == "missing":
            missing.setdefault(item.address, []).append(item.path)
    return missing


def _apply_order(targets: Sequence[Target], in_scope: set[str]) -> list[Target]:
    """Targets in scope, upstream first, otherwise in manifest order (Kahn's algorithm, stable)."""
    chosen = [target for target in targets if target.address in in_scope]
    position = {target.address: index for index, target in enumerate(chosen)}
    waiting = {
        target.address: sum(1 for parent in target.upstream if parent in position)
        for target in chosen
    }
    children: dict[str, list[str]] = {}
    for target in chosen:
        for parent in target.upstream:
            if parent in position:
                children.setdefault(parent, []).append(target.address)
    ready = [position[address] for address, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    ordered: list[Target] = []
    while ready:
        target = chosen[heapq.heappop(ready)]
        ordered.append(target)
        for child in children.get(target.address, ()):
            waiting[child] -= 1
            if waiting[child] == 0:
                heapq.heappush(ready, position[child])
    return ordered


def _ordered_keys(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    keys = set(old) | set(new)
    first = [key for key in _FIELD_ORDER if key in keys]
    return first + sorted(keys - set(first))


def _field_reason(key: str, old: Any, new: Any) -> str:
    if key == "prompt":
        return "prompt changed"
    return f"{key}: {_shown(old)} -> {_shown(new)}"


def _shown(value: Any) -> str:
    if value is None:
        return "(unset)"
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _input_reasons(target: Target, entry: LockEntry) -> list[str]:
    old = {(item.role, item.path): item.sha256 for item in entry.inputs}
    new = {(item.role, item.path): item.sha256 for item in target.inputs}
    reasons = []
    for role, path in [key for key in new if key not in old]:
        reasons.append(f"{_role_name(role)} `{path}` added")
    for role, path in [key for key in old if key not in new]:
        reasons.append(f"{_role_name(role)} `{path}` removed")
    for key, digest in new.items():
        if key in old and old[key] != digest:
            reasons.append(f"{_role_name(key[0])} `{key[1]}` content changed")
    if not reasons and list(old) != list(new):
        reasons.append("reference images reordered")
    return reasons


def _role_name(role: str) -> str:
    return "mask" if role == "mask" else "reference image"
