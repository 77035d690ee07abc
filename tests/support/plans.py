"""Builders for plan tests: lock entries as apply would write them, without calling any API."""

from __future__ import annotations

import hashlib
from pathlib import Path

from promptform.core.config import Config, load_config
from promptform.engine.plan import lock_shards
from promptform.engine.project import Project, load_project
from promptform.manifests.targets import Target
from promptform.state.lockfile import (
    LockedInput,
    LockedOutput,
    LockEntry,
    Lockfile,
    ProviderRef,
    write_lockfile,
)

GENERATED_AT = "2025-01-01T00:00:00Z"


def image_bytes(address: str, index: int = 0) -> bytes:
    """Distinct, deterministic stand-in bytes for an output (the plan never decodes images)."""
    return b"\x89PNG\r\n\x1a\n" + f"{address}#{index}".encode() * 8


def lock_entry(target: Target, config: Config, write_outputs: bool = True) -> LockEntry:
    """The entry apply would record for `target`, with its output files written to disk."""
    outputs = []
    for index, path in enumerate(target.outputs):
        data = image_bytes(target.address, index)
        if write_outputs:
            full = config.outputs_dir / path
            full.parent.mkdir(parents=True, exist_ok=True)
            full.write_bytes(data)
        outputs.append(
            LockedOutput(
                path=path,
                sha256=hashlib.sha256(data).hexdigest(),
                bytes=len(data),
                format=target.output_format,
                width=1024,
                height=1024,
            )
        )
    return LockEntry(
        fingerprint=target.fingerprint,
        request=target.body,
        endpoint=target.endpoint,
        inputs=[
            LockedInput(role=item.role, path=item.path, sha256=item.sha256 or "")
            for item in target.inputs
        ],
        outputs=outputs,
        provider=ProviderRef(kind=target.provider_kind, name=target.provider),
        model=target.model,
        generated_at=GENERATED_AT,
        cost_usd=0.053,
    )


def apply_everything(root: Path) -> tuple[Project, Lockfile]:
    """Lock every target of the project at `root` as if apply had just generated it all.

    Upstream targets go first, so downstream fingerprints see their upstream's output bytes.
    """
    config = load_config(root)
    lockfile = Lockfile()
    for _ in range(3):  # each round makes one more level of the dependency graph current
        project = load_project(config)
        lockfile = Lockfile(
            targets={target.address: lock_entry(target, config) for target in project.targets}
        )
    write_lockfile(config.lockfile, lockfile, lock_shards(project))
    return load_project(config), lockfile


# An OpenAI-kind provider that plans never contact: prices apply to it (offline previews are free).
CONFIG = """
[promptform]
default_provider = "api"

[providers.api]
kind = "openai"
base_url = "http://127.0.0.1:9/v1"

[defaults]
model = "gpt-image-2"
size = "1024x1024"
quality = "medium"
"""

BEFORE: dict[str, str | bytes] = {
    "promptform.toml": CONFIG,
    "templates/styles/house.j2": "Soft morning light, muted palette.\n",
    "prompts/marketing.yaml": """
        name: marketing/hero
        prompt: |
          {% include "styles/house.j2" %}
          A red kayak on a calm lake.
        ---
        name: marketing/hero-night
        images: [generated/marketing/hero-1.png]
        prompt: The same scene at night, lanterns on the shore.
        ---
        name: marketing/banner
        prompt: A wide banner of rolling hills.
        ---
        name: marketing/logo
        output: "marketing/logo.png"
        prompt: A minimal paper boat logo.
        """,
    "prompts/brand/mascot.yaml": """
        prompt: A friendly otter mascot waving.
        """,
    "prompts/misc.yaml": """
        name: misc/icon
        quality: low
        prompt: A small compass icon.
        ---
        name: misc/badge
        quality: low
        prompt: A round badge with a star.
        ---
        name: misc/photo
        quality: high
        prompt: A product photo of a water bottle.
        """,
    "prompts/old/retired.yaml": """
        prompt: A retired campaign image.
        """,
}

AFTER_EDITS: dict[str, str | bytes] = {
    # A shared template edit: every prompt that includes it is replanned.
    "templates/styles/house.j2": "Soft evening light, warm palette.\n",
    "prompts/marketing.yaml": """
        name: marketing/hero
        prompt: |
          {% include "styles/house.j2" %}
          A red kayak on a calm lake.
        ---
        name: marketing/hero-night
        images: [generated/marketing/hero-1.png]
        prompt: The same scene at night, lanterns on the shore.
        ---
        name: marketing/banner
        size: 1536x1024
        prompt: A wide banner of rolling hills.
        ---
        name: marketing/logo
        output: "brand/logo.png"
        prompt: A minimal paper boat logo.
        ---
        name: catalog/poster
        quality: high
        prompt: |
          A travel poster of a lighthouse.
          Bold flat colours.
        """,
    # Renamed manifest, same request: a move, not a regeneration.
    "prompts/brand/mascot-v2.yaml": """
        prompt: A friendly otter mascot waving.
        """,
}


def build_showcase(root: Path) -> Config:
    """A repository whose plan has every action, every drift kind and an upstream dependency."""
    from tests.support.files import write_files

    write_files(root, BEFORE)
    apply_everything(root)
    (root / "prompts/old/retired.yaml").unlink()
    (root / "prompts/brand/mascot.yaml").unlink()
    write_files(root, AFTER_EDITS)
    outputs = root / "generated"
    (outputs / "misc/icon-1.png").unlink()
    (outputs / "misc/badge-1.png").write_bytes(b"\x89PNG edited by hand, same length?" * 3)
    (outputs / "misc/photo-1.png").write_bytes(
        b"version https://git-lfs.github.com/spec/v1\n"
        b"oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
        b"size 12345\n"
    )
    return load_config(root)
