"""Fingerprints: what identifies the pixels a request will produce.

sha256 over canonical JSON (sorted keys, compact, NFC strings) of provider kind, endpoint, model, rendered
prompt, every API parameter and the sha256 of every input image, prefixed with a version so a future
change of the canonical form is detectable rather than silently replanning everything.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import Any

FINGERPRINT_PREFIX = "sha256:v1:"


def canonical_json(value: Any) -> bytes:
    return json.dumps(
        _normalized(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")


def fingerprint(
    provider_kind: str,
    endpoint: str,
    body: dict[str, Any],
    input_hashes: Iterable[tuple[str, str]],
) -> str:
    """`input_hashes` are (role, sha256) pairs of reference images and mask, in request order."""
    payload = {
        "provider_kind": provider_kind,
        "endpoint": endpoint,
        "body": body,
        "inputs": [{"role": role, "sha256": digest} for role, digest in input_hashes],
    }
    return FINGERPRINT_PREFIX + hashlib.sha256(canonical_json(payload)).hexdigest()


def hash_file(path: Path) -> str:
    """sha256 of a file's content, read in chunks so large images are never held whole."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _normalized(value: Any) -> Any:
    if isinstance(value, str):
        return unicodedata.normalize("NFC", value)
    if isinstance(value, dict):
        return {_normalized(key): _normalized(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_normalized(item) for item in value]
    return value
