"""`batch collect`: record the images of finished batches, as apply records its own.

Each finished batch's output file is streamed line by line (never whole in memory). A result whose
target still asks for what was submitted is checked, written atomically and recorded with the
batch's id; paid bytes that cannot be used are rescued as apply rescues them. A result whose
manifest changed since submission (stale) goes to the trash. Failed lines are reported with the
API's message; they, and the lines an expired or cancelled batch never ran, return to `create`.

Crash safety: images are written, then recorded (a group of targets per lockfile rewrite, so a
collect of 50,000 targets rewrites the lockfile a few hundred times, not 50,000), and the
submission file is removed only once its whole batch is recorded. A collect killed at any point is
collected again: lines whose lock entry already names this batch and fingerprint are skipped.
"""

from __future__ import annotations

import asyncio
import functools
import shutil
import threading
import time
from collections.abc import Mapping, Sequence, Set
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from promptform.core.config import Config
from promptform.core.errors import PromptformError
from promptform.core.paths import path_key
from promptform.engine.batch_api import (
    FINISHED_STATUSES,
    UNRUN_CODES,
    BatchApi,
    BatchClients,
    BatchState,
    LineParser,
    LineResult,
)
from promptform.engine.batch_submit import finish_interrupted
from promptform.engine.storing import checked_images, not_stored, rescue_paid
from promptform.manifests.render import slug
from promptform.manifests.targets import Target
from promptform.providers.base import Generation, ProviderError
from promptform.state.lockfile import (
    LockedInput,
    LockedOutput,
    LockEntry,
    ProviderRef,
    writable_text,
)
from promptform.state.lockfile import generated_at as generated_now
from promptform.state.lockfile_writer import LockfileWriter
from promptform.state.outputs import (
    Staged,
    StagedOutputs,
    Trash,
    held_by_others,
    put_back,
)
from promptform.state.pending_batches import (
    Submission,
    SubmittedTarget,
    read_submissions,
    remove_submission,
)

# Targets recorded per lockfile rewrite: at least this many, and at most LOCK_REWRITES rewrites per
# batch, so collecting a big batch into a big lockfile stays linear.
RECORD_EVERY = 256
LOCK_REWRITES = 32
# Images are written (and fsynced) on a few threads, as apply writes them; at most IN_FLIGHT
# targets' decoded images wait for the disk, which bounds memory whatever the output file's size.
WRITER_THREADS = 4
IN_FLIGHT = 16
# Under .promptform/: images collected and not yet recorded wait here (cleared by every collect).
STAGING_DIR = "collect-staging"
FIRST_POLL_S = 1.0
LONGEST_POLL_S = 60.0


@dataclass
class BatchOutcome:
    """What collecting one batch did, per target address."""

    submission: Submission
    status: str
    recorded: list[str] = field(default_factory=list)
    already_recorded: list[str] = field(default_factory=list)  # by an interrupted collect
    stale: list[str] = field(default_factory=list)  # results put in the trash
    failed: list[tuple[str, str]] = field(default_factory=list)  # (address, the API's message)
    returned: list[tuple[str, str]] = field(default_factory=list)  # (address, why) never ran
    rescued: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)  # lines not in the documented shape
    # (address, why) billed results not read this time (a failed image download): the submission
    # is kept, so the next collect reads them again.
    deferred: list[tuple[str, str]] = field(default_factory=list)
    images: int = 0
    cost_usd: float = 0.0


@dataclass
class CollectReport:
    collected: list[BatchOutcome] = field(default_factory=list)
    unfinished: list[tuple[Submission, BatchState]] = field(default_factory=list)
    unstarted: list[Submission] = field(
        default_factory=list
    )  # no batch: `apply --batch` starts it where it was uploaded
    timed_out: bool = False

    @property
    def failed_lines(self) -> int:
        """Lines that failed, or whose paid result could not be read yet."""
        return sum(len(outcome.failed) + len(outcome.deferred) for outcome in self.collected)


@dataclass(frozen=True)
class CollectOptions:
    wait: bool = False  # poll unfinished batches until they finish
    timeout_s: float | None = None  # with `wait`: give up after this long


async def collect_batches(
    config: Config,
    targets: Mapping[str, Target],
    writer: LockfileWriter,
    clients: BatchClients,
    parse_line: LineParser,
    options: CollectOptions,
) -> CollectReport:
    """Collect every finished batch; with `options.wait`, wait for the others too."""
    await finish_interrupted(config, clients)
    # What a stopped collect staged was never recorded; the batches still hold those results.
    shutil.rmtree(config.state_dir / STAGING_DIR, ignore_errors=True)
    report = CollectReport()
    collector = _Collector(config, targets, writer, parse_line)
    try:
        return await _collect_all(clients, collector, report, options)
    finally:
        collector.disk.shutdown(wait=True)


async def _collect_all(
    clients: BatchClients, collector: _Collector, report: CollectReport, options: CollectOptions
) -> CollectReport:
    config = collector.config
    pending = []
    for submission in read_submissions(config.batches_dir, config.root):
        if submission.batch_id is None:
            report.unstarted.append(submission)
        else:
            pending.append(submission)
    deadline = None if options.timeout_s is None else time.monotonic() + options.timeout_s
    poll = FIRST_POLL_S  # doubled after each poll, up to LONGEST_POLL_S
    while True:
        unfinished: list[tuple[Submission, BatchState]] = []
        for submission in pending:
            assert submission.batch_id is not None
            client = clients(submission.provider)
            info = await client.retrieve(submission.batch_id)
            if info.status in FINISHED_STATUSES:
                report.collected.append(await collector.collect(client, submission, info))
            else:
                unfinished.append((submission, info))
        pending = [submission for submission, _ in unfinished]
        report.unfinished = unfinished
        if not unfinished or not options.wait:
            return report
        if deadline is not None and time.monotonic() + poll > deadline:
            report.timed_out = True
            return report
        await asyncio.sleep(poll)
        poll = min(poll * 2, LONGEST_POLL_S)


class _Collector:
    def __init__(
        self,
        config: Config,
        targets: Mapping[str, Target],
        writer: LockfileWriter,
        parse_line: LineParser,
    ) -> None:
        self.parse_line = parse_line
        self.disk = ThreadPoolExecutor(WRITER_THREADS, thread_name_prefix="promptform-collect")
        self._writing: dict[asyncio.Future[int], SubmittedTarget] = {}
        self.config = config
        self.targets = targets
        self._by_fingerprint: dict[str, Target] | None = None  # built when a rename needs it
        self.writer = writer
        self.trash = Trash(config.state_dir, config.outputs_dir)
        # Paths any current target writes: never trashed as another's old output.
        self.claimed = frozenset(
            path_key(path) for target in targets.values() for path in target.outputs
        )

    async def collect(
        self, client: BatchApi, submission: Submission, info: BatchState
    ) -> BatchOutcome:
        outcome = BatchOutcome(submission, info.status)
        if info.status == "failed":
            reason = "; ".join(info.errors) or "the batch failed without a reason"
            outcome.returned = [
                (item.address, f"the batch failed validation: {reason}")
                for item in submission.targets
            ]
        else:
            await self._read_results(client, submission, info, outcome)
        if not outcome.deferred:
            remove_submission(self.config.batches_dir, submission.id)
        return outcome

    async def _read_results(
        self, client: BatchApi, submission: Submission, info: BatchState, outcome: BatchOutcome
    ) -> None:
        by_custom_id = {item.custom_id: item for item in submission.targets}
        recorder = _Recorder(self.config, self.writer, self.trash, self.claimed, info.id, outcome)
        seen: set[str] = set()
        try:
            await self._read_files(client, info, by_custom_id, recorder, seen, outcome)
            await self._settle(recorder, outcome, asyncio.ALL_COMPLETED)
        finally:
            # Never leave a thread writing behind a failure: let the writes started finish.
            if self._writing:
                await asyncio.wait(list(self._writing))
                self._writing.clear()
        recorder.flush()
        why = {
            "expired": "the batch expired before this request ran",
            "cancelled": "the batch was cancelled before this request ran",
        }.get(info.status, "the batch's output has no result for this request")
        outcome.returned = [
            (item.address, why) for item in submission.targets if item.custom_id not in seen
        ]

    async def _read_files(
        self,
        client: BatchApi,
        info: BatchState,
        by_custom_id: Mapping[str, SubmittedTarget],
        recorder: _Recorder,
        seen: set[str],
        outcome: BatchOutcome,
    ) -> None:
        for file_id in (info.output_file_id, info.error_file_id):
            if not file_id:
                continue
            lines = client.stream_lines(file_id)
            try:
                async for line in lines:
                    if line.strip():
                        await self._line(client, line, by_custom_id, recorder, seen, outcome)
            finally:
                # Stopped early (a failure): the connection the file streams over is freed now.
                close = getattr(lines, "aclose", None)
                if close is not None:
                    await close()

    async def _line(
        self,
        client: BatchApi,
        line: bytes,
        by_custom_id: Mapping[str, SubmittedTarget],
        recorder: _Recorder,
        seen: set[str],
        outcome: BatchOutcome,
    ) -> None:
        try:
            result = self.parse_line(line)
        except ProviderError as exc:
            outcome.unreadable.append(str(exc))
            return
        item = by_custom_id.get(result.custom_id)
        if item is None or result.custom_id in seen:
            return  # not a request of this submission's
        seen.add(result.custom_id)
        if result.ok:
            await self._result(client, recorder, item, result, outcome)
        elif result.error_code in UNRUN_CODES:
            seen.discard(result.custom_id)  # returned below, with why
        else:
            message = result.error_message or f"HTTP {result.status_code}"
            outcome.failed.append((item.address, message))

    async def _result(
        self,
        client: BatchApi,
        recorder: _Recorder,
        item: SubmittedTarget,
        result: LineResult,
        outcome: BatchOutcome,
    ) -> None:
        target = self._target_for(item)
        if recorder.already_recorded(item, target.address if target else item.address):
            outcome.already_recorded.append(item.address)
            return
        try:
            generation = await client.generation(result, item.output_format, len(item.outputs))
        except ProviderError as exc:
            message = str(exc)
            if result.ok and exc.retryable and not exc.paid:
                # Billed, and still in the batch's output file: read it again next time rather
                # than send the target back to create and pay for it twice.
                outcome.deferred.append((item.address, message))
                return
            if exc.paid:
                message += f"; the images were kept in {recorder.rescue(item, exc.paid, message)}"
            outcome.failed.append((item.address, message))
            return
        if target is None or target.fingerprint != item.fingerprint:
            for path, data in zip(item.outputs, generation.images, strict=False):
                self.trash.keep_unused(path, data)
            outcome.stale.append(item.address)
            return
        store = functools.partial(recorder.store, target, item, generation)
        self._writing[asyncio.get_running_loop().run_in_executor(self.disk, store)] = item
        if len(self._writing) >= IN_FLIGHT:
            await self._settle(recorder, outcome, asyncio.FIRST_COMPLETED)
        else:
            self._count({write for write in self._writing if write.done()}, recorder, outcome)

    def _target_for(self, item: SubmittedTarget) -> Target | None:
        """The target a result belongs to: the one at its address, or, when no target has that
        address any more (a renamed manifest), one rendering the same request that no lock entry
        records yet, as plan shows it waiting."""
        target = self.targets.get(item.address)
        if target is not None:
            return target
        if self._by_fingerprint is None:
            self._by_fingerprint = {
                candidate.fingerprint: candidate for candidate in self.targets.values()
            }
        renamed = self._by_fingerprint.get(item.fingerprint)
        if renamed is None:
            return None
        entry = self.writer.entry(renamed.address)
        # Locked at another request: that target is its own; at this one: a re-collect skips it.
        return renamed if entry is None or entry.fingerprint == item.fingerprint else None

    async def _settle(self, recorder: _Recorder, outcome: BatchOutcome, until: str) -> None:
        """Wait for writes (the first to finish, or all), count them, record full groups."""
        if not self._writing:
            return
        done, _ = await asyncio.wait(list(self._writing), return_when=until)
        self._count(done, recorder, outcome)

    def _count(
        self, done: Set[asyncio.Future[int]], recorder: _Recorder, outcome: BatchOutcome
    ) -> None:
        for write in done:
            item = self._writing.pop(write)
            try:
                outcome.images += write.result()
            except (PromptformError, OSError) as exc:
                outcome.failed.append((item.address, str(exc)))
                continue
            outcome.recorded.append(item.address)
            outcome.cost_usd += item.cost_usd or 0.0
        recorder.flush_if_full()


class _Recorder:
    """Writes a batch's images and records them, a group of targets per lockfile rewrite."""

    def __init__(
        self,
        config: Config,
        writer: LockfileWriter,
        trash: Trash,
        claimed: Set[str],
        batch_id: str,
        outcome: BatchOutcome,
    ) -> None:
        self.config = config
        self.writer = writer
        self.trash = trash
        self.claimed = claimed
        self.batch_id = batch_id
        self.outcome = outcome
        self.group = max(RECORD_EVERY, len(outcome.submission.targets) // LOCK_REWRITES)
        self._group_lock = threading.Lock()  # `store` runs on writer threads
        self._entries: dict[str, LockEntry] = {}
        self._previous: dict[str, list[LockedOutput]] = {}
        # Each image waits aside until its group is recorded (state/outputs.py StagedOutputs).
        self.staging = StagedOutputs(
            config.state_dir / STAGING_DIR / slug(batch_id), config.outputs_dir, trash
        )
        self._staged: dict[str, Staged] = {}

    def already_recorded(self, item: SubmittedTarget, address: str) -> bool:
        entry = self.writer.entry(address)
        return (
            entry is not None
            and entry.batch_id == self.batch_id
            and entry.fingerprint == item.fingerprint
        )

    def store(self, target: Target, item: SubmittedTarget, generation: Generation) -> int:
        """Check and write one target's images; its entry is recorded with the next group."""
        images = generation.images
        infos = checked_images(target, images, lambda reason: self.rescue(item, images, reason))
        try:
            # Checked before staging: an entry the lock cannot hold would fail its whole group's
            # rewrite on every collect; found here, it fails this line alone, its images kept.
            writable_text(self._entry(target, item, generation, []))
            outputs, staged = self.staging.stage(
                target.outputs, list(zip(images, infos, strict=True))
            )
        except (PromptformError, OSError, ValueError) as exc:
            reason = f"cannot store them: {exc}"
            rescued = self.rescue(item, images, reason)
            raise not_stored(target.address, reason, rescued) from None
        recorded = self.writer.entry(target.address)
        entry = self._entry(target, item, generation, outputs)
        with self._group_lock:
            self._previous[target.address] = list(recorded.outputs) if recorded else []
            self._entries[target.address] = entry
            self._staged[target.address] = staged
        return len(outputs)

    def flush_if_full(self) -> None:
        """Record every full group written so far (whole groups only: a group per rewrite)."""
        while True:
            with self._group_lock:
                if len(self._entries) < self.group:
                    return
                addresses = list(self._entries)[: self.group]
                entries = {address: self._entries.pop(address) for address in addresses}
                previous = {address: self._previous.pop(address) for address in addresses}
                staged = [self._staged.pop(address) for address in addresses]
            self._record(entries, previous, staged)

    def _entry(
        self,
        target: Target,
        item: SubmittedTarget,
        generation: Generation,
        outputs: list[LockedOutput],
    ) -> LockEntry:
        return LockEntry(
            fingerprint=item.fingerprint,
            request=target.body,
            endpoint=target.endpoint,
            inputs=[
                LockedInput(role=submitted.role, path=submitted.path, sha256=submitted.sha256)
                for submitted in item.inputs
            ],
            outputs=outputs,
            provider=ProviderRef(kind=target.provider_kind, name=self.outcome.submission.provider),
            model=target.model,
            generated_at=generated_now(),
            source_commit=self.outcome.submission.source_commit,
            revised_prompt=generation.revised_prompt,
            usage=generation.usage,
            cost_usd=item.cost_usd,
            batch_id=self.batch_id,
        )

    def flush(self) -> None:
        """Record everything written and not recorded yet (the last, partial group)."""
        with self._group_lock:
            entries, previous, staged = self._entries, self._previous, self._staged
            self._entries, self._previous, self._staged = {}, {}, {}
        if entries:
            self._record(entries, previous, list(staged.values()))

    def _record(
        self,
        entries: dict[str, LockEntry],
        previous: dict[str, list[LockedOutput]],
        staged: Sequence[Staged],
    ) -> None:
        """Put a group's images in place and record them in one lockfile rewrite, then trash the
        outputs it no longer names.

        A rewrite that fails puts the files back and stops the collect: the submission stays, so
        collecting again records the group (its images are in the batch's output file still)."""
        try:
            placed = self.staging.place(staged)
        except OSError as exc:
            raise PromptformError(
                f"cannot put the images of {self.batch_id} in place: {exc.strerror or exc}; "
                "nothing is lost, `promptform batch collect` records them once that is fixed"
            ) from None
        try:
            self.writer.update(entries, ())
        except BaseException as exc:
            put_back(placed)
            if not isinstance(exc, OSError):
                raise
            raise PromptformError(
                f"cannot record the images of {self.batch_id} in the lockfile: "
                f"{exc.strerror or exc}; nothing is lost, `promptform batch collect` records "
                "them once that is fixed"
            ) from None
        for address, outputs in previous.items():
            kept = {path_key(path) for path in self.writer_paths(entries[address])}
            leaving = [output for output in outputs if path_key(output.path) not in kept]
            if not leaving:
                continue
            held = held_by_others(self.writer, address, leaving, self.claimed)
            for output in leaving:
                if path_key(output.path) not in held:
                    self.trash.keep(self.config.outputs_dir / output.path, move=True)

    @staticmethod
    def writer_paths(entry: LockEntry) -> list[str]:
        return [output.path for output in entry.outputs]

    def rescue(self, item: SubmittedTarget, images: Sequence[bytes], reason: str) -> str:
        shown = rescue_paid(
            self.config, item.address, item.fingerprint, item.request, images, reason
        )
        self.outcome.rescued.append(shown)
        return shown
