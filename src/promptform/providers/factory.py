"""Building the provider a config names: the one place that maps a provider kind to its class."""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from promptform.core.config import ProviderSettings
from promptform.providers.base import Provider
from promptform.providers.offline import OfflineProvider
from promptform.providers.openai import OpenAIProvider


def make_provider(
    name: str,
    settings: ProviderSettings,
    client: httpx.AsyncClient,
    environ: Mapping[str, str],
) -> Provider:
    """The provider `name`, sharing `client` (which stays the caller's to close).

    Raises ConfigError for an unusable base_url and ProviderError for a missing or malformed API key,
    both before any network call, so a run fails once instead of once per target.
    """
    if settings.kind == "offline":
        return OfflineProvider(name)
    return OpenAIProvider(name, settings, client, environ)
