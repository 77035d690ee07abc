"""What batch submit and collect need from a Batch API client, and where they get one.

providers/batch.py's BatchClient is the one used; the engine is written against these protocols so
its tests can drive it with an in-memory client too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from promptform.core.config import Config, ProviderSettings
from promptform.core.errors import ConfigError
from promptform.providers.base import Generation

# Statuses of a batch that will not change any more.
FINISHED_STATUSES = frozenset({"completed", "failed", "expired", "cancelled"})
# Error codes of lines an expired or cancelled batch never ran: not failures, just not done.
UNRUN_CODES = frozenset({"batch_expired", "batch_cancelled"})


class RequestCounts(Protocol):
    @property
    def total(self) -> int: ...
    @property
    def completed(self) -> int: ...
    @property
    def failed(self) -> int: ...


class BatchState(Protocol):
    """A batch as the API describes it (providers.batch.BatchInfo)."""

    @property
    def id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def input_file_id(self) -> str | None: ...
    @property
    def created_at(self) -> int: ...  # unix seconds
    @property
    def output_file_id(self) -> str | None: ...
    @property
    def error_file_id(self) -> str | None: ...
    @property
    def request_counts(self) -> RequestCounts: ...
    @property
    def metadata(self) -> Mapping[str, str]: ...
    @property
    def errors(self) -> tuple[str, ...]: ...


class LineResult(Protocol):
    """One line of a batch's output or error file (providers.batch.BatchLineResult)."""

    @property
    def custom_id(self) -> str: ...
    @property
    def status_code(self) -> int | None: ...
    @property
    def body(self) -> Any: ...
    @property
    def error_message(self) -> str | None: ...
    @property
    def error_code(self) -> str | None: ...
    @property
    def ok(self) -> bool: ...


class BatchApi(Protocol):
    async def upload_input(self, path: Path) -> str: ...
    async def create_batch(
        self, input_file_id: str, endpoint: str, metadata: dict[str, str]
    ) -> BatchState: ...
    async def file_bytes(self, file_id: str) -> int | None:
        """The size the Files API reports for file `file_id`, or None when it reports none."""
        ...

    async def retrieve(self, batch_id: str) -> BatchState: ...
    def list_batches(self) -> AsyncIterator[BatchState]: ...
    async def cancel(self, batch_id: str) -> BatchState: ...
    def stream_lines(self, file_id: str) -> AsyncIterator[bytes]: ...
    async def generation(self, result: Any, output_format: str, n: int) -> Generation:
        """The images of a successful result line, decoded and checked as apply's are."""
        ...

    async def aclose(self) -> None: ...


# A client for the provider called NAME (opened once per provider and run).
BatchClients = Callable[[str], BatchApi]
# One line of an output or error file, parsed (ProviderError when it is not the documented shape).
LineParser = Callable[[bytes], LineResult]


def require_batch_provider(config: Config, name: str) -> None:
    """Refuse, naming the setting, a provider not declared to offer the Batch API."""
    provider_name, settings = config.provider(name)
    if not settings.batch:
        raise ConfigError(
            f"provider '{provider_name}' does not offer the Batch API in this config: add "
            f"`batch = true` under [providers.{provider_name}] (only if its API has /v1/batches), "
            "or apply without --batch"
        )


class ClientSet(Protocol):
    """The Batch API clients of one run, and how their result lines are read."""

    def __call__(self, name: str) -> BatchApi: ...
    def parse_line(self, line: bytes) -> LineResult: ...
    async def aclose(self) -> None: ...


class ProviderClients:
    """Batch API clients for a run, one per provider, opened on first use and closed together."""

    def __init__(self, config: Config, environ: Mapping[str, str]) -> None:
        self.config = config
        self.environ = environ
        self._open: dict[str, BatchApi] = {}

    def __call__(self, name: str) -> BatchApi:
        provider_name, settings = self.config.provider(name)
        if provider_name not in self._open:
            require_batch_provider(self.config, provider_name)
            self._open[provider_name] = _provider_client(provider_name, settings, self.environ)
        return self._open[provider_name]

    async def aclose(self) -> None:
        for client in self._open.values():
            await client.aclose()
        self._open.clear()

    @staticmethod
    def parse_line(line: bytes) -> LineResult:
        from promptform.providers.batch import parse_result_line

        return parse_result_line(line)


def _provider_client(name: str, settings: ProviderSettings, environ: Mapping[str, str]) -> BatchApi:
    # providers.batch (and httpx) is imported only by runs that talk to a Batch API.
    from promptform.providers.batch import BatchClient

    return BatchClient(name, settings, environ)
