"""What one image costs: built-in per-image prices and the `[pricing.MODEL]` overrides from config.

A price that is not known is None, shown as `unknown`: a made-up number would be worse than none.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_SQUARE = "1024x1024"
_PORTRAIT = "1024x1536"
_LANDSCAPE = "1536x1024"


def _table(
    low: tuple[float, float], medium: tuple[float, float], high: tuple[float, float]
) -> dict[tuple[str, str], float]:
    """(square, portrait-or-landscape) USD per image for each quality."""
    return {
        (quality, size): prices[0] if size == _SQUARE else prices[1]
        for quality, prices in (("low", low), ("medium", medium), ("high", high))
        for size in (_SQUARE, _PORTRAIT, _LANDSCAPE)
    }


# USD per output image by (quality, size), from the official price list. Models it does not price
# per image (DALL·E, retired from the API; sizes it gives no example for) are left out on purpose.
BUILTIN_PRICES: dict[str, dict[tuple[str, str], float]] = {
    "gpt-image-2": _table(low=(0.006, 0.005), medium=(0.053, 0.041), high=(0.211, 0.165)),
    "gpt-image-1.5": _table(low=(0.009, 0.013), medium=(0.034, 0.05), high=(0.133, 0.2)),
    "gpt-image-1": _table(low=(0.011, 0.016), medium=(0.042, 0.063), high=(0.167, 0.25)),
    "gpt-image-1-mini": _table(low=(0.005, 0.006), medium=(0.011, 0.015), high=(0.036, 0.052)),
}
BUILTIN_PRICES["gpt-image-2-2026-04-21"] = BUILTIN_PRICES["gpt-image-2"]

DEFAULT_KEY = "default"
AUTO_ESTIMATE = "high"
# `[pricing.MODEL] batch_discount`: the share taken off the price of a Batch API request (OpenAI
# charges half); a key of the table, not a quality.
BATCH_DISCOUNT_KEY = "batch_discount"
DEFAULT_BATCH_DISCOUNT = 0.5


def price_per_image(
    model: str,
    quality: str | None,
    size: str | None,
    overrides: Mapping[str, Mapping[str, float]],
) -> float | None:
    """USD for one image, or None when unknown.

    `[pricing.MODEL]` in config wins over the built-in list: its QUALITY key first, then its
    `default` key (a gateway's flat price, say); only then the built-in price for quality and size.
    Quality `auto` (the API's default when unset) is estimated at the `high` price: the model may
    choose it, so a budget check must assume it.
    """
    configured = overrides.get(model)
    if configured is not None:
        if quality is not None and quality in configured:
            return configured[quality]
        if DEFAULT_KEY in configured:
            return configured[DEFAULT_KEY]
    if size is None:
        return None
    estimated = AUTO_ESTIMATE if quality in (None, "auto") else quality
    return BUILTIN_PRICES.get(model, {}).get((str(estimated), size))


def assumed_quality(
    body: Mapping[str, Any], overrides: Mapping[str, Mapping[str, float]]
) -> str | None:
    """The quality an estimate assumed because the request sets none (or `auto`): `high`, or None
    when the request names its quality or a `[pricing.MODEL]` price applies whatever the quality."""
    if _optional_text(body.get("quality")) not in (None, "auto"):
        return None
    configured = overrides.get(str(body["model"]), {})
    if DEFAULT_KEY in configured or "auto" in configured:
        return None
    return AUTO_ESTIMATE


def request_cost(
    body: Mapping[str, Any], overrides: Mapping[str, Mapping[str, float]]
) -> float | None:
    """USD for every image one request body asks for, or None when the price is unknown."""
    price = price_per_image(
        str(body["model"]),
        _optional_text(body.get("quality")),
        _optional_text(body.get("size")),
        overrides,
    )
    if price is None:
        return None
    return price * int(body.get("n", 1))


def batch_discount(model: str, overrides: Mapping[str, Mapping[str, float]]) -> float:
    """The share of the price a batch request saves for `model` (`[pricing.MODEL] batch_discount`)."""
    return float(overrides.get(model, {}).get(BATCH_DISCOUNT_KEY, DEFAULT_BATCH_DISCOUNT))


def batch_request_cost(
    body: Mapping[str, Any], overrides: Mapping[str, Mapping[str, float]]
) -> float | None:
    """USD for one request body sent through the Batch API, or None when the price is unknown."""
    cost = request_cost(body, overrides)
    if cost is None:
        return None
    return round(cost * (1 - batch_discount(str(body["model"]), overrides)), 6)


def _optional_text(value: object) -> str | None:
    return None if value is None else str(value)
