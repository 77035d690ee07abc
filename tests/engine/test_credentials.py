"""credentials.py: which keys a plan's generations need, checked without building a provider."""

from __future__ import annotations

import pytest

from promptform.core.config import load_config
from promptform.core.errors import PromptformError
from promptform.engine.credentials import key_notes, missing_keys, require_keys
from promptform.engine.plan import compute_plan
from promptform.engine.plan_model import PlanOptions
from tests.support.files import MakeProject
from tests.support.plans import apply_everything

GATEWAY = """
[promptform]
default_provider = "gateway"

[providers.gateway]
kind = "openai"
base_url = "https://gateway.test/v1"
api_key_env = "GATEWAY_KEY"

[providers.open]
kind = "openai"
base_url = "http://127.0.0.1:9/v1"
"""

FILES: dict[str, str | bytes] = {
    "promptform.toml": GATEWAY,
    "prompts/a.yaml": "prompt: A fox.\n",
    "prompts/b.yaml": "prompt: An owl.\n",
    "prompts/c.yaml": "prompt: A hare.\nprovider: open\n",
}


def test_only_providers_the_plan_sends_to_need_their_key(make_project: MakeProject) -> None:
    config = load_config(make_project(FILES))
    plan = compute_plan(config, PlanOptions())[2]

    (missing,) = missing_keys(config, plan, {})

    assert (missing.provider, missing.variable, missing.targets) == ("gateway", "GATEWAY_KEY", 2)
    assert missing_keys(config, plan, {"GATEWAY_KEY": "sk-test-0123456789"}) == []


def test_a_key_that_cannot_be_a_header_value_is_named_without_its_value(
    make_project: MakeProject,
) -> None:
    config = load_config(make_project(FILES))
    plan = compute_plan(config, PlanOptions())[2]

    with pytest.raises(PromptformError) as caught:
        require_keys(config, plan, {"GATEWAY_KEY": "sk-secret with space"})

    assert "GATEWAY_KEY contains spaces" in caught.value.message
    assert "sk-secret" not in caught.value.message


def test_a_plan_without_generations_needs_no_key(make_project: MakeProject) -> None:
    root = make_project(FILES)
    apply_everything(root)
    config = load_config(root)
    plan = compute_plan(config, PlanOptions())[2]

    require_keys(config, plan, {})
    assert key_notes(config, plan, {}) == []


def test_the_offline_provider_needs_no_key(make_project: MakeProject) -> None:
    config = load_config(make_project(FILES))
    plan = compute_plan(config, PlanOptions(provider="offline"))[2]

    assert missing_keys(config, plan, {}) == []
