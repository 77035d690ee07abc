"""The JSON body of a target's request: the manifest's values over the configured defaults."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from promptform.core.config import Defaults
from promptform.core.model_rules import KNOWN_MODELS, normal_size

if TYPE_CHECKING:
    from promptform.manifests.manifest import Manifest


def request_body(
    manifest: Manifest, defaults: Defaults, model: str, prompt: str, edit: bool
) -> dict[str, Any]:
    """The JSON parameters of the request, in a fixed order: the manifest's value, else the default.

    Edits take no `moderation`, so a configured default is not sent with them.
    """
    rules = KNOWN_MODELS.get(model)
    gpt_image = rules is None or rules.gpt_image_options
    body: dict[str, Any] = {"model": model, "prompt": prompt, "n": manifest.n or defaults.n}
    for key in ("size", "quality"):
        value = getattr(manifest, key) or getattr(defaults, key)
        if value is not None:
            body[key] = normal_size(value) if key == "size" else value
    for key in ("background", "output_format", "output_compression", "moderation"):
        explicit = getattr(manifest, key)
        inherit = gpt_image and not (edit and key == "moderation")
        value = explicit if explicit is not None else (getattr(defaults, key) if inherit else None)
        if value is not None:
            body[key] = value
    if rules is not None and not rules.gpt_image_options:
        body["response_format"] = "b64_json"
    return body
