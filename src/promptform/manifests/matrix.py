"""Matrix expansion: a manifest's axes, exclude and include rules, turned into cells in order."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from promptform.core.errors import Location, ManifestError
from promptform.manifests.manifest_files import Scalar

if TYPE_CHECKING:
    from promptform.manifests.manifest import LoadedManifest

Cell = dict[str, Scalar]


def cells(loaded: LoadedManifest, max_cells: int) -> Iterator[tuple[Cell, dict[str, Any]]]:
    """(axis values, extra vars) for every cell, in declared order; ({}, {}) for a plain manifest.

    A matrix of more than `max_cells` cells is refused before it is expanded.
    """
    matrix = loaded.manifest.matrix
    if matrix is None:
        yield {}, {}
        return
    axes = matrix.axes()
    where = loaded.location("matrix")
    _check_size(axes, len(matrix.include), max_cells, where)
    for axis, values in axes.items():
        if not values:
            raise ManifestError(
                f"matrix axis '{axis}' has no values", loaded.location("matrix", axis)
            )
        if len(set(map(value_text, values))) != len(values):
            raise ManifestError(
                f"matrix axis '{axis}' repeats a value", loaded.location("matrix", axis)
            )
    names = list(axes)
    expanded: list[tuple[Cell, dict[str, Any]]] = (
        [
            (dict(zip(names, combination, strict=True)), {})
            for combination in itertools.product(*axes.values())
        ]
        if names
        else []
    )
    for index, rule in enumerate(matrix.exclude):
        _check_axes(rule, names, loaded.location("matrix", "exclude", index), "exclude")
        expanded = [cell for cell in expanded if not _matches(cell[0], rule)]
    for index, entry in enumerate(matrix.include):
        entry_where = loaded.location("matrix", "include", index)
        keys = {key: value for key, value in entry.items() if key in names}
        extra = {key: value for key, value in entry.items() if key not in names}
        matching = [cell for cell in expanded if _matches(cell[0], keys)]
        if matching:
            for _, cell_vars in matching:
                cell_vars.update(extra)
        elif names and len(keys) == len(names):
            expanded.append(({name: keys[name] for name in names}, dict(extra)))
        elif not names:
            raise ManifestError("matrix include needs axes to add cells to", entry_where)
        else:
            missing = ", ".join(name for name in names if name not in keys)
            raise ManifestError(
                f"matrix include entry matches no cell; to add a cell set every axis (missing: {missing})",
                entry_where,
            )
    if not expanded:
        raise ManifestError("matrix has no cells left after exclude", where)
    yield from expanded


def _check_size(
    axes: dict[str, list[Scalar]], included: int, max_cells: int, where: Location
) -> None:
    # Multiplied with an early stop, so even a thousand axes of a thousand values cost nothing.
    product = 1
    for values in axes.values():
        product *= len(values)
        if product > max_cells:
            break
    if product + included <= max_cells:
        return
    sizes = " x ".join(f"{axis} ({len(values)})" for axis, values in axes.items())
    total = math.prod(len(values) for values in axes.values()) + included
    size = f"{total:,} cells" if total < 10**30 else "more than 10^30 cells"
    raise ManifestError(
        f"matrix {sizes} makes {size}, over the limit of {max_cells:,} per manifest; split it into "
        "several manifests or raise [limits] max_cells_per_manifest in promptform.toml",
        where,
    )


def value_text(value: Scalar) -> str:
    """How a matrix value reads in addresses, file names and comparisons."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _check_axes(rule: Cell, names: list[str], where: Location, what: str) -> None:
    unknown = [key for key in rule if key not in names]
    if unknown:
        raise ManifestError(
            f"matrix {what} names unknown axis '{unknown[0]}' (axes: {', '.join(names)})", where
        )


def _matches(cell: Cell, rule: Cell) -> bool:
    return all(
        key in cell and value_text(cell[key]) == value_text(value) for key, value in rule.items()
    )
