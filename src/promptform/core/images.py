"""Image bytes: which format they are (PNG, JPEG, WEBP), their dimensions, and whether they are whole.

Only headers and container structure are read, never pixels, so checking a paid image costs microseconds
and needs no imaging library. Truncated data is rejected: an image cut short in transit must not be saved.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable
from typing import Literal, NamedTuple

from promptform.core.errors import PromptformError

ImageFormat = Literal["png", "jpeg", "webp"]
FORMATS: tuple[ImageFormat, ...] = ("png", "jpeg", "webp")
MEDIA_TYPES: dict[str, str] = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# SOF markers carry the frame size; C4 (DHT), C8 (JPG) and CC (DAC) share the range but do not.
_JPEG_SOF = frozenset(
    {*range(0xC0, 0xC4), *range(0xC5, 0xC8), *range(0xC9, 0xCC), *range(0xCD, 0xD0)}
)
# Markers without a length field: TEM, RST0-7, SOI, EOI.
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xDA)})


class ImageError(PromptformError):
    """Bytes that are not a complete PNG, JPEG or WEBP image."""


class UnexpectedFormatError(ImageError):
    """A complete image, but not of the format that was asked for."""

    def __init__(self, message: str, actual: ImageFormat, expected: str) -> None:
        super().__init__(message)
        self.actual = actual
        self.expected = expected


class ImageInfo(NamedTuple):
    format: ImageFormat
    width: int
    height: int


def sniff(data: bytes) -> ImageInfo:
    """The format and size of an image; ImageError if `data` is not a whole PNG, JPEG or WEBP."""
    if not data:
        raise ImageError("not an image: no data")
    if data.startswith(_PNG_SIGNATURE):
        return _png(data)
    if data.startswith(b"\xff\xd8\xff"):
        return _jpeg(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp(data)
    raise ImageError(f"not a PNG, JPEG or WEBP image (starts with {_preview(data)})")


def check_format(data: bytes, expected_format: str) -> ImageInfo:
    """Like `sniff`, and also UnexpectedFormatError unless the image is of `expected_format`."""
    info = sniff(data)
    wanted = "jpeg" if expected_format == "jpg" else expected_format
    if info.format != wanted:
        raise UnexpectedFormatError(
            f"expected a {wanted} image but got {info.format}", info.format, wanted
        )
    return info


def _png(data: bytes) -> ImageInfo:
    # Walking every chunk and checking its CRC costs about a millisecond per megabyte and is the only
    # way to notice a PNG that lost bytes in the middle.
    offset = len(_PNG_SIGNATURE)
    width = height = 0
    first = True
    while True:
        if offset + 12 > len(data):
            raise ImageError("truncated PNG: the data ends before the IEND chunk")
        length, kind = struct.unpack_from(">I4s", data, offset)
        end = offset + 12 + length
        if end > len(data):
            raise ImageError(f"truncated PNG: the {_chunk_name(kind)} chunk is cut short")
        body = data[offset + 4 : end - 4]
        (crc,) = struct.unpack_from(">I", data, end - 4)
        if zlib.crc32(body) != crc:
            raise ImageError(f"corrupt PNG: checksum mismatch in the {_chunk_name(kind)} chunk")
        if first:
            if kind != b"IHDR" or length != 13:
                raise ImageError("corrupt PNG: the first chunk is not IHDR")
            width, height = struct.unpack_from(">II", data, offset + 8)
            first = False
        if kind == b"IEND":
            return _sized("png", width, height)
        offset = end


def _jpeg(data: bytes) -> ImageInfo:
    offset = 2
    size: tuple[int, int] | None = None
    while True:
        while offset + 1 < len(data) and data[offset] == data[offset + 1] == 0xFF:
            offset += 1  # fill bytes may pad any marker
        if offset + 2 > len(data):
            raise ImageError("truncated JPEG: the data ends inside the headers")
        if data[offset] != 0xFF:
            raise ImageError(f"corrupt JPEG: expected a marker at byte {offset}")
        marker = data[offset + 1]
        offset += 2
        if marker in _JPEG_STANDALONE:
            if marker == 0xD9:
                raise ImageError("corrupt JPEG: the image ends before any scan")
            continue
        if offset + 2 > len(data):
            raise ImageError("truncated JPEG: the data ends inside the headers")
        (length,) = struct.unpack_from(">H", data, offset)
        if length < 2 or offset + length > len(data):
            raise ImageError("truncated JPEG: a header segment is cut short")
        if marker in _JPEG_SOF and length >= 7:
            height, width = struct.unpack_from(">HH", data, offset + 3)
            size = (width, height)
        offset += length
        if marker == 0xDA:  # start of scan: entropy-coded data follows
            break
    if size is None:
        raise ImageError("corrupt JPEG: no frame header (SOF) before the scan")
    # Inside entropy-coded data 0xFF is always followed by 0x00 or a restart marker, so an EOI after the
    # scan starts can only be the real end of the image.
    if data.find(b"\xff\xd9", offset) < 0:
        raise ImageError("truncated JPEG: the end-of-image marker is missing")
    return _sized("jpeg", *size)


def _webp(data: bytes) -> ImageInfo:
    (riff_size,) = struct.unpack_from("<I", data, 4)
    if len(data) < riff_size + 8:
        raise ImageError(
            f"truncated WEBP: the header announces {riff_size + 8} bytes but there are {len(data)}"
        )
    if len(data) < 30:
        raise ImageError("truncated WEBP: the data ends inside the headers")
    kind = data[12:16]
    if kind == b"VP8 ":
        if data[23:26] != b"\x9d\x01\x2a":
            raise ImageError("corrupt WEBP: bad VP8 frame start code")
        width, height = struct.unpack_from("<HH", data, 26)
        return _sized("webp", width & 0x3FFF, height & 0x3FFF)
    if kind == b"VP8L":
        if data[20] != 0x2F:
            raise ImageError("corrupt WEBP: bad VP8L signature")
        (bits,) = struct.unpack_from("<I", data, 21)
        return _sized("webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    if kind == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return _sized("webp", width, height)
    raise ImageError(f"corrupt WEBP: unknown chunk {_chunk_name(kind)}")


def _sized(kind: ImageFormat, width: int, height: int) -> ImageInfo:
    if width <= 0 or height <= 0:
        raise ImageError(f"corrupt {kind.upper()}: the image is {width}x{height} pixels")
    return ImageInfo(kind, width, height)


def _chunk_name(kind: bytes) -> str:
    return repr(kind.decode("latin-1"))


def _preview(data: bytes) -> str:
    """The first bytes, as text when they look like text (an HTML or JSON error page), else as hex."""
    head = data[:16]
    text = head.decode("ascii", errors="replace")
    if text.isprintable():
        return repr(text)
    return head[:8].hex(" ")


def encode_png(width: int, height: int, rows: Iterable[bytes]) -> bytes:
    """An 8-bit RGB PNG of `rows` (each `width * 3` bytes), deterministic for the same input.

    A row equal to the one above is written with the Up filter (all zeros), which makes flat and
    banded images compress in a few milliseconds without an imaging library.
    """
    compressor = zlib.compressobj(6)
    out: list[bytes] = []
    previous = b""
    zero_row = b"\x02" + bytes(width * 3)
    for row in rows:
        out.append(compressor.compress(zero_row if row == previous else b"\x00" + row))
        previous = row
    out.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"".join(
        (
            _PNG_SIGNATURE,
            _chunk(b"IHDR", header),
            _chunk(b"IDAT", b"".join(out)),
            _chunk(b"IEND", b""),
        )
    )


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
