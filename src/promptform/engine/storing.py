"""From paid bytes to a lock entry: check each image, write it, record the target; or rescue.

Runs on writer threads. Bytes that were paid for but cannot be used (a count or format the request
did not ask for) or cannot be written and recorded (a folder in the way, a full disk) go to
.promptform/rescued/ with a note of the target, fingerprint and request, so nobody pays for them
twice: the next apply records them (as `adopt --rescued` does) instead of generating again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence, Set
from typing import Any

from promptform.core.config import Config
from promptform.core.errors import PromptformError
from promptform.core.images import ImageError, ImageInfo, check_format
from promptform.core.paths import path_key
from promptform.engine.apply_model import ApplyReport
from promptform.engine.plan_model import Change
from promptform.manifests.render import slug
from promptform.manifests.targets import Target
from promptform.providers.base import Generation, ImageRequest
from promptform.state.lockfile import (
    LockedInput,
    LockedOutput,
    LockEntry,
    ProviderRef,
    generated_at,
)
from promptform.state.lockfile_writer import LockfileWriter
from promptform.state.outputs import Trash, held_by_others, write_outputs
from promptform.state.rescued import RescueNote, rescue_images


def rescue_paid(
    config: Config,
    address: str,
    fingerprint: str,
    request: Mapping[str, Any],
    images: Sequence[bytes],
    reason: str,
) -> str:
    """Keep bytes paid for but not usable, with a note of whose they are (apply and collect
    alike); the folder they went to, as messages show it."""
    note = RescueNote(address, fingerprint, dict(request), reason, ())
    folder = rescue_images(config.state_dir, slug(address), images, note)
    return folder.relative_to(config.root).as_posix()


def not_stored(address: str, reason: str, rescued: str) -> PromptformError:
    """The error of a target whose paid images could not be stored and were kept in `rescued`."""
    return PromptformError(
        f"{reason}; the images were kept in {rescued} "
        f"(`promptform adopt {address} --rescued {rescued}` records them)"
    )


def checked_images(
    target: Target, images: Sequence[bytes], rescue: Callable[[str], str]
) -> list[ImageInfo]:
    """What each of `images` is, when they are what `target` asked for: as many as its outputs,
    each of its format. Otherwise `rescue(reason)` keeps the paid bytes (returning where), and
    the error says where."""
    if len(images) != len(target.outputs):
        reason = f"asked for {len(target.outputs)} images, got {len(images)}"
        raise PromptformError(f"{reason}; kept them in {rescue(reason)}")
    infos: list[ImageInfo] = []
    for data in images:
        try:
            infos.append(check_format(data, target.output_format))
        except ImageError as exc:
            raise PromptformError(f"{exc}; the images were kept in {rescue(str(exc))}") from None
    return infos


class ResultStore:
    """Stores the generations of one apply into outputs_dir and the lockfile."""

    def __init__(
        self,
        config: Config,
        writer: LockfileWriter,
        trash: Trash,
        claimed: Set[str],
        report: ApplyReport,
        source_commit: str | None,
    ) -> None:
        self.config = config
        self.writer = writer
        self.trash = trash
        self.claimed = claimed
        self.report = report
        self.source_commit = source_commit

    def store(
        self, change: Change, target: Target, request: ImageRequest, generation: Generation
    ) -> int:
        """Check, write and record one target's images; how many."""
        infos = checked_images(
            target,
            generation.images,
            lambda reason: self.rescue(request, generation.images, reason),
        )
        try:
            return self._write_and_record(change, target, request, generation, infos)
        except Exception as exc:
            # write_outputs put back what it had overwritten; the paid bytes must survive too,
            # whatever failed (a value the lock cannot hold is a ValueError, not an OSError).
            reason = f"cannot store them: {exc}"
            rescued = self.rescue(request, generation.images, reason)
            raise not_stored(target.address, reason, rescued) from None

    def _write_and_record(
        self,
        change: Change,
        target: Target,
        request: ImageRequest,
        generation: Generation,
        infos: list[ImageInfo],
    ) -> int:
        # The entry as recorded now: a step-aside may have renamed its files since the plan.
        recorded = self.writer.entry(target.address)
        previous = recorded.outputs if recorded is not None else []
        kept = {path_key(path) for path in target.outputs}
        leaving = [output for output in previous if path_key(output.path) not in kept]
        held = (
            held_by_others(self.writer, target.address, leaving, self.claimed) if leaving else set()
        )

        def record(outputs: list[LockedOutput]) -> None:
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
                source_commit=self.source_commit,
                revised_prompt=generation.revised_prompt,
                usage=generation.usage,
                cost_usd=change.cost_usd,
            )
            self.writer.update({target.address: entry}, ())

        outputs = write_outputs(
            self.config.outputs_dir,
            self.trash,
            target.outputs,
            list(zip(generation.images, infos, strict=True)),
            previous,
            held,
            record,
        )
        return len(outputs)

    def rescue(self, request: ImageRequest, images: Sequence[bytes], reason: str) -> str:
        """Keep bytes we paid for but cannot use, with a note of whose they are; the folder they
        went to, for messages."""
        shown = rescue_paid(
            self.config, request.address, request.fingerprint, request.body, images, reason
        )
        self.report.rescued.append(shown)
        return shown
