"""Every request promptform renders validates against the official OpenAPI schema of the endpoint."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from promptform.core.config import load_config
from promptform.engine.project import load_project
from promptform.manifests.targets import EDITS
from tests.support.cli import CliResult
from tests.support.openapi import OPENAPI_PATH

REPO = Path(__file__).resolve().parents[2]
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@cache
def validator(schema_name: str) -> jsonschema.protocols.Validator:
    document = json.loads(OPENAPI_PATH.read_text())
    schema = {
        **document["components"]["schemas"][schema_name],
        "components": document["components"],
    }
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema)


def violations(endpoint: str, body: dict[str, Any]) -> list[str]:
    if endpoint == EDITS:
        # Multipart: the image parts stand in for the binary `image` field.
        return [
            e.message
            for e in validator("CreateImageEditRequest").iter_errors({**body, "image": []})
        ]
    return [e.message for e in validator("CreateImageRequest").iter_errors(body)]


def test_the_repositorys_example_requests_validate_against_the_official_schema() -> None:
    project = load_project(load_config(REPO))
    assert project.targets
    for target in project.targets:
        assert violations(target.endpoint, target.body) == [], target.address


def test_every_parameter_a_manifest_can_set_is_a_valid_request(
    make_project: Callable[[dict[str, str | bytes]], Path],
) -> None:
    root = make_project(
        {
            "promptform.toml": "[defaults]\nmoderation = 'low'\n",
            "refs/logo.png": PNG,
            "prompts/full.yaml": """
                model: gpt-image-2
                prompt: Everything set.
                n: 3
                size: 1536x864
                quality: high
                background: opaque
                output_format: webp
                output_compression: 70
                moderation: low
                """,
            "prompts/edit.yaml": """
                prompt: Put the logo on a mug.
                images: [refs/logo.png]
                quality: medium
                background: transparent
                """,
            "prompts/dalle.yaml": "model: dall-e-3\nprompt: Old style.\nquality: hd\n",
        }
    )
    targets = {target.address: target for target in load_project(load_config(root)).targets}
    assert targets["edit"].endpoint == EDITS
    assert "moderation" not in targets["edit"].body  # the configured default is not sent to edits
    assert targets["dalle"].body["response_format"] == "b64_json"
    for target in targets.values():
        assert violations(target.endpoint, target.body) == [], target.address


def test_moderation_on_an_edit_is_refused_at_validate_time(
    make_project: Callable[[dict[str, str | bytes]], Path], run_cli: Callable[..., CliResult]
) -> None:
    root = make_project(
        {
            "refs/logo.png": PNG,
            "prompts/edit.yaml": "prompt: Logo.\nimages: [refs/logo.png]\nmoderation: low\n",
        }
    )
    result = run_cli("-C", root, "validate")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "error: prompts/edit.yaml:3:1: image edits (images:) take no moderation setting; remove it"
    )


@pytest.mark.parametrize("schema_name", ["CreateImageRequest", "CreateImageEditRequest"])
def test_the_schema_check_itself_rejects_an_invalid_body(schema_name: str) -> None:
    assert list(validator(schema_name).iter_errors({"prompt": "x", "n": 11, "image": []}))
