"""A target as the request it becomes: URL, content type, fields and files, for `render` and plans."""

from __future__ import annotations

from typing import Any

from promptform.core.config import Config
from promptform.manifests.targets import EDITS, Target


def describe_request(target: Target, config: Config) -> dict[str, Any]:
    _, provider = config.provider(target.provider)
    base = (provider.base_url or "").rstrip("/") if provider.kind == "openai" else "offline:"
    multipart = target.endpoint == EDITS
    files = [
        {
            "field": "image[]" if item.role == "image" else "mask",
            "path": item.path,
            "sha256": item.sha256,
        }
        for item in target.inputs
    ]
    return {
        "address": target.address,
        "source": str(target.location()),
        "provider": target.provider,
        "url": f"{base}/{target.endpoint}",
        "content_type": "multipart/form-data" if multipart else "application/json",
        "body": target.body,
        "files": files,
        "outputs": [f"{config.project.outputs_dir}/{path}" for path in target.outputs],
        "fingerprint": target.fingerprint,
    }
