"""The offline provider: deterministic, labelled previews of the requested size and format."""

from __future__ import annotations

import asyncio
import io
import time

import pytest
from PIL import Image

from promptform.core.images import sniff
from promptform.providers.base import ImageRequest, ProviderError
from promptform.providers.offline import OfflineProvider, render_images

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


@pytest.mark.parametrize("fmt", ["jpeg", "webp"])
def test_jpeg_and_webp_previews_are_encoded_with_pillow(fmt: str) -> None:
    images = render_images(request(size="128x64", output_format=fmt))
    assert sniff(images[0]) == (fmt, 128, 64)
    assert images == render_images(request(size="128x64", output_format=fmt))


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
    ],
)
def test_impossible_requests_are_refused(body: dict[str, object], message: str) -> None:
    with pytest.raises(ProviderError) as caught:
        render_images(request(**body))
    assert str(caught.value) == message
    assert caught.value.retryable is False


def test_without_pillow_jpeg_is_refused_with_a_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    real = importlib.import_module

    def no_pillow(name: str, package: str | None = None) -> object:
        if name.startswith("PIL"):
            raise ImportError(name)
        return real(name, package)

    monkeypatch.setattr(importlib, "import_module", no_pillow)
    with pytest.raises(ProviderError, match="pip install pillow, or use output_format: png"):
        render_images(request(size="64x64", output_format="jpeg"))
