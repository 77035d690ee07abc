"""The official OpenAPI document of the images, files and batch endpoints (MIT, licence beside it).

Vendored so a plain clone runs every test: request bodies promptform sends are validated against it.
"""

from __future__ import annotations

from pathlib import Path

OPENAPI_PATH = Path(__file__).resolve().parent / "openai-images-openapi.json"
