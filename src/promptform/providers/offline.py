"""The offline provider: labelled preview images rendered locally from the request's fingerprint.

For demos, tests and CI without an API key. The same request always gives the same bytes; every image
says "OFFLINE PREVIEW" so nobody mistakes one for a generated picture.
"""

from __future__ import annotations

import asyncio
import hashlib
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
# The images API's output formats (its OpenAPI document, CreateImageRequest.output_format).
OUTPUT_FORMATS = ("png", "jpeg", "webp")

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
    """Renders previews instead of calling an API, in every output format the images API offers."""

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
    """The preview images for `request`: `n` of them, of its size, output format and background."""
    body = request.body
    width, height = _size(body.get("size"))
    count = _count(body.get("n", 1))
    output_format = _output_format(body.get("output_format"))
    transparent = _transparent(body.get("background"), output_format)
    seed = request.fingerprint or hashlib.sha256(canonical_json(body)).hexdigest()
    images = []
    for index in range(count):
        digest = hashlib.sha256(f"{seed}#{index}".encode()).digest()
        lines = [
            "OFFLINE PREVIEW",
            request.address,
            f"{width}x{height}  {index + 1}/{count}  {_short(seed)}",
        ]
        label = _Label(width, height, max(1, min(width, height) // 200), lines)
        rows = list(_rows(width, height, digest, label))
        alpha = [label.alpha_row(y) for y in range(height)] if transparent else None
        images.append(_encode(output_format, width, height, rows, alpha, body))
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


def _output_format(value: Any) -> str:
    output_format = str(value or "png")
    if output_format not in OUTPUT_FORMATS:
        raise ProviderError(
            f"offline provider: unsupported output_format {output_format!r}", retryable=False
        )
    return output_format


def _transparent(value: Any, output_format: str) -> bool:
    if value != "transparent":
        return False
    # The images API has the same rule: JPEG has no alpha channel.
    if output_format not in ("png", "webp"):
        raise ProviderError(
            "offline provider: background transparent needs output_format png or webp, "
            f"not {output_format}",
            retryable=False,
        )
    return True


def _count(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 10:
        raise ProviderError(f"offline provider: n must be 1..10, not {value!r}", retryable=False)
    return value


def _short(seed: str) -> str:
    return seed.rsplit(":", 1)[-1][:12]


def _rows(width: int, height: int, digest: bytes, label: _Label) -> Iterator[bytes]:
    """A vertical gradient between two colours from `digest`, checkered, with the label on a panel."""
    top, bottom = digest[0:3], digest[3:6]
    tile = max(8, min(width, height) // 16)
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
        self.width = width
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

    def covers(self, y: int) -> bool:
        return bool(self.lines) and self.top <= y < self.bottom

    def alpha_row(self, y: int) -> bytes:
        """Row `y` of the alpha channel of a transparent preview: only the label panel is opaque."""
        if not self.covers(y):
            return bytes(self.width)
        return (
            bytes(self.left) + b"\xff" * (self.right - self.left) + bytes(self.width - self.right)
        )

    def draw(self, y: int, row: bytes) -> bytes:
        if not self.covers(y):
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
    output_format: str,
    width: int,
    height: int,
    rows: list[bytes],
    alpha: list[bytes] | None,
    body: dict[str, Any],
) -> bytes:
    if output_format == "png" and alpha is None:
        # Opaque PNG needs no imaging library and is the fastest to encode (see encode_png).
        return encode_png(width, height, rows)
    try:
        # Imported here so commands that render nothing (plan, status) do not pay for loading Pillow.
        from PIL import Image
    except ImportError:
        raise ProviderError(
            f"offline provider renders {output_format} previews with Pillow, a dependency of "
            "promptform that this environment lacks; reinstall promptform or pip install pillow",
            retryable=False,
        ) from None
    image = Image.frombytes("RGB", (width, height), b"".join(rows))
    if alpha is not None:
        image.putalpha(Image.frombytes("L", (width, height), b"".join(alpha)))
    buffer = io.BytesIO()
    if output_format == "png":
        image.save(buffer, format="PNG")
        return buffer.getvalue()
    compression = body.get("output_compression")
    quality = compression if isinstance(compression, int) and 0 <= compression <= 100 else 90
    image.save(buffer, format=output_format.upper(), quality=quality)
    return buffer.getvalue()
