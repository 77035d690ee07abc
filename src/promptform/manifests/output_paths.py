"""Where a target's images go: default names from the name and cell, or the rendered `output:`.

Paths are relative to outputs_dir; `n` images get an index each, and the extension follows
output_format.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from promptform.core.errors import Location, ManifestError
from promptform.core.paths import relative_path_problem
from promptform.manifests.matrix import Cell, value_text

if TYPE_CHECKING:
    # Only a type here: importing render.py imports Jinja, which a plan answered by the render
    # cache never needs.
    from promptform.manifests.render import Renderer

EXTENSIONS = {"png": ("png",), "jpeg": ("jpg", "jpeg"), "webp": ("webp",)}

_SLUG_STRIP = re.compile(r"[^a-z0-9]+")


def slug(value: object) -> str:
    """Lower-case ASCII words joined by '-': 'Café Racer!' -> 'cafe-racer'."""
    text = unicodedata.normalize("NFKD", str(value)).encode("ascii", "ignore").decode()
    return _SLUG_STRIP.sub("-", text.lower()).strip("-")


def default_paths(name: str, cell: Cell, count: int, output_format: str) -> list[str]:
    """`<name>-<cell values>-<index>.<ext>`, slugged: every image carries an index, so going
    from n=1 to n=2 renames nothing."""
    ext = EXTENSIONS[output_format][0]
    stem = "/".join(slug(part) or "_" for part in name.split("/"))
    cell_part = "-".join(slug(value_text(value)) for value in cell.values())
    base = f"{stem}-{cell_part}" if cell_part else stem
    return [f"{base}-{index}.{ext}" for index in range(1, count + 1)]


def templated_paths(
    renderer: Renderer,
    template: str,
    variables: Mapping[str, Any],
    count: int,
    output_format: str,
    origin: Location,
    where: Location,
) -> list[str]:
    """The rendered `output:` template, once per image, with index and extension added."""
    ext = EXTENSIONS[output_format][0]
    paths = [
        renderer.render(template, {**variables, "index": index, "ext": ext}, origin).strip()
        for index in range(1, count + 1)
    ]
    for path in paths:
        # Checked before index and extension are added, which need a file name to work on.
        problem = relative_path_problem(path)
        if problem:
            raise ManifestError(f"output path '{path}' {problem}", where)
    if count > 1 and len(set(paths)) == 1:
        paths = [_with_index(path, index) for index, path in enumerate(paths, 1)]
    elif len(set(paths)) != count:
        raise ManifestError(
            f"output gives {len(set(paths))} different paths for {count} images; "
            "use {{ index }} in it",
            where,
        )
    return [_with_extension(path, output_format, where) for path in paths]


def _split_suffix(path: str) -> tuple[str, str]:
    """(path without suffix, suffix with its dot) as PurePosixPath names them, without parsing.

    String work rather than pathlib: this runs once per output on every plan.
    """
    name_start = path.rfind("/") + 1
    dot = path.rfind(".")
    if dot <= name_start or dot == len(path) - 1:  # no dot, a leading dot, or a trailing dot
        return path, ""
    return path[:dot], path[dot:]


def _with_index(path: str, index: int) -> str:
    stem, suffix = _split_suffix(path)
    return f"{stem}-{index}{suffix}"


def _with_extension(path: str, output_format: str, where: Location) -> str:
    suffix = _split_suffix(path)[1].lower().lstrip(".")
    if not suffix:
        return f"{path}.{EXTENSIONS[output_format][0]}"
    if suffix not in EXTENSIONS[output_format]:
        raise ManifestError(
            f"output '{path}' ends in .{suffix} but output_format is {output_format}; "
            f"use .{EXTENSIONS[output_format][0]}",
            where,
        )
    return path
