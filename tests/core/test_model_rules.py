"""model_rules.py: per-model limits from the official images API description."""

from __future__ import annotations

from typing import Any

import pytest

from promptform.core.model_rules import check_request, image_dimensions, normal_size


def findings(
    model: str = "gpt-image-2", images: int = 0, mask: bool = False, **params: Any
) -> list[tuple[str, str]]:
    body = {"prompt": "x", "n": 1, **params}
    return [(item.field, item.message) for item in check_request(model, body, images, mask)]


@pytest.mark.parametrize(
    "size",
    [
        "auto",
        "1024x1024",
        "1536x1024",
        "1024x1536",
        "3840x2160",
        "2160x3840",
        "3072x1024",
        "1024x3072",
        "16x48",
    ],
)
def test_gpt_image_2_accepts_sizes_within_its_rules(size: str) -> None:
    assert findings(size=size) == []


@pytest.mark.parametrize(
    ("size", "problem"),
    [
        ("1000x1024", "both sides must be divisible by 16"),
        ("1024x1000", "both sides must be divisible by 16"),
        ("3088x1024", "the aspect ratio must be between 1:3 and 3:1"),
        ("1024x3088", "the aspect ratio must be between 1:3 and 3:1"),
        ("3856x2160", "the long side may be at most 3840"),
        ("2176x2176", "the short side at most 2160"),
        ("0x1024", "the aspect ratio must be between 1:3 and 3:1"),
    ],
)
def test_gpt_image_2_refuses_sizes_breaking_a_rule(size: str, problem: str) -> None:
    [(field, message)] = findings(size=size)

    assert field == "size"
    assert message.startswith(f"gpt-image-2 cannot make {size}: ")
    assert problem in message


@pytest.mark.parametrize(
    "size", ["big", "1024", "1024X1024", "1024x", "-16x16", "1024x1024\n", "\u0661\u0666x16"]
)
def test_size_that_is_not_w_x_h_or_auto_is_refused(size: str) -> None:
    assert findings(size=size) == [
        ("size", f"size must be auto or WIDTHxHEIGHT like 1536x1024, not '{size}'")
    ]


def test_gpt_image_1_takes_only_its_fixed_sizes() -> None:
    assert findings("gpt-image-1", size="3840x2160") == [
        (
            "size",
            "gpt-image-1 takes size auto | 1024x1024 | 1536x1024 | 1024x1536, not '3840x2160'; "
            "the nearest size it can make is 1536x1024",
        )
    ]


@pytest.mark.parametrize("quality", ["low", "medium", "high", "auto"])
def test_gpt_image_qualities_are_accepted(quality: str) -> None:
    assert findings(quality=quality) == []


def test_dall_e_quality_is_refused_for_gpt_image_2() -> None:
    assert findings(quality="hd") == [
        ("quality", "gpt-image-2 takes quality low | medium | high | auto, not 'hd'")
    ]


@pytest.mark.parametrize("output_format", ["png", "webp"])
def test_transparent_background_works_with_png_and_webp(output_format: str) -> None:
    assert findings(background="transparent", output_format=output_format) == []


def test_transparent_background_needs_png_or_webp() -> None:
    assert findings(background="transparent", output_format="jpeg") == [
        ("background", "background: transparent needs output_format png or webp, not jpeg")
    ]


@pytest.mark.parametrize("output_format", ["jpeg", "webp"])
def test_output_compression_works_with_jpeg_and_webp(output_format: str) -> None:
    assert findings(output_compression=80, output_format=output_format) == []


@pytest.mark.parametrize("output_format", ["png", None])
def test_output_compression_is_refused_for_png(output_format: str | None) -> None:
    [(field, message)] = findings(output_compression=80, output_format=output_format)

    assert field == "output_compression"
    assert "not png" in message


def test_n_above_the_models_maximum_is_refused() -> None:
    assert findings("dall-e-3", n=2) == [("n", "dall-e-3 generates at most 1 image(s) per request")]


def test_prompt_up_to_32000_characters_is_accepted() -> None:
    assert findings(prompt="x" * 32_000) == []


def test_prompt_over_32000_characters_is_refused() -> None:
    assert findings(prompt="x" * 32_001) == [
        ("prompt", "prompt is 32,001 characters; gpt-image-2 takes at most 32,000")
    ]


def test_gpt_image_options_are_refused_for_dall_e() -> None:
    assert findings("dall-e-3", background="opaque") == [
        ("background", "'background' is only supported by the GPT image models, not dall-e-3")
    ]


def test_dall_e_3_cannot_edit() -> None:
    assert findings("dall-e-3", images=1) == [
        ("images", "dall-e-3 cannot edit images; remove images:")
    ]


def test_mask_without_reference_images_is_refused() -> None:
    assert findings(mask=True) == [("mask", "a mask needs at least one image under images:")]


def test_more_reference_images_than_the_model_takes_is_refused() -> None:
    assert findings(images=17) == [("images", "gpt-image-2 takes at most 16 reference image(s)")]


def test_unknown_model_is_only_a_warning() -> None:
    [finding] = check_request("flux-pro-9", {"prompt": "x", "size": "999x777"}, 0, False)

    assert finding.warning
    assert finding.field == "model"


def test_unknown_model_still_needs_a_well_formed_size() -> None:
    result = check_request("flux-pro-9", {"prompt": "x", "size": "huge"}, 0, False)

    assert [(item.field, item.warning) for item in result] == [("model", True), ("size", False)]


def test_size_with_thousands_of_digits_is_refused_not_a_crash() -> None:
    size = "1" * 5000 + "x16"

    assert [
        item.field for item in check_request("gpt-image-2", {"prompt": "x", "size": size}, 0, False)
    ] == ["size"]
    assert image_dimensions(size) is None


def test_image_dimensions_of_sizes() -> None:
    assert image_dimensions("1536x1024") == (1536, 1024)
    assert image_dimensions("auto") is None
    assert image_dimensions(None) is None


@pytest.mark.parametrize(
    ("model", "size", "nearest"),
    [
        ("gpt-image-2", "1000x1000", "1008x1008"),
        ("gpt-image-2", "1920x1080", "1920x1088"),
        ("gpt-image-2", "4096x4096", "2160x2160"),
        ("gpt-image-2", "4096x2304", "3840x2160"),
        ("gpt-image-2", "5000x1000", "3840x1280"),
        ("gpt-image-2", "1000x5000", "1280x3840"),
        ("gpt-image-1", "3840x2160", "1536x1024"),
        ("gpt-image-1", "1000x1000", "1024x1024"),
        ("gpt-image-1", "1000x1600", "1024x1536"),
        ("dall-e-3", "1920x1080", "1792x1024"),
        ("dall-e-2", "300x300", "256x256"),
    ],
)
def test_a_refused_size_suggests_the_nearest_the_model_can_make(
    model: str, size: str, nearest: str
) -> None:
    [(field, message)] = findings(model, size=size)

    assert field == "size"
    assert message.endswith(f"; the nearest size it can make is {nearest}")
    assert findings(model, size=nearest) == []


@pytest.mark.parametrize(
    ("written", "sent"),
    [("1024X1024", "1024x1024"), (" 1536 x 1024 ", "1536x1024"), ("1024×1536", "1024x1536")],
)
def test_sizes_are_normalised_to_lowercase_x(written: str, sent: str) -> None:
    assert normal_size(written) == sent


@pytest.mark.parametrize("size", ["auto", "big", "1024x", "-16x16"])
def test_normalising_leaves_other_sizes_alone(size: str) -> None:
    assert normal_size(size) == size
