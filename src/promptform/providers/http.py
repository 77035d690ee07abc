"""The one shared HTTP client of an apply run (only providers know it is httpx)."""

from __future__ import annotations

import httpx

AsyncBaseTransport = httpx.AsyncBaseTransport


def shared_client(transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    """A client sized for many concurrent image requests; timeouts are set per request."""
    return httpx.AsyncClient(
        transport=transport,
        limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
        timeout=httpx.Timeout(300.0, connect=30.0),
        follow_redirects=False,
    )
