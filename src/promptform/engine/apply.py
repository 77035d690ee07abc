"""Carrying out a plan: moves, generations (upstream first, concurrently) and deletes.

Every image costs money and is different each time, so: each completed target's outputs are written
atomically and the lockfile is rewritten right after, so a crash loses at most the requests in
flight; a file promptform replaces or deletes goes to .promptform/trash/ (hard-linked, no copy)
instead of disappearing; bytes that fail a check after being paid for go to .promptform/rescued/.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import signal
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

from promptform.core.atomic import atomic_write
from promptform.core.config import Config
from promptform.core.errors import PromptformError
from promptform.core.fingerprint import fingerprint, hash_file
from promptform.core.images import ImageError, ImageInfo, check_format, sniff
from promptform.engine.pacing import AdaptiveLimiter, LimiterClosed, backoff_delay
from promptform.engine.plan import check_budget as check_plan_budget
from promptform.engine.plan_model import Change, Plan
from promptform.manifests.render import slug
from promptform.manifests.targets import Target
from promptform.providers.base import Generation, ImageRequest, InputFile, Provider, ProviderError
from promptform.providers.factory import make_provider
from promptform.providers.http import AsyncBaseTransport, shared_client
from promptform.state.lockfile import (
    LockedInput,
    LockedOutput,
    LockEntry,
    ProviderRef,
    generated_at,
)
from promptform.state.lockfile_writer import LockfileWriter
from promptform.state.outputs import Trash, check_inside, write_outputs

WRITER_THREADS = 4
RATE_LIMIT_RETRIES = 30  # 429s are pacing, not failure: they get a budget of their own

ProviderFactory = Callable[[str], Provider]


class _Stopped(Exception):
    """Ctrl-C came before this target's request could start: it is skipped, not failed."""


@dataclass(frozen=True)
class ApplyOptions:
    concurrency: int | None = None  # overrides every provider's `concurrency`
    max_images: int | None = None
    max_cost: float | None = None
    source_commit: str | None = None


@dataclass(frozen=True)
class Failure:
    address: str
    message: str


@dataclass
class ApplyReport:
    generated: list[str] = field(default_factory=list)
    moved: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # not started because of Ctrl-C
    rescued: list[str] = field(default_factory=list)
    images: int = 0
    cost_usd: float = 0.0
    interrupted: bool = False


class ApplyObserver(Protocol):
    def started(self, plan: Plan) -> None: ...
    def finished_target(self, change: Change, report: ApplyReport) -> None: ...
    def failed_target(self, change: Change, message: str, report: ApplyReport) -> None: ...
    def retrying(self, change: Change, attempt: int, delay: float, message: str) -> None: ...
    def stopping(self, in_flight: int) -> None: ...


def check_budget(plan: Plan, config: Config, options: ApplyOptions) -> None:
    """Refuse, before any request, a plan over --max-images/--max-cost or the config's [budget]."""
    max_images = options.max_images if options.max_images is not None else config.budget.max_images
    max_cost = options.max_cost if options.max_cost is not None else config.budget.max_cost
    check_plan_budget(plan.summary(), max_images, max_cost)


class Applier:
    """Runs one plan against one lockfile writer. Create it and `await run()` once."""

    def __init__(
        self,
        config: Config,
        plan: Plan,
        writer: LockfileWriter,
        providers: ProviderFactory,
        observer: ApplyObserver,
        options: ApplyOptions,
        stop: asyncio.Event,
    ) -> None:
        self.config = config
        self.plan = plan
        self.writer = writer
        self.providers = providers
        self.observer = observer
        self.options = options
        self.stop = stop
        self.report = ApplyReport()
        self.outputs_dir = config.outputs_dir
        self.trash = Trash(config.state_dir, config.outputs_dir)
        self._limiters: dict[str, AdaptiveLimiter] = {}
        self._claimed: set[str] = set()
        self._done: dict[str, asyncio.Future[bool]] = {}
        # Outputs and lockfile rewrites happen on a few threads, so a slow disk (fsync, 1.5 MB
        # images) never holds up the event loop, and targets finishing together share a rewrite.
        self._disk = ThreadPoolExecutor(
            max_workers=WRITER_THREADS, thread_name_prefix="promptform-write"
        )

    async def run(self) -> ApplyReport:
        self.observer.started(self.plan)
        changes = self.plan.actionable
        # Paths some target of the plan writes: not to be trashed as another's old output.
        self._claimed = {
            path for change in self.plan.changes if change.target for path in change.target.outputs
        }
        self._move_all([change for change in changes if change.action == "move"])
        generating = [change for change in changes if change.generates]
        loop = asyncio.get_running_loop()
        self._done = {change.address: loop.create_future() for change in generating}
        closer = asyncio.ensure_future(self._close_limiters_on_stop())
        try:
            await asyncio.gather(*(self._generate_when_ready(change) for change in generating))
        finally:
            closer.cancel()
            # Even when abandoned (a second Ctrl-C), writes already started are let finish.
            self._disk.shutdown(wait=True)
        for change in changes:
            if change.action == "delete" and not self.stop.is_set():
                self._guarded(change, self._delete)
        self.report.interrupted = self.stop.is_set()
        return self.report

    async def _close_limiters_on_stop(self) -> None:
        # Targets waiting for a slot (or for a server's retry-after) must not start once stopped.
        await self.stop.wait()
        self.observer.stopping(sum(limiter.in_flight for limiter in self._limiters.values()))
        for limiter in list(self._limiters.values()):
            await limiter.close()

    # -- moves and deletes: no network, so they run inline --------------------------------------

    def _guarded(self, change: Change, action: Callable[[Change], None]) -> None:
        try:
            action(change)
        except (PromptformError, OSError) as exc:
            self._fail(change, str(exc))

    def _move_all(self, moves: list[Change]) -> None:
        """Moves, in two steps where one takes a path another leaves: a swap or a shift (a -> b
        while b -> c) must not put one target's image where another's is recorded."""
        taken = {new for change in moves for old, new in change.renames if old != new}
        ready: list[Change] = []
        stuck: set[str] = set()
        for change in moves:
            try:
                ready.append(self._step_aside(change, taken))
            except (PromptformError, OSError) as exc:
                self._fail(change, str(exc))
                if change.entry is not None:
                    stuck.update(output.path for output in change.entry.outputs)
        for change in ready:
            if any(new in stuck for _, new in change.renames):
                self._fail(change, "not moved: its new path still holds an output that failed")
            else:
                self._guarded(change, self._move)

    def _step_aside(self, change: Change, taken: set[str]) -> Change:
        """Outputs whose path another move takes go to a temporary name first, recorded in the
        lockfile, so after a crash the next plan moves them on."""
        assert change.entry is not None
        renames, entry = dict(change.renames), change.entry
        for index, output in enumerate(entry.outputs):
            new = renames.get(output.path, output.path)
            if output.path == new or output.path not in taken:
                continue
            aside = f"{output.path}.promptform-moving"
            self._rename_output(output, aside)
            outputs = list(entry.outputs)
            outputs[index] = output.model_copy(update={"path": aside})
            entry = entry.model_copy(update={"outputs": outputs})
            self.writer.update({change.moved_from or change.address: entry}, ())
            del renames[output.path]
            renames[aside] = new
        if entry is change.entry:
            return change
        return dataclasses.replace(change, entry=entry, renames=tuple(renames.items()))

    def _move(self, change: Change) -> None:
        assert change.entry is not None and change.target is not None
        by_old = dict(change.renames)
        outputs = []
        for output in change.entry.outputs:
            new = by_old.get(output.path, output.path)
            self._rename_output(output, new)
            outputs.append(output.model_copy(update={"path": new}))
        entry = change.entry.model_copy(update={"outputs": outputs})
        removed = (change.moved_from,) if change.moved_from else ()
        self.writer.update({change.address: entry}, removed)
        self.report.moved.append(change.address)
        self.observer.finished_target(change, self.report)

    def _rename_output(self, output: LockedOutput, new: str) -> None:
        source = check_inside(self.outputs_dir, self.outputs_dir / output.path)
        destination = check_inside(self.outputs_dir, self.outputs_dir / new)
        if source == destination:
            return
        if not source.exists():
            # A crash after the rename but before the lockfile write: the file is already there.
            if destination.is_file() and hash_file(destination) == output.sha256:
                return
            raise PromptformError(f"cannot move {output.path}: the file is missing (see drift)")
        self.trash.keep(destination, move=True)
        destination.parent.mkdir(parents=True, exist_ok=True)
        source.replace(destination)

    def _delete(self, change: Change) -> None:
        assert change.entry is not None
        for output in change.entry.outputs:
            if output.path not in self._claimed:
                self.trash.keep(self.outputs_dir / output.path, move=True)
        self.writer.remove(change.address)
        self.report.deleted.append(change.address)
        self.observer.finished_target(change, self.report)

    # -- generations --------------------------------------------------------------------------

    async def _generate_when_ready(self, change: Change) -> None:
        assert change.target is not None
        done = self._done[change.address]
        try:
            for upstream in change.target.upstream:
                waiting = self._done.get(upstream)
                if waiting is not None and not await asyncio.shield(waiting):
                    if self.stop.is_set():
                        self.report.skipped.append(change.address)
                    else:
                        self._fail(change, f"not generated: its input `{upstream}` failed")
                    done.set_result(False)
                    return
            if self.stop.is_set():
                self.report.skipped.append(change.address)
                done.set_result(False)
                return
            ok = await self._generate(change, change.target)
            done.set_result(ok)
        finally:
            if not done.done():
                done.set_result(False)

    async def _generate(self, change: Change, target: Target) -> bool:
        name, settings = self.config.provider(target.provider)
        limiter = self._limiter(name, settings.concurrency)
        try:
            request = self._request(target)
            generation = await self._send(change, request, limiter, settings.max_retries)
            store = functools.partial(self._store, change, target, request, generation)
            # The slot is held until the target is recorded: a paid image is "in flight" until
            # then (that bounds what a kill -9 can lose), and a disk slower than the network
            # cannot pile up downloaded images in memory.
            try:
                images = await asyncio.get_running_loop().run_in_executor(self._disk, store)
            finally:
                await limiter.release()
        except _Stopped:
            self.report.skipped.append(change.address)
            return False
        except (PromptformError, OSError) as exc:
            self._fail(change, str(exc))
            return False
        except asyncio.CancelledError:
            self.report.skipped.append(change.address)
            raise
        self.report.generated.append(target.address)
        self.report.images += images
        self.report.cost_usd += change.cost_usd or 0.0
        self.observer.finished_target(change, self.report)
        return True

    def _limiter(self, name: str, concurrency: int) -> AdaptiveLimiter:
        if name not in self._limiters:
            self._limiters[name] = AdaptiveLimiter(self.options.concurrency or concurrency)
        return self._limiters[name]

    def _request(self, target: Target) -> ImageRequest:
        # Reference images are hashed now, not at plan time: an upstream may just have replaced them.
        inputs = tuple(
            InputFile(
                item.role, self.config.root / item.path, hash_file(self.config.root / item.path)
            )
            for item in target.inputs
        )
        return ImageRequest(
            address=target.address,
            endpoint=target.endpoint,
            body=target.body,
            inputs=inputs,
            fingerprint=fingerprint(
                target.provider_kind,
                target.endpoint,
                target.body,
                ((item.role, item.sha256) for item in inputs),
            ),
        )

    async def _send(
        self, change: Change, request: ImageRequest, limiter: AdaptiveLimiter, max_retries: int
    ) -> Generation:
        """The generation, returned holding a slot of `limiter` (on success only)."""
        provider = self.providers(change.target.provider if change.target else "")
        failures = rate_limits = 0
        while True:
            await self._acquire(limiter)
            try:
                generation = await provider.generate(request)
            except ProviderError as exc:
                await limiter.release(rate_limited=exc.rate_limited, retry_after=exc.retry_after)
                kept = self._rescue(request.address, list(exc.paid)) if exc.paid else None
                if exc.rate_limited and exc.retryable:
                    rate_limits += 1
                    attempt, budget = rate_limits, RATE_LIMIT_RETRIES
                else:
                    failures += 1
                    attempt, budget = failures, max_retries
                if not exc.retryable or attempt > budget:
                    if kept is None:
                        raise
                    raise PromptformError(f"{exc}; the images were kept in {kept}") from None
                if self.stop.is_set():
                    raise _Stopped from None
                delay = backoff_delay(attempt, exc.retry_after)
                self.observer.retrying(change, attempt, delay, str(exc))
                await _sleep_unless(self.stop, delay)
                if self.stop.is_set():
                    raise _Stopped from None
                continue
            except BaseException:
                await limiter.release()
                raise
            return generation  # still holding the slot: the caller releases it once stored

    async def _acquire(self, limiter: AdaptiveLimiter) -> None:
        try:
            await limiter.acquire()
        except LimiterClosed:
            raise _Stopped from None
        if self.stop.is_set():  # stopped while this task was being woken for a free slot
            await limiter.release()
            raise _Stopped

    def _store(
        self, change: Change, target: Target, request: ImageRequest, generation: Generation
    ) -> int:
        """Check, write and record one target's images (on a writer thread); how many."""
        if len(generation.images) != len(target.outputs):
            rescued = self._rescue(target.address, generation.images)
            raise PromptformError(
                f"asked for {len(target.outputs)} images, got {len(generation.images)}; "
                f"kept them in {rescued}"
            )
        infos: list[ImageInfo] = []
        for data in generation.images:
            try:
                infos.append(check_format(data, target.output_format))
            except ImageError as exc:
                rescued = self._rescue(target.address, generation.images)
                raise PromptformError(f"{exc}; the images were kept in {rescued}") from None
        outputs = write_outputs(
            self.outputs_dir,
            self.trash,
            target.outputs,
            list(zip(generation.images, infos, strict=True)),
            change.entry.outputs if change.entry is not None else (),
            self._claimed,
        )
        entry = LockEntry(
            fingerprint=request.fingerprint,
            request=target.body,
            endpoint=target.endpoint,
            inputs=[
                LockedInput(role=item.role, path=target_input.path, sha256=item.sha256)
                for item, target_input in zip(request.inputs, target.inputs, strict=True)
            ],
            outputs=outputs,
            provider=ProviderRef(kind=target.provider_kind, name=target.provider),
            model=target.model,
            generated_at=generated_at(),
            source_commit=self.options.source_commit,
            revised_prompt=generation.revised_prompt,
            usage=generation.usage,
            cost_usd=change.cost_usd,
        )
        self.writer.update({target.address: entry}, ())
        return len(outputs)

    def _rescue(self, address: str, images: list[bytes]) -> str:
        """Keep bytes we paid for but cannot use, so nobody pays for them twice without a look."""
        base = self.config.state_dir / "rescued" / f"{slug(address)}-{int(time.time())}"
        folder, attempt = base, 1
        while folder.exists():  # two rescues of one target within a second (a retry)
            attempt += 1
            folder = base.with_name(f"{base.name}-{attempt}")
        folder.mkdir(parents=True)
        for index, data in enumerate(images, 1):
            atomic_write(folder / f"{index}.{_extension(data)}", data)
        shown = folder.relative_to(self.config.root).as_posix()
        self.report.rescued.append(shown)
        return shown

    def _fail(self, change: Change, message: str) -> None:
        self.report.failures.append(Failure(change.address, message))
        self.observer.failed_target(change, message, self.report)


def _extension(data: bytes) -> str:
    try:
        return sniff(data).format
    except ImageError:
        return "bin"


async def _sleep_unless(stop: asyncio.Event, delay: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), delay)


def run_apply(
    config: Config,
    plan: Plan,
    writer: LockfileWriter,
    observer: ApplyObserver,
    options: ApplyOptions,
    environ: Mapping[str, str],
    transport: AsyncBaseTransport | None = None,
) -> ApplyReport:
    """Apply `plan` with one shared HTTP client; first Ctrl-C drains, a second one abandons."""
    return asyncio.run(_run(config, plan, writer, observer, options, environ, transport))


async def _run(
    config: Config,
    plan: Plan,
    writer: LockfileWriter,
    observer: ApplyObserver,
    options: ApplyOptions,
    environ: Mapping[str, str],
    transport: AsyncBaseTransport | None,
) -> ApplyReport:
    stop = asyncio.Event()
    client = shared_client(transport)
    providers: dict[str, Provider] = {}

    def provider_named(name: str) -> Provider:
        if name not in providers:
            provider_name, settings = config.provider(name)
            providers[name] = make_provider(provider_name, settings, client, environ)
        return providers[name]

    # Fail on a missing API key before the first request, not once per target.
    for change in plan.actionable:
        if change.generates and change.target is not None:
            provider_named(change.target.provider)
    applier = Applier(config, plan, writer, provider_named, observer, options, stop)
    task = asyncio.ensure_future(applier.run())
    restore = _install_interrupt_handlers(stop, task)
    try:
        return await task
    except asyncio.CancelledError:
        applier.report.interrupted = True
        return applier.report
    finally:
        restore()
        for provider in providers.values():
            await provider.aclose()
        await client.aclose()


def _install_interrupt_handlers(
    stop: asyncio.Event, task: asyncio.Future[ApplyReport]
) -> Callable[[], None]:
    loop = asyncio.get_running_loop()

    def interrupt() -> None:
        if stop.is_set():
            task.cancel()  # second Ctrl-C: abandon the requests in flight
        stop.set()

    installed = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, interrupt)
            installed.append(signum)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
            pass

    def restore() -> None:
        for signum in installed:
            loop.remove_signal_handler(signum)

    return restore
