"""`--base-config REF`: the settings that decide where the API key goes, and how much may be spent,
come from the configuration at git ref REF (the base branch), not from the working tree.

A workflow that generates images for a pull request runs with the key while the pull request's
files are checked out: its promptform.toml is untrusted. Rather than ignore it (a reviewer would read
one config while another is used), the run refuses when it differs from REF in any of:

- `[providers.*]`, every field of every provider, built-in ones included: kind, base_url,
  api_key_env and auth_header decide where the key is sent; timeout_s, max_retries and concurrency
  decide how often a paid request may be sent again, and how fast.
- `[pricing]`: prices decide what a cost budget lets through; a lowered price would let a costlier
  pull request pass. Comparing price tables against built-in prices per size and quality to allow
  raises is not worth the risk, so any change is refused.
- `[budget]` and `[limits]`: may be lowered (or set where REF has none), never raised or removed.

Everything else (paths, defaults, which of REF's providers is the default) comes from the working
tree.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import PurePosixPath

from promptform.core.config import (
    CONFIG_FILE,
    PYPROJECT_FILE,
    Config,
    config_from_text,
    config_line,
)
from promptform.core.errors import ConfigError, PromptformError
from promptform.gitops.gitrepo import blob_at, repo_path, resolve_commit

# Provider fields that decide where requests go and which key they carry.
KEY_ROUTING_FIELDS = ("kind", "base_url", "api_key_env", "auth_header")
REVIEW_HINT = "change them in their own reviewed pull request"


@dataclass(frozen=True)
class BaseConfig:
    ref: str  # as given, for messages
    commit: str
    config: Config  # the configuration at `commit`


class BaseConfigError(ConfigError):
    """The working tree's configuration differs from the base's where it must not."""


def pin_to_base(config: Config, ref: str) -> BaseConfig:
    """The configuration at `ref`, after checking that `config` changes none of the settings it
    must take from there; refuses (before any request) naming the first one that differs."""
    base = load_base_config(config, ref)
    check_against_base(config, base)
    return base


def load_base_config(config: Config, ref: str) -> BaseConfig:
    try:
        commit = resolve_commit(config.root, ref)
    except PromptformError as exc:
        raise PromptformError(f"--base-config {ref}: {exc.message}") from None
    for path in _candidates(config):
        data = blob_at(config.root, commit, path)
        if data is None:
            continue
        shown = f"{path} at {ref}"
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigError(f"{shown} is not valid UTF-8") from None
        found = config_from_text(text, PurePosixPath(path).name, shown, config.root)
        if found is not None:
            return BaseConfig(ref, commit, found)
    if config.source is not None:
        raise ConfigError(
            f"--base-config {ref}: there is no promptform configuration at {ref} "
            f"(looked for {' and '.join(_candidates(config))}) while this checkout has "
            f"{config.source.name}; add the configuration to {ref} in its own reviewed pull request "
            "first, or pass the ref that has it"
        )
    # Neither has a config file: both are the built-in configuration.
    return BaseConfig(ref, commit, config_from_text("", CONFIG_FILE, ref, config.root) or config)


def _candidates(config: Config) -> list[str]:
    """Repository paths the base's config file may have, in the order `find_config` prefers."""
    directory = PurePosixPath(repo_path(config.root, config.root))
    if config.source is not None and config.source.name not in (CONFIG_FILE, PYPROJECT_FILE):
        return [repo_path(config.root, config.source)]  # --config FILE: the same file at REF
    return [(directory / name).as_posix() for name in (CONFIG_FILE, PYPROJECT_FILE)]


def check_against_base(config: Config, base: BaseConfig) -> None:
    for check in (_providers_problem, _pricing_problem, _ceilings_problem):
        problem = check(config, base)
        if problem is not None:
            raise problem


def _refusal(config: Config, keys: tuple[str, ...], what: str, why: str) -> BaseConfigError:
    return BaseConfigError(
        f"{what}: with --base-config, {why}; {REVIEW_HINT}", config_line(config, *keys)
    )


def _providers_problem(config: Config, base: BaseConfig) -> BaseConfigError | None:
    here, there, ref = config.providers, base.config.providers, base.ref
    routing = "settings that decide where the API key goes must come from the base branch"
    for name in sorted(here.keys() | there.keys()):
        if name not in there:
            what = f"[providers.{name}] is configured here but not at {ref}"
            return _refusal(config, ("providers", name), what, routing)
        if name not in here:
            what = f"[providers.{name}] is configured at {ref} but not here"
            return _refusal(config, (), what, routing)
        ours, theirs = asdict(here[name]), asdict(there[name])
        for field in [*KEY_ROUTING_FIELDS, *sorted(ours.keys() - set(KEY_ROUTING_FIELDS))]:
            if ours[field] != theirs[field]:
                what = (
                    f"[providers.{name}] {field} is {_shown(ours[field])} here but "
                    f"{_shown(theirs[field])} at {ref}"
                )
                why = (
                    routing
                    if field in KEY_ROUTING_FIELDS
                    else "provider settings, which decide how often and how fast paid requests "
                    "are sent, must come from the base branch"
                )
                return _refusal(config, ("providers", name, field), what, why)
    return None


def _pricing_problem(config: Config, base: BaseConfig) -> BaseConfigError | None:
    here, there, ref = config.pricing, base.config.pricing, base.ref
    why = (
        "prices must come from the base branch: they decide what a cost budget lets through, "
        "and a lowered price would let a costlier change pass"
    )
    for model in sorted(here.keys() | there.keys()):
        ours, theirs = here.get(model, {}), there.get(model, {})
        for quality in sorted(ours.keys() | theirs.keys()):
            if ours.get(quality) != theirs.get(quality):
                what = (
                    f'[pricing."{model}"] {quality} is {_shown(ours.get(quality))} here but '
                    f"{_shown(theirs.get(quality))} at {ref}"
                )
                return _refusal(config, ("pricing", model, quality), what, why)
    return None


def _ceilings_problem(config: Config, base: BaseConfig) -> BaseConfigError | None:
    """A budget or limit raised or removed; lowering one (or setting one REF lacks) is allowed."""
    why = "budgets and limits may be lowered here but not raised or removed"
    tables = (
        ("budget", asdict(config.budget), asdict(base.config.budget)),
        ("limits", asdict(config.limits), asdict(base.config.limits)),
    )
    for table, ours, theirs in tables:
        for key, ceiling in theirs.items():
            value = ours[key]
            if ceiling is not None and (value is None or value > ceiling):
                what = (
                    f"[{table}] {key} is {_shown(value)} here but {_shown(ceiling)} at {base.ref}"
                )
                return _refusal(config, (table, key), what, why)
    return None


def _shown(value: object) -> str:
    return "not set" if value is None else str(value)
