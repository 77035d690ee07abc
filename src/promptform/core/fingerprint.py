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
    # NFC over the whole text equals NFC of every string in it: JSON's own characters (quotes,
    # brackets, ASCII keys) never compose with a neighbour, and it is one C call instead of a walk.
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return unicodedata.normalize("NFC", text).encode("utf-8")


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
