"""From paid bytes to a lock entry: check each image, write it, record the target; or rescue.

Runs on writer threads. Bytes that were paid for but cannot be used (a count or format the request
did not ask for) go to .promptform/rescued/, so nobody pays for them twice without a look.
"""

from __future__ import annotations

import time
from collections.abc import Set

from promptform.core.atomic import atomic_write
from promptform.core.config import Config
from promptform.core.errors import PromptformError
from promptform.core.images import ImageError, ImageInfo, check_format, sniff
from promptform.engine.apply_model import ApplyReport
from promptform.engine.plan_model import Change
from promptform.manifests.render import slug
from promptform.manifests.targets import Target
from promptform.providers.base import Generation, ImageRequest
from promptform.state.lockfile import LockedInput, LockEntry, ProviderRef, generated_at
from promptform.state.lockfile_writer import LockfileWriter
from promptform.state.outputs import Trash, write_outputs


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
        if len(generation.images) != len(target.outputs):
            rescued = self.rescue(target.address, generation.images)
            raise PromptformError(
                f"asked for {len(target.outputs)} images, got {len(generation.images)}; "
                f"kept them in {rescued}"
            )
        infos: list[ImageInfo] = []
        for data in generation.images:
            try:
                infos.append(check_format(data, target.output_format))
            except ImageError as exc:
                rescued = self.rescue(target.address, generation.images)
                raise PromptformError(f"{exc}; the images were kept in {rescued}") from None
        outputs = write_outputs(
            self.config.outputs_dir,
            self.trash,
            target.outputs,
            list(zip(generation.images, infos, strict=True)),
            change.entry.outputs if change.entry is not None else (),
            self.claimed,
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
            source_commit=self.source_commit,
            revised_prompt=generation.revised_prompt,
            usage=generation.usage,
            cost_usd=change.cost_usd,
        )
        self.writer.update({target.address: entry}, ())
        return len(outputs)

    def rescue(self, address: str, images: list[bytes]) -> str:
        """Keep bytes we paid for but cannot use; the folder they went to, for messages."""
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


def _extension(data: bytes) -> str:
    try:
        return sniff(data).format
    except ImageError:
        return "bin"
