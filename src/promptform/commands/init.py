"""`promptform init`: scaffold a project without touching anything that already exists."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from promptform import __version__
from promptform.core.error_handler import EXIT_OK
from promptform.core.errors import PromptformError
from promptform.core.output import Output
from promptform.manifests.manifest import schema_text

# scaffold file -> path in the new project
SCAFFOLD = {
    "promptform.toml": "promptform.toml",
    "prompts/example/sunset.yaml": "prompts/example/sunset.yaml",
    "templates/styles/house.j2": "templates/styles/house.j2",
    "gitattributes": ".gitattributes",
    "github/workflows/promptform-plan.yml": ".github/workflows/promptform-plan.yml",
    "github/workflows/promptform-apply.yml": ".github/workflows/promptform-apply.yml",
    "github/workflows/promptform-preview.yml": ".github/workflows/promptform-preview.yml",
    "github/workflows/promptform-generate.yml": ".github/workflows/promptform-generate.yml",
    "github/workflows/promptform-collect.yml": ".github/workflows/promptform-collect.yml",
    "github/actions/promptform/action.yml": ".github/actions/promptform/action.yml",
}
# The lock's shards, and the single file of a lock that apply has not converted yet.
MERGE_ATTRIBUTES = ("promptform.lock/** merge=promptform", "promptform.lock merge=promptform")
MERGE_DRIVER_COMMAND = 'git config merge.promptform.driver "promptform lock merge %O %A %B"'
SCHEMA_PATH = "schema/manifest.schema.json"
# The workflows install exactly the promptform that wrote them: a new release reaches the jobs
# holding the API key and a write token only when someone changes the pin in a reviewed commit.
VERSION_PLACEHOLDER = "@PROMPTFORM_VERSION@"


def init(directory: Path, output: Output) -> int:
    if directory.exists() and not directory.is_dir():
        raise PromptformError(f"{directory} exists and is not a directory")
    package = resources.files("promptform") / "scaffold"
    files = {
        target: (package / source)
        .read_text(encoding="utf-8")
        .replace(VERSION_PLACEHOLDER, __version__)
        for source, target in SCAFFOLD.items()
    }
    files[SCHEMA_PATH] = schema_text()
    for relative, content in files.items():
        path = directory / relative
        if path.exists():
            if relative == ".gitattributes" and _add_merge_attribute(path):
                output.info(f"updated  {relative} (lockfile merge driver)")
                continue
            output.info(f"kept     {relative} (already exists)")
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8", newline="\n")
        output.info(f"created  {relative}")
    output.info(
        "next: `promptform validate`, then `promptform plan` to see what apply would generate and "
        "what it would cost"
    )
    # Without this a first apply fails for want of a key, after the plan was shown.
    output.info(
        'no API key yet? set default_provider = "offline" in promptform.toml: plan and apply then '
        'make labelled stand-in images for free; set it back to "wisgate" and export '
        "WISGATE_API_KEY to generate for real"
    )
    output.info(f"enable the lockfile merge driver in this clone: {MERGE_DRIVER_COMMAND}")
    return EXIT_OK


def _add_merge_attribute(path: Path) -> bool:
    """Append the lockfile's merge attributes an existing .gitattributes lacks."""
    text = path.read_text(encoding="utf-8")
    present = [line.split() for line in text.splitlines()]
    missing = [line for line in MERGE_ATTRIBUTES if line.split() not in present]
    if not missing:
        return False
    separator = "" if not text or text.endswith("\n") else "\n"
    added = "".join(f"{line}\n" for line in missing)
    path.write_text(f"{text}{separator}{added}", encoding="utf-8", newline="\n")
    return True
