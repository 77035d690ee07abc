"""Batch submissions waiting to be collected: `promptform.batches/<submission id>.json`, committed.

One file per submission (one Batch API batch), so two branches that each submit merge without a
conflict, and a later run on another machine can collect what this one submitted. Each file records
the intent before the batch exists: the uploaded input file's id is written before the batch is
created, so a run killed between the two finds its batch on restart instead of paying twice.

Format (sorted keys, 2-space indent, one line per target so 50,000 of them write fast and diff
line by line, written atomically):
    {"kind": "promptform-batch-submission", "version": 1, "id", "provider", "endpoint",
     "input_file_id", "batch_id", "submitted_at", "source_commit",
     "targets": [{"custom_id", "address", "fingerprint", "request", "inputs": [{"role", "path",
                  "sha256"}], "outputs", "output_format", "provider_kind", "model", "cost_usd"}]}
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from promptform.core.atomic import atomic_write
from promptform.core.errors import Location, PromptformError
from promptform.core.paths import relative_path_problem

SUBMISSION_KIND = "promptform-batch-submission"
SUBMISSION_VERSION = 1
SUBMISSION_SUFFIX = ".json"
# The Batch API's metadata key under which each batch names the submission that created it.
SUBMISSION_METADATA_KEY = "promptform_submission"
_STAMP = "%Y%m%dT%H%M%SZ"
_SHARED_LENGTH = 32  # strings up to this long are shared by `_shared`: settings, not prompts
# Submission ids become file names: a file edited in a pull request must not name another path.
_SUBMISSION_ID = re.compile(r"[0-9]{8}T[0-9]{6}Z-[0-9a-f]{4,32}")


T = TypeVar("T")


class PendingBatchError(PromptformError):
    pass


# Slots, and the values many targets repeat shared (`_shared`): a submission of 50,000 targets is
# held whole while it is collected.
@dataclass(frozen=True, slots=True)
class SubmittedInput:
    role: str
    path: str
    sha256: str


@dataclass(frozen=True, slots=True)
class SubmittedTarget:
    """One request line of a submitted batch, and what collecting its result records."""

    custom_id: str
    address: str
    fingerprint: str
    request: dict[str, Any]
    inputs: tuple[SubmittedInput, ...]
    outputs: tuple[str, ...]
    output_format: str
    provider_kind: str
    model: str
    cost_usd: float | None


@dataclass(frozen=True)
class Submission:
    id: str
    provider: str
    endpoint: str
    submitted_at: str
    source_commit: str | None
    targets: tuple[SubmittedTarget, ...]
    input_file_id: str | None = None
    batch_id: str | None = None  # None until the batch is created

    def with_input_file(self, file_id: str) -> Submission:
        return replace(self, input_file_id=file_id)

    def with_batch(self, batch_id: str) -> Submission:
        return replace(self, batch_id=batch_id)

    @property
    def label(self) -> str:
        """The batch id, or the submission id while no batch exists yet."""
        return self.batch_id or f"(submission {self.id})"


def custom_id_for(index: int, fingerprint: str) -> str:
    """A request line's custom_id: its index in the submission and the start of its fingerprint."""
    return f"{index}-{fingerprint_tag(fingerprint)}"


def fingerprint_tag(fingerprint: str) -> str:
    """The first 16 hex digits of a fingerprint's digest (`sha256:v1:` is the same for all)."""
    return fingerprint.rpartition(":")[2][:16]


def new_submission_id(now: datetime | None = None) -> str:
    """Unique across machines: the UTC second, then random hex (sorts by time)."""
    stamp = (now or datetime.now(UTC)).strftime(_STAMP)
    return f"{stamp}-{secrets.token_hex(4)}"


def submitted_at(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


def submission_path(batches_dir: Path, submission_id: str) -> Path:
    return batches_dir / f"{submission_id}{SUBMISSION_SUFFIX}"


def write_submission(batches_dir: Path, submission: Submission) -> None:
    """Write (or rewrite) one submission's file atomically; it is shared state, so umask perms."""
    text = dumps_submission(submission)
    atomic_write(submission_path(batches_dir, submission.id), text.encode("utf-8"), shared=True)


def dumps_submission(submission: Submission) -> str:
    """The file's text: json.dumps(indent=2) for the submission, each target on a line of its own."""
    data = _as_dict(submission)
    targets = data.pop("targets")
    lines = [
        f"  {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}"
        for key, value in sorted(data.items())
    ]
    listed = ",\n".join(
        "    " + json.dumps(target, sort_keys=True, ensure_ascii=False) for target in targets
    )
    lines.append('  "targets": ' + (f"[\n{listed}\n  ]" if targets else "[]"))
    lines.sort(key=lambda line: line.split('"', 2)[1])
    return "{\n" + ",\n".join(lines) + "\n}\n"


def remove_submission(batches_dir: Path, submission_id: str) -> None:
    submission_path(batches_dir, submission_id).unlink(missing_ok=True)
    # Only once empty: nothing pending leaves no folder behind.
    with contextlib.suppress(OSError):
        batches_dir.rmdir()


def read_submissions(batches_dir: Path, root: Path | None = None) -> list[Submission]:
    """Every submission in `batches_dir`, oldest first; none when the folder does not exist."""
    return list(_iter_submissions(batches_dir, root))


def _iter_submissions(batches_dir: Path, root: Path | None) -> Iterator[Submission]:
    try:
        paths = sorted(batches_dir.glob(f"*{SUBMISSION_SUFFIX}"))
    except OSError:
        return
    for path in paths:
        yield read_submission(path, root)


def read_submission(path: Path, root: Path | None = None) -> Submission:
    shown = path.relative_to(root).as_posix() if root and path.is_relative_to(root) else path.name
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PendingBatchError(f"cannot read batch submission: {exc}", Location(shown)) from None
    return parse_submission(raw, path.name, shown)


def parse_submission(raw: bytes, name: str, shown: str) -> Submission:
    """The submission in `raw`, the content of a file called `name` (shown in errors as `shown`)."""
    fix = f"restore it from git (`git checkout -- {shown}`) or resolve the merge conflict"
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise PendingBatchError(
            f"corrupt batch submission: {exc.msg}; {fix}", Location(shown, exc.lineno, exc.colno)
        ) from None
    except UnicodeDecodeError as exc:
        raise PendingBatchError(f"cannot read batch submission: {exc}", Location(shown)) from None
    except RecursionError:
        raise PendingBatchError(
            f"corrupt batch submission: nested too deeply to read; {fix}", Location(shown, 1)
        ) from None
    if not isinstance(data, dict) or data.get("kind") != SUBMISSION_KIND:
        raise PendingBatchError(
            f"not a promptform batch submission; {fix}, or move it out of the folder",
            Location(shown, 1),
        )
    if data.get("version") != SUBMISSION_VERSION:
        raise PendingBatchError(
            f"batch submission version {data.get('version')} is not one this promptform reads "
            f"(version {SUBMISSION_VERSION}); upgrade promptform",
            Location(shown, 1),
        )
    try:
        submission = _from_dict(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise PendingBatchError(
            f"corrupt batch submission (bad or missing {exc.args[0] if exc.args else exc}); {fix}",
            Location(shown),
        ) from None
    # Collecting removes the file named by the id: a copy under another name would be collected
    # forever, and an id naming another file would remove that submission instead.
    if name != f"{submission.id}{SUBMISSION_SUFFIX}":
        raise PendingBatchError(
            f"batch submission {submission.id} is in a file of another name; {fix}",
            Location(shown, 1),
        )
    return submission


def _as_dict(submission: Submission) -> dict[str, Any]:
    return {
        "kind": SUBMISSION_KIND,
        "version": SUBMISSION_VERSION,
        "id": submission.id,
        "provider": submission.provider,
        "endpoint": submission.endpoint,
        "input_file_id": submission.input_file_id,
        "batch_id": submission.batch_id,
        "submitted_at": submission.submitted_at,
        "source_commit": submission.source_commit,
        "targets": [
            {
                "custom_id": target.custom_id,
                "address": target.address,
                "fingerprint": target.fingerprint,
                "request": target.request,
                "inputs": [
                    {"role": item.role, "path": item.path, "sha256": item.sha256}
                    for item in target.inputs
                ],
                "outputs": list(target.outputs),
                "output_format": target.output_format,
                "provider_kind": target.provider_kind,
                "model": target.model,
                "cost_usd": target.cost_usd,
            }
            for target in submission.targets
        ],
    }


def _from_dict(data: dict[str, Any]) -> Submission:
    submission_id = _text(data["id"])
    if not _SUBMISSION_ID.fullmatch(submission_id):
        raise ValueError("id")
    return Submission(
        id=submission_id,
        provider=_text(data["provider"]),
        endpoint=_text(data["endpoint"]),
        submitted_at=_text(data["submitted_at"]),
        source_commit=_optional_text(data.get("source_commit")),
        input_file_id=_optional_text(data.get("input_file_id")),
        batch_id=_optional_text(data.get("batch_id")),
        targets=tuple(_target(item) for item in data["targets"]),
    )


def _target(item: dict[str, Any]) -> SubmittedTarget:
    request = item["request"]
    if not isinstance(request, dict):
        raise TypeError("request")
    cost = item.get("cost_usd")
    custom_id, fingerprint = _text(item["custom_id"]), _text(item["fingerprint"])
    # The result line is matched by custom_id, which the batch holds as submitted: it must name
    # this fingerprint, or an edited file could record another request's image for this target.
    if not custom_id.endswith(f"-{fingerprint_tag(fingerprint)}"):
        raise ValueError("custom_id")
    return SubmittedTarget(
        custom_id=custom_id,
        address=_text(item["address"]),
        fingerprint=fingerprint,
        request={key: _shared(value) for key, value in request.items()},
        inputs=tuple(
            SubmittedInput(
                _shared(_text(entry["role"])),
                _relative(entry["path"], "inputs"),
                _text(entry["sha256"]),
            )
            for entry in item["inputs"]
        ),
        outputs=tuple(_relative(path, "outputs") for path in item["outputs"]),
        output_format=_shared(_text(item["output_format"])),
        provider_kind=_shared(_text(item["provider_kind"])),
        model=_shared(_text(item["model"])),
        cost_usd=None if cost is None else float(cost),
    )


def _shared(value: T) -> T:
    """One object for each short string (a model, size or quality), however many targets say it."""
    if isinstance(value, str) and len(value) <= _SHARED_LENGTH:
        return sys.intern(value)  # type: ignore[return-value]
    return value


def _relative(value: object, field: str) -> str:
    # Collect records input paths in the lock and keeps stale results at output paths: a
    # submission edited in a pull request must not lead out of the project, as a lock must not.
    path = _text(value)
    if relative_path_problem(path) is not None:
        raise ValueError(f"{field} path {path!r}")
    return path


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(repr(value))
    return value


def _optional_text(value: object) -> str | None:
    return None if value is None else _text(value)
