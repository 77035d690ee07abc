"""The offline provider: deterministic, labelled previews of the requested size and format."""

from __future__ import annotations

import asyncio
import io
import json
import sys
import time

import pytest
from PIL import Image

from promptform.core.images import check_format, sniff
from promptform.providers.base import ImageRequest, ProviderError
from promptform.providers.offline import OUTPUT_FORMATS, OfflineProvider, render_images
from tests.support.openapi import OPENAPI_PATH

FINGERPRINT = "sha256:v1:" + "ab" * 32


def request(fingerprint: str = FINGERPRINT, **body: object) -> ImageRequest:
    return ImageRequest(
        address="marketing/hero[subject=kayak]",
        endpoint="images/generations",
        body={"model": "gpt-image-2", "prompt": "a kayak", **body},
        fingerprint=fingerprint,
    )


def test_generate_returns_n_png_previews_without_usage() -> None:
    generation = asyncio.run(OfflineProvider().generate(request(n=3, size="256x128")))
    assert [sniff(image) for image in generation.images] == [("png", 256, 128)] * 3
    assert generation.usage is None
    assert generation.revised_prompt is None
    assert OfflineProvider().kind == "offline"


def test_same_request_gives_identical_bytes() -> None:
    assert render_images(request(n=2)) == render_images(request(n=2))


def test_each_image_of_a_request_differs() -> None:
    first, second = render_images(request(n=2, size="64x64"))
    assert first != second


def test_a_different_fingerprint_gives_different_colours() -> None:
    one = Image.open(io.BytesIO(render_images(request(size="64x64"))[0]))
    other = Image.open(
        io.BytesIO(render_images(request("sha256:v1:" + "cd" * 32, size="64x64"))[0])
    )
    assert one.getpixel((63, 63)) != other.getpixel((63, 63))


def test_without_a_fingerprint_the_body_decides() -> None:
    assert render_images(request("", size="64x64")) == render_images(request("", size="64x64"))
    assert render_images(request("", size="64x64")) != render_images(
        request("", size="64x64", quality="high")
    )


@pytest.mark.parametrize(
    ("size", "expected"), [(None, (1024, 1024)), ("auto", (1024, 1024)), ("1536x864", (1536, 864))]
)
def test_size_is_honoured_and_auto_means_square(
    size: str | None, expected: tuple[int, int]
) -> None:
    body = {} if size is None else {"size": size}
    assert sniff(render_images(request(**body))[0])[1:] == expected


def test_the_label_is_drawn_on_a_dark_panel() -> None:
    image = Image.open(io.BytesIO(render_images(request(size="512x512"))[0])).convert("RGB")
    panel = {image.getpixel((x, y)) for x in range(0, 400) for y in range(16, 60)}
    assert (20, 20, 20) in panel
    assert (240, 240, 240) in panel


@pytest.mark.parametrize("fmt", OUTPUT_FORMATS)
def test_every_output_format_is_a_whole_image_of_that_format_and_size(fmt: str) -> None:
    images = render_images(request(size="128x64", output_format=fmt, n=2))
    assert [check_format(image, fmt) for image in images] == [(fmt, 128, 64)] * 2
    assert images == render_images(request(size="128x64", output_format=fmt, n=2))


def test_the_offline_formats_are_the_images_apis() -> None:
    schema = json.loads(OPENAPI_PATH.read_text())["components"]["schemas"]["CreateImageRequest"]
    assert tuple(schema["properties"]["output_format"]["enum"]) == OUTPUT_FORMATS


@pytest.mark.parametrize("fmt", ["jpeg", "webp"])
def test_output_compression_sets_the_encoder_quality(fmt: str) -> None:
    small = render_images(request(size="256x256", output_format=fmt, output_compression=5))[0]
    large = render_images(request(size="256x256", output_format=fmt, output_compression=95))[0]
    assert len(small) < len(large)
    assert check_format(small, fmt) == check_format(large, fmt) == (fmt, 256, 256)


@pytest.mark.parametrize("fmt", ["png", "webp"])
def test_a_transparent_background_leaves_only_the_label_panel_opaque(fmt: str) -> None:
    data = render_images(request(size="512x256", output_format=fmt, background="transparent"))[0]
    assert check_format(data, fmt) == (fmt, 512, 256)
    image = Image.open(io.BytesIO(data))
    assert image.mode == "RGBA"
    assert image.getpixel((500, 250))[3] == 0  # type: ignore[index]
    assert image.getpixel((10, 20))[3] == 255  # type: ignore[index]  # inside the label panel


@pytest.mark.parametrize("background", ["opaque", "auto", None])
def test_other_backgrounds_are_opaque(background: str | None) -> None:
    data = render_images(request(size="64x64", output_format="webp", background=background))[0]
    assert Image.open(io.BytesIO(data)).mode == "RGB"


def test_a_large_preview_renders_quickly() -> None:
    render_images(request(size="1024x1024"))  # warm up imports
    started = time.perf_counter()
    render_images(request(size="1024x1024"))
    assert time.perf_counter() - started < 0.1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"size": "big"}, "offline provider: size must be WIDTHxHEIGHT or auto, not 'big'"),
        ({"size": "9000x16"}, "offline provider: size 9000x16 is outside 1..4096 pixels per edge"),
        ({"n": 0}, "offline provider: n must be 1..10, not 0"),
        ({"output_format": "gif"}, "offline provider: unsupported output_format 'gif'"),
        (
            {"output_format": "jpeg", "background": "transparent"},
            "offline provider: background transparent needs output_format png or webp, not jpeg",
        ),
    ],
)
def test_impossible_requests_are_refused(body: dict[str, object], message: str) -> None:
    with pytest.raises(ProviderError) as caught:
        render_images(request(**body))
    assert str(caught.value) == message
    assert caught.value.retryable is False


def test_without_pillow_webp_is_refused_with_a_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    # Pillow is a dependency, but an environment installed with --no-deps can still lack it.
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(ProviderError) as caught:
        render_images(request(size="64x64", output_format="webp"))
    assert str(caught.value) == (
        "offline provider renders webp previews with Pillow, a dependency of promptform that this "
        "environment lacks; reinstall promptform or pip install pillow"
    )
    assert caught.value.retryable is False
