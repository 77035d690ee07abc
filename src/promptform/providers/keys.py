"""API keys from the environment: whether one is usable, without building a provider.

Kept apart from the HTTP provider so that plan and apply can check keys without importing httpx.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

KEY_CHARS = re.compile(r"^[\x21-\x7e]+$")


def api_key_problem(env: str | None, environ: Mapping[str, str]) -> str | None:
    """What is wrong with the key in `env` (`X is not set`, ...), or None when it is usable.

    The same checks as building the provider, without building it, so a caller can refuse before
    any work. The value itself is never part of the answer.
    """
    if env is None:
        return None
    key = environ.get(env, "").strip()
    if not key:
        return f"{env} is not set"
    if not KEY_CHARS.match(key):
        return f"{env} contains spaces or characters not allowed in an HTTP header"
    return None
