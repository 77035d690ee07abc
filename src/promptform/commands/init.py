"""`promptform init`: scaffold a project without touching anything that already exists."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from promptform.error_handler import EXIT_OK
from promptform.errors import PromptformError
from promptform.manifest import schema_text
from promptform.output import Output

# scaffold file -> path in the new project
SCAFFOLD = {
    "promptform.toml": "promptform.toml",
    "prompts/example.yaml": "prompts/example.yaml",
    "templates/styles/house.j2": "templates/styles/house.j2",
    "gitattributes": ".gitattributes",
}
SCHEMA_PATH = "schema/manifest.schema.json"


def init(directory: Path, output: Output) -> int:
    if directory.exists() and not directory.is_dir():
        raise PromptformError(f"{directory} exists and is not a directory")
    package = resources.files("promptform") / "scaffold"
    files = {
        target: (package / source).read_text(encoding="utf-8")
        for source, target in SCAFFOLD.items()
    }
    files[SCHEMA_PATH] = schema_text()
    for relative, content in files.items():
        path = directory / relative
        if path.exists():
            output.info(f"kept     {relative} (already exists)")
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8", newline="\n")
        output.info(f"created  {relative}")
    output.info("next: `promptform validate`, then `promptform render` to see the requests")
    return EXIT_OK
