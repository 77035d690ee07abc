"""fingerprint.py: versioned sha256 of canonical JSON of what changes the pixels."""

from __future__ import annotations

import hashlib
import unicodedata
from pathlib import Path

from promptform.core.fingerprint import FINGERPRINT_PREFIX, canonical_json, fingerprint, hash_file

BODY = {"model": "gpt-image-2", "prompt": "A beautiful sunset", "n": 1, "size": "1024x1024"}


def test_fingerprint_has_the_version_prefix_and_a_sha256() -> None:
    value = fingerprint("openai", "images/generations", BODY, [])

    assert value.startswith("sha256:v1:")
    assert len(value.removeprefix(FINGERPRINT_PREFIX)) == 64


def test_fingerprint_is_a_known_value_so_a_change_of_canonical_form_is_caught() -> None:
    payload = (
        '{"body":{"model":"gpt-image-2","n":1,"prompt":"A beautiful sunset","size":"1024x1024"},'
        '"endpoint":"images/generations","inputs":[],"provider_kind":"openai"}'
    )

    assert fingerprint("openai", "images/generations", BODY, []) == (
        FINGERPRINT_PREFIX + hashlib.sha256(payload.encode()).hexdigest()
    )


def test_key_order_of_the_body_does_not_matter() -> None:
    reordered = dict(reversed(list(BODY.items())))

    assert fingerprint("openai", "images/generations", reordered, []) == fingerprint(
        "openai", "images/generations", BODY, []
    )


def test_decomposed_and_composed_unicode_give_one_fingerprint() -> None:
    composed = {**BODY, "prompt": unicodedata.normalize("NFC", "café crème")}
    decomposed = {**BODY, "prompt": unicodedata.normalize("NFD", "café crème")}

    assert composed["prompt"] != decomposed["prompt"]
    assert fingerprint("openai", "e", composed, []) == fingerprint("openai", "e", decomposed, [])


def test_every_parameter_changes_the_fingerprint() -> None:
    base = fingerprint("openai", "images/generations", BODY, [])
    variants = [
        fingerprint("offline", "images/generations", BODY, []),
        fingerprint("openai", "images/edits", BODY, []),
        fingerprint("openai", "images/generations", {**BODY, "prompt": "A beautiful sunrise"}, []),
        fingerprint("openai", "images/generations", {**BODY, "size": "1536x1024"}, []),
        fingerprint("openai", "images/generations", {**BODY, "quality": "high"}, []),
        fingerprint("openai", "images/generations", BODY, [("image", "0" * 64)]),
    ]

    assert base not in variants
    assert len(set(variants)) == len(variants)


def test_reference_image_content_and_role_change_the_fingerprint() -> None:
    image = fingerprint("openai", "images/edits", BODY, [("image", "a" * 64)])

    assert image != fingerprint("openai", "images/edits", BODY, [("image", "b" * 64)])
    assert image != fingerprint("openai", "images/edits", BODY, [("mask", "a" * 64)])


def test_canonical_json_is_compact_sorted_and_keeps_non_ascii() -> None:
    assert canonical_json({"b": 1, "a": ["é", 2]}) == '{"a":["é",2],"b":1}'.encode()


def test_hash_file_is_the_sha256_of_the_content(tmp_path: Path) -> None:
    path = tmp_path / "ref.png"
    path.write_bytes(b"\x89PNG" + bytes(3 << 20))

    assert hash_file(path) == hashlib.sha256(path.read_bytes()).hexdigest()
