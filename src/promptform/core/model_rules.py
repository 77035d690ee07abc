"""What each image model accepts, from the official OpenAPI description of the images endpoints.

Checked at validate time so a bad size or quality fails in review, not after paying for a request.
Unknown models pass with a warning: gateways add models faster than any list.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

MAX_PROMPT_GPT_IMAGE = 32_000
# ASCII digits only, bounded (int() refuses over 4,300 digits), and no trailing newline (`$` allows one).
_SIZE = re.compile(r"^([0-9]{1,9})x([0-9]{1,9})\Z")
# How people write sizes: `1024X1024`, `1536 x 1024`, `1024×1536` (the multiplication sign).
_LOOSE_SIZE = re.compile(r"^\s*([0-9]{1,9})\s*[xX\u00d7]\s*([0-9]{1,9})\s*\Z")
_GPT_IMAGE_STANDARD_SIZES = ("auto", "1024x1024", "1536x1024", "1024x1536")
# gpt-image-2's flexible sizes: sides divisible by 16, at most 3840 by 2160, ratio within 3:1.
_SIDE_STEP, _LONG_MAX, _SHORT_MAX, _RATIO_MAX = 16, 3840, 2160, 3


@dataclass(frozen=True)
class ModelRules:
    max_prompt: int
    qualities: tuple[str, ...]
    max_n: int = 10
    max_images: int = 16
    fixed_sizes: tuple[str, ...] | None = None
    flexible_sizes: bool = False
    gpt_image_options: bool = True
    edits: bool = True


_GPT_IMAGE = ModelRules(
    max_prompt=MAX_PROMPT_GPT_IMAGE,
    qualities=("low", "medium", "high", "auto"),
    fixed_sizes=_GPT_IMAGE_STANDARD_SIZES,
)
_GPT_IMAGE_2 = ModelRules(
    max_prompt=MAX_PROMPT_GPT_IMAGE,
    qualities=("low", "medium", "high", "auto"),
    flexible_sizes=True,
)

KNOWN_MODELS: dict[str, ModelRules] = {
    "gpt-image-2": _GPT_IMAGE_2,
    "gpt-image-2-2026-04-21": _GPT_IMAGE_2,
    "gpt-image-1.5": _GPT_IMAGE,
    "gpt-image-1": _GPT_IMAGE,
    "gpt-image-1-mini": _GPT_IMAGE,
    "dall-e-3": ModelRules(
        max_prompt=4000,
        qualities=("standard", "hd"),
        max_n=1,
        fixed_sizes=("1024x1024", "1792x1024", "1024x1792"),
        gpt_image_options=False,
        edits=False,
    ),
    "dall-e-2": ModelRules(
        max_prompt=1000,
        qualities=("standard",),
        max_images=1,
        fixed_sizes=("256x256", "512x512", "1024x1024"),
        gpt_image_options=False,
    ),
}

GPT_IMAGE_ONLY = ("background", "output_format", "output_compression", "moderation")


@dataclass(frozen=True)
class Finding:
    """A rule broken by a request: `field` is the manifest field to point at."""

    field: str
    message: str
    warning: bool = False


def check_request(model: str, params: dict[str, Any], images: int, has_mask: bool) -> list[Finding]:
    """Everything wrong with a rendered request for `model` (empty when it is fine)."""
    rules = KNOWN_MODELS.get(model)
    findings: list[Finding] = []
    if images and params.get("moderation") is not None:
        findings.append(
            Finding("moderation", "image edits (images:) take no moderation setting; remove it")
        )
    prompt: str = params["prompt"]
    if rules is None:
        findings.append(
            Finding(
                "model",
                f"unknown model '{model}': sent as is, without per-model checks "
                f"(known: {', '.join(KNOWN_MODELS)})",
                warning=True,
            )
        )
        findings += _check_size_syntax(params.get("size"))
        return findings
    if len(prompt) > rules.max_prompt:
        findings.append(
            Finding(
                "prompt",
                f"prompt is {len(prompt):,} characters; {model} takes at most {rules.max_prompt:,}",
            )
        )
    n = params.get("n", 1)
    if n > rules.max_n:
        findings.append(
            Finding("n", f"{model} generates at most {rules.max_n} image(s) per request")
        )
    quality = params.get("quality")
    if quality is not None and quality not in rules.qualities:
        findings.append(
            Finding(
                "quality", f"{model} takes quality {' | '.join(rules.qualities)}, not '{quality}'"
            )
        )
    findings += _check_size(model, rules, params.get("size"))
    if rules.gpt_image_options:
        findings += _check_gpt_image_options(params)
    else:
        findings += [
            Finding(name, f"'{name}' is only supported by the GPT image models, not {model}")
            for name in GPT_IMAGE_ONLY
            if params.get(name) is not None
        ]
    if images and not rules.edits:
        findings.append(Finding("images", f"{model} cannot edit images; remove images:"))
    if images > rules.max_images:
        findings.append(
            Finding("images", f"{model} takes at most {rules.max_images} reference image(s)")
        )
    if has_mask and not images:
        findings.append(Finding("mask", "a mask needs at least one image under images:"))
    return findings


def _check_gpt_image_options(params: dict[str, Any]) -> list[Finding]:
    findings = []
    output_format = params.get("output_format") or "png"
    if params.get("background") == "transparent" and output_format not in ("png", "webp"):
        findings.append(
            Finding(
                "background",
                f"background: transparent needs output_format png or webp, not {output_format}",
            )
        )
    if params.get("output_compression") is not None and output_format not in ("jpeg", "webp"):
        findings.append(
            Finding(
                "output_compression",
                "output_compression only applies to output_format "
                f"jpeg or webp, not {output_format}; remove it",
            )
        )
    return findings


def normal_size(size: str) -> str:
    """`size` spelled as the API wants it (`1024x1024`), when it is a width and height written
    another way (`1024X1024`, `1024 x 1024`, `1024×1024`); anything else unchanged, to be refused."""
    match = _LOOSE_SIZE.match(size)
    return f"{match[1]}x{match[2]}" if match else size


def _check_size(model: str, rules: ModelRules, size: str | None) -> list[Finding]:
    if size is None:
        return []
    if rules.fixed_sizes is not None:
        if size not in rules.fixed_sizes:
            nearest = _nearest_fixed_size(rules.fixed_sizes, size)
            hint = f"; the nearest size it can make is {nearest}" if nearest else ""
            return [
                Finding(
                    "size",
                    f"{model} takes size {' | '.join(rules.fixed_sizes)}, not '{size}'{hint}",
                )
            ]
        return []
    return _check_flexible_size(model, size)


def _nearest_fixed_size(sizes: tuple[str, ...], size: str) -> str | None:
    """The listed size closest in shape, then in area, to a WxH `size` (None if it is not WxH)."""
    wanted = image_dimensions(size)
    if wanted is None or 0 in wanted:
        return None
    width, height = wanted

    def distance(candidate: str) -> tuple[float, float]:
        other = image_dimensions(candidate)
        assert other is not None
        shape = abs(math.log((other[0] / other[1]) / (width / height)))
        area = abs(math.log((other[0] * other[1]) / (width * height)))
        return round(shape, 2), area

    return min((item for item in sizes if item != "auto"), key=distance, default=None)


def _nearest_flexible_size(width: int, height: int) -> str:
    """The size gpt-image-2 can make nearest to `width`x`height`: the ratio brought within 3:1
    (keeping the area), scaled down to fit 3840x2160 (keeping the ratio), sides rounded to 16."""
    width, height = max(width, 1), max(height, 1)
    ratio = min(max(width / height, 1 / _RATIO_MAX), _RATIO_MAX)
    area = width * height
    exact_width, exact_height = math.sqrt(area * ratio), math.sqrt(area / ratio)
    long_side, short_side = max(exact_width, exact_height), min(exact_width, exact_height)
    scale = min(1.0, _LONG_MAX / long_side, _SHORT_MAX / short_side)
    exact_width, exact_height = exact_width * scale, exact_height * scale

    def to_step(side: float, limit: int) -> int:
        rounded = math.floor(side / _SIDE_STEP + 0.5) * _SIDE_STEP
        if rounded > limit:
            rounded = math.floor(side / _SIDE_STEP) * _SIDE_STEP
        return max(_SIDE_STEP, rounded)

    landscape = exact_width >= exact_height
    new_width = to_step(exact_width, _LONG_MAX if landscape else _SHORT_MAX)
    new_height = to_step(exact_height, _SHORT_MAX if landscape else _LONG_MAX)
    return f"{new_width}x{new_height}"


def _check_flexible_size(model: str, size: str) -> list[Finding]:
    if size == "auto":
        return []
    match = _SIZE.match(size)
    if not match:
        return [Finding("size", f"size must be auto or WIDTHxHEIGHT like 1536x1024, not '{size}'")]
    width, height = int(match[1]), int(match[2])
    problems = []
    if width % 16 or height % 16:
        problems.append("both sides must be divisible by 16")
    if width == 0 or height == 0 or max(width, height) > 3 * min(width, height):
        problems.append("the aspect ratio must be between 1:3 and 3:1")
    if max(width, height) > 3840 or min(width, height) > 2160:
        problems.append("the long side may be at most 3840 and the short side at most 2160")
    if problems:
        nearest = _nearest_flexible_size(width, height)
        return [
            Finding(
                "size",
                f"{model} cannot make {size}: {'; '.join(problems)}; "
                f"the nearest size it can make is {nearest}",
            )
        ]
    return []


def _check_size_syntax(size: str | None) -> list[Finding]:
    if size is None or size == "auto" or _SIZE.match(size):
        return []
    return [Finding("size", f"size must be auto or WIDTHxHEIGHT like 1536x1024, not '{size}'")]


def image_dimensions(size: str | None) -> tuple[int, int] | None:
    """(width, height) of a WxH size, None for auto or missing."""
    match = _SIZE.match(size or "")
    return (int(match[1]), int(match[2])) if match else None
