"""images.py: format, size and completeness of PNG, JPEG and WEBP bytes, checked against Pillow."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from promptform.core.images import (
    ImageError,
    ImageInfo,
    UnexpectedFormatError,
    check_format,
    encode_png,
    sniff,
)


def pillow_image(
    fmt: str, size: tuple[int, int] = (123, 45), mode: str = "RGB", **options: object
) -> bytes:
    colour = (200, 30, 60, 128)[: len(mode)]
    buffer = io.BytesIO()
    Image.new(mode, size, colour).save(buffer, fmt, **options)
    return buffer.getvalue()


CASES = {
    "png-rgb": (pillow_image("PNG"), "png"),
    "png-rgba": (pillow_image("PNG", mode="RGBA"), "png"),
    "png-palette": (pillow_image("PNG", mode="P"), "png"),
    "jpeg-baseline": (pillow_image("JPEG"), "jpeg"),
    "jpeg-progressive": (pillow_image("JPEG", progressive=True), "jpeg"),
    "jpeg-grey": (pillow_image("JPEG", mode="L"), "jpeg"),
    "webp-lossy-vp8": (pillow_image("WEBP"), "webp"),
    "webp-lossless-vp8l": (pillow_image("WEBP", lossless=True), "webp"),
    "webp-alpha-vp8x": (pillow_image("WEBP", mode="RGBA"), "webp"),
}


@pytest.mark.parametrize("case", CASES)
def test_sniff_reads_format_and_dimensions_like_pillow(case: str) -> None:
    data, fmt = CASES[case]
    assert sniff(data) == ImageInfo(fmt, 123, 45)


@pytest.mark.parametrize("size", [(1, 1), (16383, 2), (3840, 2160)])
@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_sniff_reads_extreme_dimensions(fmt: str, size: tuple[int, int]) -> None:
    assert sniff(pillow_image(fmt, size, mode="L" if fmt == "PNG" else "RGB"))[1:] == size


def test_sniff_reads_jpeg_dimensions_after_exif_with_embedded_thumbnail() -> None:
    thumb = pillow_image("JPEG", (8, 8))
    exif = Image.Exif()
    exif[0x010E] = "description"
    image = Image.new("RGB", (300, 200), (1, 2, 3))
    buffer = io.BytesIO()
    # An APP segment carrying a complete JPEG (with its own SOF and EOI) must not be mistaken for the frame.
    image.save(buffer, "JPEG", exif=exif.tobytes() + thumb)
    assert sniff(buffer.getvalue()) == ImageInfo("jpeg", 300, 200)


@pytest.mark.parametrize("case", CASES)
def test_truncated_images_are_rejected(case: str) -> None:
    data, _ = CASES[case]
    for cut in (len(data) - 1, len(data) // 2, 24, 9):
        with pytest.raises(ImageError, match=r"truncated|corrupt|not a PNG"):
            sniff(data[:cut])


def test_corrupted_png_fails_its_checksum() -> None:
    data = bytearray(CASES["png-rgb"][0])
    data[-20] ^= 0xFF
    with pytest.raises(ImageError, match="checksum mismatch"):
        sniff(bytes(data))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not an image: no data"),
        (
            b"<html><body>502 Bad Gateway</body></html>",
            "not a PNG, JPEG or WEBP image (starts with '<html><body>502 ')",
        ),
        (
            b"GIF89a\x01\x00\x01\x00\x00\xff\x00",
            "not a PNG, JPEG or WEBP image (starts with 47 49 46 38 39 61 01 00)",
        ),
    ],
)
def test_non_images_get_a_clear_message(data: bytes, message: str) -> None:
    with pytest.raises(ImageError) as caught:
        sniff(data)
    assert str(caught.value) == message


def test_check_format_accepts_the_expected_format() -> None:
    assert check_format(CASES["webp-lossy-vp8"][0], "webp").format == "webp"
    assert check_format(CASES["jpeg-baseline"][0], "jpg").format == "jpeg"


def test_check_format_names_both_formats_when_they_differ() -> None:
    with pytest.raises(UnexpectedFormatError) as caught:
        check_format(CASES["jpeg-baseline"][0], "png")
    assert str(caught.value) == "expected a png image but got jpeg"
    assert (caught.value.actual, caught.value.expected) == ("jpeg", "png")


def test_encode_png_round_trips_through_pillow() -> None:
    width, height = 3, 4
    rows = [b"".join(bytes((x * 40, y * 50, 200)) for x in range(width)) for y in range(height)]
    rows[2] = rows[1]  # a repeated row takes the Up-filter path
    data = encode_png(width, height, rows)
    assert sniff(data) == ImageInfo("png", width, height)
    image = Image.open(io.BytesIO(data))
    assert image.mode == "RGB"
    assert image.tobytes() == b"".join(rows)
