"""The offline provider: labelled preview images rendered locally from the request's fingerprint.

For demos, tests and CI without an API key. The same request always gives the same bytes; every image
says "OFFLINE PREVIEW" so nobody mistakes one for a generated picture.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import io
import re
from collections.abc import Iterator
from typing import Any

from promptform.core.fingerprint import canonical_json
from promptform.core.images import encode_png
from promptform.providers.base import Generation, ImageRequest, ProviderError

DEFAULT_SIZE = (1024, 1024)
MAX_EDGE = 4096
RENDERER = "promptform-offline-v1"

_SIZE = re.compile(r"^(\d+)x(\d+)$")

# A 5x7 bitmap font: seven rows of five bits each, most significant bit on the left. Lower case is
# drawn as upper case; anything else becomes "?".
_FONT: dict[str, tuple[int, ...]] = {
    " ": (0, 0, 0, 0, 0, 0, 0),
    "A": (0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11),
    "B": (0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E),
    "C": (0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E),
    "D": (0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C),
    "E": (0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F),
    "F": (0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10),
    "G": (0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F),
    "H": (0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11),
    "I": (0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E),
    "J": (0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C),
    "K": (0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11),
    "L": (0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F),
    "M": (0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11),
    "N": (0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11),
    "O": (0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E),
    "P": (0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10),
    "Q": (0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D),
    "R": (0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11),
    "S": (0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E),
    "T": (0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04),
    "U": (0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E),
    "V": (0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04),
    "W": (0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A),
    "X": (0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11),
    "Y": (0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04),
    "Z": (0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F),
    "0": (0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E),
    "1": (0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E),
    "2": (0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F),
    "3": (0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E),
    "4": (0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02),
    "5": (0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E),
    "6": (0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E),
    "7": (0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08),
    "8": (0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E),
    "9": (0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C),
    ".": (0, 0, 0, 0, 0, 0x0C, 0x0C),
    ",": (0, 0, 0, 0, 0x0C, 0x04, 0x08),
    ":": (0, 0x0C, 0x0C, 0, 0x0C, 0x0C, 0),
    "-": (0, 0, 0, 0x1F, 0, 0, 0),
    "_": (0, 0, 0, 0, 0, 0, 0x1F),
    "=": (0, 0, 0x1F, 0, 0x1F, 0, 0),
    "/": (0x01, 0x01, 0x02, 0x04, 0x08, 0x10, 0x10),
    "[": (0x0E, 0x08, 0x08, 0x08, 0x08, 0x08, 0x0E),
    "]": (0x0E, 0x02, 0x02, 0x02, 0x02, 0x02, 0x0E),
    "(": (0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02),
    ")": (0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08),
    "#": (0x0A, 0x0A, 0x1F, 0x0A, 0x1F, 0x0A, 0x0A),
    '"': (0x0A, 0x0A, 0, 0, 0, 0, 0),
    "'": (0x04, 0x04, 0, 0, 0, 0, 0),
    "+": (0, 0x04, 0x04, 0x1F, 0x04, 0x04, 0),
    "?": (0x0E, 0x11, 0x01, 0x02, 0x04, 0, 0x04),
}
_GLYPH_W, _GLYPH_H = 5, 7


class OfflineProvider:
    """Renders previews instead of calling an API. Output formats other than PNG need Pillow."""

    kind = "offline"

    def __init__(self, name: str = "offline") -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"OfflineProvider(name={self.name!r})"

    async def generate(self, request: ImageRequest) -> Generation:
        # zlib releases the GIL, so rendering in a thread lets concurrent targets overlap.
        images = await asyncio.to_thread(render_images, request)
        return Generation(images=images, extra={"renderer": RENDERER})

    async def aclose(self) -> None:
        return None


def render_images(request: ImageRequest) -> list[bytes]:
    """The preview images for `request`: `n` of them, of its size and output format."""
    body = request.body
    width, height = _size(body.get("size"))
    count = _count(body.get("n", 1))
    output_format = str(body.get("output_format") or "png")
    seed = request.fingerprint or hashlib.sha256(canonical_json(body)).hexdigest()
    images = []
    for index in range(count):
        digest = hashlib.sha256(f"{seed}#{index}".encode()).digest()
        lines = [
            "OFFLINE PREVIEW",
            request.address,
            f"{width}x{height}  {index + 1}/{count}  {_short(seed)}",
        ]
        rows = list(_rows(width, height, digest, lines))
        images.append(_encode(output_format, width, height, rows, body))
    return images


def _size(value: Any) -> tuple[int, int]:
    if value in (None, "auto"):
        return DEFAULT_SIZE
    match = _SIZE.match(str(value))
    if not match:
        raise ProviderError(
            f"offline provider: size must be WIDTHxHEIGHT or auto, not {value!r}", retryable=False
        )
    width, height = int(match[1]), int(match[2])
    if not (0 < width <= MAX_EDGE and 0 < height <= MAX_EDGE):
        raise ProviderError(
            f"offline provider: size {value} is outside 1..{MAX_EDGE} pixels per edge",
            retryable=False,
        )
    return width, height


def _count(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 10:
        raise ProviderError(f"offline provider: n must be 1..10, not {value!r}", retryable=False)
    return value


def _short(seed: str) -> str:
    return seed.rsplit(":", 1)[-1][:12]


def _rows(width: int, height: int, digest: bytes, lines: list[str]) -> Iterator[bytes]:
    """A vertical gradient between two colours from `digest`, checkered, with the label on a panel."""
    top, bottom = digest[0:3], digest[3:6]
    tile = max(8, min(width, height) // 16)
    scale = max(1, min(width, height) // 200)
    label = _Label(width, height, scale, lines)
    for y in range(height):
        t = y / max(1, height - 1)
        base = bytes(round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True))
        # Quantising the gradient keeps runs of identical rows, which the PNG encoder stores as zeros.
        base = bytes(c & 0xFC for c in base)
        light = bytes(min(255, c + 24) for c in base)
        first, second = (base, light) if (y // tile) % 2 == 0 else (light, base)
        pair = first * tile + second * tile
        row = (pair * (width // (2 * tile) + 1))[: width * 3]
        yield label.draw(y, row)


class _Label:
    """The text panel: which rows it covers and how to paint one of them."""

    def __init__(self, width: int, height: int, scale: int, lines: list[str]) -> None:
        self.scale = scale
        self.margin = 4 * scale
        advance = (_GLYPH_W + 1) * scale
        fits = max(0, (width - 4 * self.margin) // advance)
        self.lines = [part for line in lines for part in _wrap(line.upper(), fits)]
        line_height = (_GLYPH_H + 3) * scale
        self.top = self.margin * 2
        self.bottom = self.top + len(self.lines) * line_height + self.margin
        if self.bottom > height - self.margin:
            self.lines = []
        self.line_height = line_height
        self.left = self.margin
        longest = max((len(line) for line in self.lines), default=0)
        self.right = min(width, self.left + 2 * self.margin + longest * advance)
        # A neutral panel keeps the text legible whatever colours the fingerprint picked.
        self.panel = bytes((20, 20, 20))
        self.ink = bytes((240, 240, 240))
        self.advance = advance

    def draw(self, y: int, row: bytes) -> bytes:
        if not self.lines or not self.top <= y < self.bottom:
            return row
        painted = bytearray(row)
        painted[self.left * 3 : self.right * 3] = self.panel * (self.right - self.left)
        offset = y - self.top - self.margin
        line, within = divmod(offset, self.line_height)
        glyph_row = within // self.scale
        if offset < 0 or line >= len(self.lines) or glyph_row >= _GLYPH_H:
            return bytes(painted)
        x = self.left + self.margin
        ink = self.ink * self.scale
        for char in self.lines[line]:
            bits = _FONT.get(char, _FONT["?"])[glyph_row]
            for column in range(_GLYPH_W):
                if bits & (0x10 >> column):
                    start = (x + column * self.scale) * 3
                    painted[start : start + 3 * self.scale] = ink
            x += self.advance
        return bytes(painted)


def _wrap(text: str, limit: int, max_lines: int = 3) -> list[str]:
    """`text` in lines of at most `limit` characters; the last one ends in "..." if cut short."""
    if limit < 4:
        return []
    parts = [text[start : start + limit] for start in range(0, len(text), limit)] or [""]
    if len(parts) > max_lines:
        parts = [*parts[: max_lines - 1], parts[max_lines - 1][: limit - 3] + "..."]
    return parts


def _encode(
    output_format: str, width: int, height: int, rows: list[bytes], body: dict[str, Any]
) -> bytes:
    if output_format == "png":
        return encode_png(width, height, rows)
    if output_format not in ("jpeg", "webp"):
        raise ProviderError(
            f"offline provider: unsupported output_format {output_format!r}", retryable=False
        )
    try:
        pil_image: Any = importlib.import_module("PIL.Image")
    except ImportError:
        raise ProviderError(
            f"offline provider renders {output_format} previews with Pillow, which is not "
            "installed; pip install pillow, or use output_format: png",
            retryable=False,
        ) from None
    image = pil_image.frombytes("RGB", (width, height), b"".join(rows))
    buffer = io.BytesIO()
    quality = body.get("output_compression")
    quality = quality if isinstance(quality, int) and 0 <= quality <= 100 else 90
    image.save(buffer, format=output_format.upper(), quality=quality)
    return buffer.getvalue()
