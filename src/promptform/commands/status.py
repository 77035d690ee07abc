"""`promptform status` and `promptform show`: what promptform.lock says was generated."""

from __future__ import annotations

import json

from promptform.core.config import Config
from promptform.core.error_handler import EXIT_OK
from promptform.core.errors import PromptformError, display_path
from promptform.core.output import Output
from promptform.engine.plan_format import format_usd
from promptform.engine.project import load_project
from promptform.manifests.addresses import matching_addresses, path_aliases
from promptform.state.lockfile import LockEntry, Lockfile, entry_json, read_lockfile


def status(config: Config, output: Output, patterns: tuple[str, ...], as_json: bool) -> int:
    lockfile = _read(config)
    chosen = _select(config, lockfile, patterns)
    if as_json:
        rows = [_status_row(address, lockfile.targets[address], config) for address in chosen]
        output.result(json.dumps(rows, indent=2, ensure_ascii=False))
        return EXIT_OK
    if not chosen:
        output.result("No lock entries yet: `promptform apply` records what it generates.")
        return EXIT_OK
    prefix = config.project.outputs_dir.strip("/")
    lines = []
    for address in chosen:
        entry = lockfile.targets[address]
        lines.append(
            f"{address}  {entry.model}  {entry.generated_at}  {format_usd(entry.cost_usd)}"
        )
        lines += [f"    {prefix}/{item.path}" for item in entry.outputs]
    lines.append(f"{len(chosen)} of {len(lockfile.targets)} lock entries shown.")
    output.result("\n".join(lines))
    return EXIT_OK


def show(config: Config, output: Output, address: str, as_json: bool) -> int:
    lockfile = _read(config)
    if address not in lockfile.targets:
        address = _one_entry(config, lockfile, address)
    entry = lockfile.targets[address]
    if as_json:
        data = {"address": address, **entry_json(entry)}
        output.result(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False))
        return EXIT_OK
    output.result(_describe(address, entry, config))
    return EXIT_OK


def _read(config: Config) -> Lockfile:
    return read_lockfile(config.lockfile, display_path(config.lockfile, config.root))


def _select(config: Config, lockfile: Lockfile, patterns: tuple[str, ...]) -> list[str]:
    if not patterns:
        return sorted(lockfile.targets)
    return matching_addresses(
        sorted(lockfile.targets),
        patterns,
        lambda pattern, suggestion: (
            f"no lock entry matches '{pattern}'; "
            + (f"did you mean '{suggestion}'?" if suggestion else "`promptform status` lists them")
        ),
        _aliases(config, lockfile),
    )


def _one_entry(config: Config, lockfile: Lockfile, pattern: str) -> str:
    """The one lock entry `pattern` selects (axes in any order, an output path, a glob)."""
    chosen = matching_addresses(
        sorted(lockfile.targets),
        [pattern],
        lambda pattern, suggestion: (
            f"no lock entry for '{pattern}'; "
            + (f"did you mean '{suggestion}'?" if suggestion else "`promptform status` lists them")
        ),
        _aliases(config, lockfile),
    )
    if len(chosen) > 1:
        shown = ", ".join(f"'{address}'" for address in chosen[:3])
        more = f" and {len(chosen) - 3} more" if len(chosen) > 3 else ""
        raise PromptformError(
            f"'{pattern}' matches {len(chosen)} lock entries ({shown}{more}); show one of them, "
            f"or list them all with `promptform status '{pattern}'`"
        )
    return chosen[0]


def _aliases(config: Config, lockfile: Lockfile) -> dict[str, tuple[str, ...]]:
    """Each entry's recorded outputs, and the manifest that declares it now (if the manifests load:
    the lockfile alone must stay readable while a manifest is being fixed)."""
    prompts_dir, outputs_dir = config.project.prompts_dir, config.project.outputs_dir
    try:
        declared = {target.address: target.file for target in load_project(config).targets}
    except PromptformError:
        declared = {}
    return {
        address: path_aliases(
            declared.get(address),
            [item.path for item in entry.outputs],
            prompts_dir,
            outputs_dir,
        )
        for address, entry in lockfile.targets.items()
    }


def _status_row(address: str, entry: LockEntry, config: Config) -> dict[str, object]:
    prefix = config.project.outputs_dir.strip("/")
    return {
        "address": address,
        "outputs": [f"{prefix}/{output.path}" for output in entry.outputs],
        "model": entry.model,
        "generated_at": entry.generated_at,
        "cost_usd": entry.cost_usd,
    }


def _describe(address: str, entry: LockEntry, config: Config) -> str:
    prefix = config.project.outputs_dir.strip("/")
    lines = [
        f"address:        {address}",
        f"fingerprint:    {entry.fingerprint}",
        f"model:          {entry.model}",
        f"provider:       {entry.provider.name} ({entry.provider.kind})",
        f"endpoint:       {entry.endpoint}",
        f"generated_at:   {entry.generated_at}",
        f"source_commit:  {entry.source_commit or '-'}",
        f"cost:           {format_usd(entry.cost_usd)}",
        "outputs:",
    ]
    for item in entry.outputs:
        dimensions = f" {item.width}x{item.height}" if item.width and item.height else ""
        lines.append(
            f"  {prefix}/{item.path}  {item.format}{dimensions}  {item.bytes:,} bytes  "
            f"sha256:{item.sha256}"
        )
    if entry.inputs:
        lines.append("inputs:")
        lines += [f"  {item.role}: {item.path}  sha256:{item.sha256}" for item in entry.inputs]
    lines.append("request:")
    request = json.dumps(entry.request, indent=2, sort_keys=True, ensure_ascii=False)
    lines += [f"  {line}" for line in request.split("\n")]
    if entry.revised_prompt:
        lines += ["revised_prompt:", *[f"  {line}" for line in entry.revised_prompt.split("\n")]]
    if entry.usage:
        lines.append("usage:          " + json.dumps(entry.usage, sort_keys=True))
    return "\n".join(lines)
