"""The provider interface: one attempt at one request. Retries and pacing belong to apply."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from promptform.core.errors import PromptformError


@dataclass(frozen=True)
class InputFile:
    """A reference image or mask to upload: `role` is "image" or "mask"."""

    role: str
    path: Path
    sha256: str


@dataclass(frozen=True)
class ImageRequest:
    """What to send: endpoint ("images/generations" or "images/edits"), JSON parameters, files."""

    address: str
    endpoint: str
    body: dict[str, Any]
    inputs: tuple[InputFile, ...] = ()
    fingerprint: str = ""


@dataclass(frozen=True)
class Generation:
    """What came back: image bytes in order, and what the API said about them."""

    images: list[bytes]
    revised_prompt: str | None = None
    usage: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class ProviderError(PromptformError):
    """A request that failed. `retryable` says whether the same request may succeed later.

    `paid` holds image bytes the API returned (and billed) that failed a check, so the caller can
    keep them instead of paying again without a look.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        status: int | None = None,
        code: str | None = None,
        retry_after: float | None = None,
        rate_limited: bool = False,
        paid: tuple[bytes, ...] = (),
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status
        self.code = code
        self.retry_after = retry_after
        self.rate_limited = rate_limited
        self.paid = paid


class Provider(Protocol):
    kind: str

    async def generate(self, request: ImageRequest) -> Generation:
        """Make one attempt; raise ProviderError on failure (never a bare httpx error)."""
        ...

    async def aclose(self) -> None: ...
