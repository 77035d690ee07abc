"""Whether the API keys a plan's generations need are in the environment, checked before any work.

apply checks before it shows the plan or asks for confirmation, so a missing key is not found
after someone has read and approved the plan; plan, which never needs a key, only notes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from promptform.core.config import Config
from promptform.core.errors import ConfigError, ErrorGroup
from promptform.engine.plan_format import count_text
from promptform.engine.plan_model import Plan
from promptform.providers.keys import api_key_problem


@dataclass(frozen=True)
class MissingKey:
    provider: str
    variable: str  # the environment variable the provider's api_key_env names
    problem: str  # "WISGATE_API_KEY is not set", ...
    targets: int  # how many of the plan's generations need it


def missing_keys(config: Config, plan: Plan, environ: Mapping[str, str]) -> list[MissingKey]:
    """The providers the plan would send requests to whose key is unset or unusable."""
    config = config.with_provider(plan.options.provider)
    needed: dict[str, int] = {}
    for change in plan.actionable:
        if change.generates and change.target is not None:
            needed[change.target.provider] = needed.get(change.target.provider, 0) + 1
    missing = []
    for name, count in needed.items():
        provider_name, settings = config.provider(name)
        if settings.kind != "openai" or settings.api_key_env is None:
            continue
        problem = api_key_problem(settings.api_key_env, environ)
        if problem is not None:
            missing.append(MissingKey(provider_name, settings.api_key_env, problem, count))
    return missing


def require_keys(config: Config, plan: Plan, environ: Mapping[str, str]) -> None:
    """Raise, naming each provider and its key, when the plan cannot be applied for want of one."""
    problems = [
        ConfigError(
            f"{missing.problem}, and apply would send {count_text(missing.targets, 'target')} to provider "
            f"'{missing.provider}'; set it (export {missing.variable}=...) and run apply again, "
            "or make labelled stand-ins for free with `promptform apply --provider offline`"
        )
        for missing in missing_keys(config, plan, environ)
    ]
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise ErrorGroup(problems)


def key_notes(config: Config, plan: Plan, environ: Mapping[str, str]) -> list[str]:
    """One line per key that apply would need and the environment lacks."""
    return [
        f"note: {missing.problem}; `promptform apply` will need it to send "
        f"{count_text(missing.targets, 'target')} to provider '{missing.provider}'"
        for missing in missing_keys(config, plan, environ)
    ]
