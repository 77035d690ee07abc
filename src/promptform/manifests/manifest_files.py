"""Where manifests are: finding manifest files and naming their targets, without parsing any.

Apart from manifest.py so that a plan answered by the render cache finds its files without
importing the manifest models (and pydantic with them).
"""

from __future__ import annotations

from pathlib import Path

Scalar = str | int | float | bool  # a matrix value or a variable


def find_manifest_files(prompts_dir: Path) -> list[Path]:
    """Every *.yaml / *.yml under prompts_dir, in a stable order."""
    if not prompts_dir.is_dir():
        return []
    found = [
        path
        for path in prompts_dir.rglob("*")
        if path.suffix in (".yaml", ".yml") and path.is_file()
    ]
    return sorted(found, key=lambda path: path.relative_to(prompts_dir).as_posix())


def manifest_stem(path: Path, prompts_dir: Path) -> str:
    """The default name of a manifest file's targets: its path under prompts_dir, no extension."""
    return path.relative_to(prompts_dir).with_suffix("").as_posix()
