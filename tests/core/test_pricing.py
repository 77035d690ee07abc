"""Per-image prices: built-in official prices, config overrides, and honesty about the unknown."""

from __future__ import annotations

import pytest

from promptform.core.pricing import price_per_image, request_cost


@pytest.mark.parametrize(
    ("model", "quality", "size", "price"),
    [
        ("gpt-image-2", "low", "1024x1024", 0.006),
        ("gpt-image-2", "high", "1536x1024", 0.165),
        ("gpt-image-1.5", "medium", "1024x1536", 0.05),
        ("gpt-image-1", "high", "1024x1024", 0.167),
        ("gpt-image-1-mini", "low", "1536x1024", 0.006),
    ],
)
def test_builtin_price_by_model_quality_and_size(
    model: str, quality: str, size: str, price: float
) -> None:
    assert price_per_image(model, quality, size, {}) == price


@pytest.mark.parametrize(
    ("model", "quality", "size"),
    [
        ("acme-img", "high", "1024x1024"),  # a model the official list does not price
        ("gpt-image-2", "high", "2048x2048"),  # a size without an official example
        ("dall-e-3", "hd", "1024x1024"),  # retired from the API, no longer priced
    ],
)
def test_unknown_price_is_none(model: str, quality: str | None, size: str) -> None:
    assert price_per_image(model, quality, size, {}) is None


@pytest.mark.parametrize("quality", ["auto", None])
def test_auto_quality_is_estimated_at_the_high_price(quality: str | None) -> None:
    # The API may choose high, so a budget must assume it.
    assert price_per_image("gpt-image-2", quality, "1024x1024", {}) == price_per_image(
        "gpt-image-2", "high", "1024x1024", {}
    )


def test_config_price_for_a_quality_overrides_the_builtin_price() -> None:
    assert (
        price_per_image("gpt-image-2", "high", "1024x1024", {"gpt-image-2": {"high": 0.1}}) == 0.1
    )


def test_config_default_price_covers_every_quality_and_size() -> None:
    overrides = {"gpt-image-2": {"default": 0.03}}
    assert price_per_image("gpt-image-2", "auto", "3840x2160", overrides) == 0.03
    assert price_per_image("gpt-image-2", "high", "1024x1024", overrides) == 0.03


def test_config_table_without_the_quality_falls_back_to_builtin() -> None:
    assert (
        price_per_image("gpt-image-2", "low", "1024x1024", {"gpt-image-2": {"high": 0.1}}) == 0.006
    )


def test_config_prices_a_model_the_builtin_list_does_not_know() -> None:
    assert price_per_image("acme-img", "standard", None, {"acme-img": {"standard": 0.02}}) == 0.02


def test_request_cost_multiplies_by_n() -> None:
    body = {"model": "gpt-image-2", "quality": "medium", "size": "1024x1024", "n": 3}
    assert request_cost(body, {}) == pytest.approx(0.159)


def test_request_cost_is_none_when_the_price_is_unknown() -> None:
    assert request_cost({"model": "acme-img", "n": 2}, {}) is None


def test_batch_requests_cost_half_unless_the_discount_is_configured() -> None:
    from promptform.core.pricing import batch_request_cost

    body = {"model": "gpt-image-2", "quality": "low", "size": "1024x1024", "n": 2}
    assert batch_request_cost(body, {}) == pytest.approx(0.006)
    overrides = {"gpt-image-2": {"batch_discount": 0.25}}
    assert batch_request_cost(body, overrides) == pytest.approx(0.009)
    assert request_cost(body, overrides) == pytest.approx(0.012)  # not a quality or a price
    assert batch_request_cost({"model": "unknown-model", "size": "1x1"}, {}) is None
