"""Carrying out a plan: moves, generations (upstream first, concurrently) and deletes.

Every image costs money and is different each time, so: each completed target's outputs are written
atomically and the lockfile is rewritten right after, so a crash loses at most the requests in
flight; a file promptform replaces or deletes goes to .promptform/trash/ (hard-linked, no copy)
instead of disappearing; bytes that fail a check after being paid for go to .promptform/rescued/.

This module orders the work; moves.py moves and deletes files, sending.py sends requests with
retries, storing.py turns responses into outputs and lock entries.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor

from promptform.core.config import Config
from promptform.core.errors import PromptformError
from promptform.core.paths import path_key
from promptform.engine.apply_model import ApplyObserver, ApplyOptions, ApplyReport, Failure
from promptform.engine.moves import OutputMover
from promptform.engine.pacing import AdaptiveLimiter
from promptform.engine.plan import check_budget as check_plan_budget
from promptform.engine.plan_model import Change, Plan
from promptform.engine.sending import ProviderFactory, RequestSender, Stopped, build_request
from promptform.engine.storing import ResultStore
from promptform.manifests.targets import Target
from promptform.providers.base import Provider
from promptform.providers.factory import make_provider
from promptform.providers.http import AsyncBaseTransport, shared_client
from promptform.state.lockfile_writer import LockfileWriter
from promptform.state.outputs import Trash, step_aside_recorded

WRITER_THREADS = 4


def check_budget(plan: Plan, config: Config, options: ApplyOptions) -> None:
    """Refuse, before any request, a plan over --max-images/--max-cost or the config's [budget]."""
    check_plan_budget(plan.summary(), *options.budget(config.budget))


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
        self.observer = observer
        self.options = options
        self.stop = stop
        self.report = ApplyReport()
        self.writer = writer
        trash = Trash(config.state_dir, config.outputs_dir)
        # Paths any current target writes, in this plan or not: never trashed as another's old
        # output. Case-folded: on macOS or Windows `Hero.png` and `hero.png` are one file.
        claimed = plan.target_paths
        self.mover = OutputMover(
            config.outputs_dir, trash, writer, claimed, self._finished, self._fail
        )
        self.store = ResultStore(config, writer, trash, claimed, self.report, options.source_commit)
        self.sender = RequestSender(providers, observer, stop, self.store.rescue)
        self._limiters: dict[str, AdaptiveLimiter] = {}
        self._done: dict[str, asyncio.Future[bool]] = {}
        # Outputs and lockfile rewrites happen on a few threads, so a slow disk (fsync, 1.5 MB
        # images) never holds up the event loop, and targets finishing together share a rewrite.
        self._disk = ThreadPoolExecutor(
            max_workers=WRITER_THREADS, thread_name_prefix="promptform-write"
        )

    async def run(self) -> ApplyReport:
        self.observer.started(self.plan)
        changes = self.plan.actionable
        moves = [change for change in changes if change.action == "move"]
        generating = [change for change in changes if change.generates]
        # A file another entry records (a target outside --target, a replace that may fail) is
        # stepped aside and recorded before anything lands on its path. Moving entries step
        # aside themselves; generations clear their paths after the moves, which may fail.
        outputs_dir = self.config.outputs_dir
        step_aside_recorded(
            outputs_dir,
            self.writer,
            _claims(moves),
            leave={change.moved_from or change.address for change in moves},
        )
        self.mover.move_all(moves)
        step_aside_recorded(outputs_dir, self.writer, _claims(generating))
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
                self.mover.delete(change)
        self.report.interrupted = self.stop.is_set()
        return self.report

    async def _close_limiters_on_stop(self) -> None:
        # Targets waiting for a slot (or for a server's retry-after) must not start once stopped.
        await self.stop.wait()
        self.observer.stopping(sum(limiter.in_flight for limiter in self._limiters.values()))
        for limiter in list(self._limiters.values()):
            await limiter.close()

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
            request = build_request(self.config, target)
            generation = await self.sender.send(change, request, limiter, settings.max_retries)
            store = functools.partial(self.store.store, change, target, request, generation)
            # The slot is held until the target is recorded: a paid image is "in flight" until
            # then (that bounds what a kill -9 can lose), and a disk slower than the network
            # cannot pile up downloaded images in memory.
            try:
                images = await self._stored(store, change, target)
            finally:
                await limiter.release()
        except Stopped:
            self.report.skipped.append(change.address)
            return False
        except (PromptformError, OSError) as exc:
            self._fail(change, str(exc))
            return False
        except asyncio.CancelledError:
            failed = any(failure.address == change.address for failure in self.report.failures)
            if change.address in self.report.generated or failed:
                pass  # its answer came back and was written, or failed writing (_stored)
            elif change.address in self.sender.sent:
                self.report.abandoned.append(change.address)
            else:
                self.report.skipped.append(change.address)
            raise
        self._generated(change, target, images)
        return True

    async def _stored(self, store: Callable[[], int], change: Change, target: Target) -> int:
        """Run `store` on the disk thread. A second Ctrl-C does not abandon images being written:
        the write (local disk, moments) finishes and is reported as what it is, then the
        cancellation goes on."""
        writing = asyncio.get_running_loop().run_in_executor(self._disk, store)
        try:
            return await asyncio.shield(writing)
        except asyncio.CancelledError:
            while not writing.done():  # however many more Ctrl-Cs come
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait({writing})  # neither cancels it nor raises its error
            try:
                images = writing.result()
            except (PromptformError, OSError) as exc:
                self._fail(change, str(exc))
            else:
                self._generated(change, target, images)
            raise

    def _generated(self, change: Change, target: Target, images: int) -> None:
        self.report.generated.append(target.address)
        self.report.images += images
        self.report.cost_usd += change.cost_usd or 0.0
        self.observer.finished_target(change, self.report)

    def _limiter(self, name: str, concurrency: int) -> AdaptiveLimiter:
        if name not in self._limiters:
            self._limiters[name] = AdaptiveLimiter(self.options.concurrency or concurrency)
        return self._limiters[name]

    def _finished(self, change: Change) -> None:
        """A move or delete is done."""
        done = self.report.moved if change.action == "move" else self.report.deleted
        done.append(change.address)
        self.observer.finished_target(change, self.report)

    def _fail(self, change: Change, message: str) -> None:
        self.report.failures.append(Failure(change.address, message))
        self.observer.failed_target(change, message, self.report)


def _claims(changes: list[Change]) -> dict[str, set[str]]:
    """`path_key` -> the addresses (and a renamed target's old address) putting a file there."""
    claims: dict[str, set[str]] = {}
    for change in changes:
        owners = {change.address, change.moved_from or change.address}
        if change.action == "move":
            paths = [new for _, new in change.renames]
        else:
            paths = list(change.target.outputs) if change.target is not None else []
        for path in paths:
            claims.setdefault(path_key(path), set()).update(owners)
    return claims


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
