"""Reading a lock shard without pydantic's validators, and falling back to them for anything else.

A lock promptform wrote is built as it is (`lockfile._as_written`); the result must be exactly what
validation gives, and any other shard must still get validation's result or error message.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from promptform.core.errors import Location, LockfileError
from promptform.state import lockfile as lockfile_module
from promptform.state.lockfile import (
    LockedInput,
    LockedOutput,
    LockEntry,
    Lockfile,
    ProviderRef,
    dumps,
    loads,
    loads_validated,
    read_lock_state,
    read_lockfile,
    write_lockfile,
)
from tests.support.git import entry

SHOWN = "promptform.lock/hero.yaml.json"


def outcome(read: Any, text: str) -> tuple[Any, ...]:
    """What a read gives, in a form that tells types and the attributes each instance holds apart."""
    try:
        lockfile = read(text, SHOWN)
    except LockfileError as error:
        return ("error", str(error), error.location)
    # repr, not the values: NaN (which JSON may hold in a request) is unequal to itself.
    return ("ok", repr(lockfile), dumps(lockfile), repr(held(lockfile)))


def held(value: Any) -> Any:
    """`value` with each lock type's instance replaced by its type and its `__dict__`'s items (in
    any order: the fast read keeps the file's, sorted)."""
    if dataclasses.is_dataclass(value):
        attributes = sorted(vars(value).items())
        return (type(value).__name__, [(key, held(item)) for key, item in attributes])
    if isinstance(value, list):
        return [held(item) for item in value]
    if isinstance(value, dict):
        return {key: held(item) for key, item in value.items()}
    return value


def entry_data(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "fingerprint": "sha256:v1:abc",
        "request": {"model": "gpt-image-2", "prompt": "A fox."},
        "outputs": [{"path": "foxes/fox.png", "sha256": "0" * 64, "bytes": 10, "format": "png"}],
        "provider": {"kind": "offline", "name": "offline"},
        "model": "gpt-image-2",
        "generated_at": "2026-01-01T00:00:00Z",
    }
    data.update(changes)
    return data


def shard_text(*entries: dict[str, Any], **top: Any) -> str:
    return json.dumps({"version": 2, "targets": dict(enumerate(entries)), **top})


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children)
    ),
    max_leaves=6,
)
OUTPUTS = st.fixed_dictionaries(
    {
        "path": st.sampled_from(["a.png", "b/c.png", "b/c d é.png"]),
        "sha256": st.text(max_size=4),
        "bytes": st.integers(min_value=0),
        "format": st.sampled_from(["png", "jpeg"]),
    },
    optional={"width": st.integers() | st.none(), "height": st.integers() | st.none()},
)
ENTRIES = st.builds(
    entry_data,
    outputs=st.lists(OUTPUTS, min_size=1, max_size=2),
    **{
        "inputs": st.lists(
            st.fixed_dictionaries(
                {"role": st.text(max_size=3), "path": st.just("refs/a.png"), "sha256": st.text()}
            ),
            max_size=2,
        ),
        "endpoint": st.sampled_from(["images/generations", "images/edits"]),
        "usage": st.none() | st.dictionaries(st.text(max_size=3), JSON_VALUES, max_size=2),
        "cost_usd": st.none() | st.floats(allow_nan=False, allow_infinity=False),
        "request": st.dictionaries(st.text(max_size=3), JSON_VALUES, max_size=3),
        "source_commit": st.none() | st.text(max_size=6),
        "revised_prompt": st.none() | st.text(max_size=6),
    },
)
WELL_FORMED_SHARDS = st.builds(
    lambda entries, version: {"version": version, "targets": dict(enumerate(entries))},
    st.lists(ENTRIES, max_size=3),
    st.sampled_from([1, 2]),
)
# What a hand edit or damage may put anywhere: other types, values pydantic converts, bad paths.
ODD_VALUES = st.one_of(
    st.sampled_from(["../up.png", "/abs.png", "C:/x.png", "a\\b.png", "", "./a.png", "a//b.png"]),
    st.sampled_from([True, False, None, 0, 1, 2, 3, -1, 1.0, 2.5, "12", "2", "x", [], {}]),
    st.floats(),
    JSON_VALUES,
)


DELETE = object()
OUTPUT = {"path": "a.png", "sha256": "s", "bytes": 1, "format": "png"}


def objects_in(value: Any) -> list[dict[str, Any]]:
    """Every JSON object in `value`, `value` included."""
    if isinstance(value, list):
        return [found for item in value for found in objects_in(item)]
    if isinstance(value, dict):
        return [value, *(found for item in value.values() for found in objects_in(item))]
    return []


@st.composite
def damaged_shards(draw: st.DrawFn) -> dict[str, Any]:
    """A well-formed shard with a few fields (anywhere in it) deleted, added or replaced."""
    shard = draw(WELL_FORMED_SHARDS)
    for _ in range(draw(st.integers(min_value=0, max_value=2))):
        target = draw(st.sampled_from(objects_in(shard)))
        key = draw(st.sampled_from([*target, "extra"]))
        if draw(st.booleans()) and key in target:
            del target[key]
        else:
            target[key] = copy.deepcopy(draw(ODD_VALUES))  # [] and {} are shared by every draw
    return shard


ODD_SAMPLES = [True, False, None, 0, 1, 2, 3, -1, 1.0, 2.5, float("inf"), "12", "2", "x", [], {}]
ODD_SAMPLES += ["../up.png", "/abs.png", "C:/x.png", "a\\b.png", "", "./a.png", "a//b.png"]


def test_every_field_replaced_or_deleted_reads_as_validation_reads_it() -> None:
    full = {
        "version": 2,
        "targets": {
            "a": entry_data(
                inputs=[{"role": "image", "path": "refs/a.png", "sha256": "s"}],
                outputs=[{**OUTPUT, "width": 1, "height": None}],
                endpoint="images/edits",
                source_commit=None,
                revised_prompt="r",
                usage={"n": 1},
                cost_usd=0.5,
                batch_id="batch_1",
            )
        },
    }
    for index, target in enumerate(objects_in(full)):
        for key in [*target, "extra"]:
            for replacement in [*ODD_SAMPLES, DELETE]:
                shard = json.loads(json.dumps(full))
                changed = objects_in(shard)[index]
                if replacement is DELETE:
                    changed.pop(key, None)
                else:
                    changed[key] = replacement
                text = json.dumps(shard)
                assert outcome(loads, text) == outcome(loads_validated, text), text


@settings(max_examples=500, deadline=None)
@given(damaged_shards())
def test_reading_gives_what_validation_gives_for_any_shard(shard: dict[str, Any]) -> None:
    text = json.dumps(shard)

    assert outcome(loads, text) == outcome(loads_validated, text)


@settings(max_examples=200, deadline=None)
@given(WELL_FORMED_SHARDS)
def test_well_formed_shards_are_built_without_validation_as_validation_builds_them(
    shard: dict[str, Any],
) -> None:
    text = json.dumps(shard)

    assert lockfile_module._as_written(json.loads(text)) is not None  # the fast path is taken
    assert outcome(loads, text) == outcome(loads_validated, text)


def test_a_lock_promptform_wrote_is_read_without_validation_and_unchanged() -> None:
    written = Lockfile(
        targets={
            "hero": entry("sha256:v1:one", "hero.png"),
            "logo": LockEntry(
                fingerprint="sha256:v1:two",
                request={"prompt": "A logo.", "n": 2, "extra": {"nested": [1, 2.5, None]}},
                endpoint="images/edits",
                inputs=[LockedInput(role="image", path="refs/base.png", sha256="1" * 64)],
                outputs=[
                    LockedOutput(
                        path="logo-1.png", sha256="2" * 64, bytes=5, format="png", width=1, height=2
                    )
                ],
                provider=ProviderRef(kind="openai", name="openai"),
                model="gpt-image-2",
                generated_at="2026-01-01T00:00:00Z",
                source_commit="abc123",
                revised_prompt="A logo, revised.",
                usage={"input_tokens": 10},
                cost_usd=0.25,
            ),
        }
    )
    text = dumps(written)

    assert lockfile_module._as_written(json.loads(text)) is not None
    assert loads(text, SHOWN) == written
    assert dumps(loads(text, SHOWN)) == text


def test_every_field_of_the_lock_models_is_checked_by_the_fast_read() -> None:
    # A field added to a model without a check would send every lock to the slow path.
    text = dumps(Lockfile(targets={"a": entry("f")}))
    for model in (Lockfile, LockEntry, LockedOutput, LockedInput, ProviderRef):
        # Not pydantic models (importing pydantic costs more than a no-op plan); pydantic forbids
        # unknown keys when it validates them.
        assert dataclasses.is_dataclass(model)
        assert model.__pydantic_config__ == {"extra": "forbid"}
    assert lockfile_module._as_written(json.loads(text)) is not None


@pytest.mark.parametrize(
    ("text", "message", "location"),
    [
        (
            '{"version": 2, "targets": {<<<<<<< HEAD\n',
            "corrupt lockfile: Expecting property name enclosed in double quotes; restore it from "
            f"git (`git checkout -- {SHOWN}`) or resolve the merge conflict",
            Location(SHOWN, 1, 28),
        ),
        ("[]", "corrupt lockfile: expected a JSON object", Location(SHOWN, 1)),
        (
            '{"version": 3, "targets": {}}',
            "lockfile version 3 was written by a newer promptform; upgrade promptform "
            "(this one reads version 2)",
            Location(SHOWN, 1),
        ),
        (
            '{"version": 0, "targets": {}}',
            "corrupt lockfile: version: Input should be greater than or equal to 1; "
            "restore it from git",
            Location(SHOWN),
        ),
        (
            '{"version": 2, "targets": []}',
            "corrupt lockfile: targets: Input should be a valid dictionary; restore it from git",
            Location(SHOWN),
        ),
        (
            '{"version": 2, "targets": {}, "x": 1}',
            "corrupt lockfile: x: Extra inputs are not permitted; restore it from git",
            Location(SHOWN),
        ),
        (
            shard_text(entry_data(outputs=[{**OUTPUT, "path": "../a.png"}])),
            "corrupt lockfile: targets.0.outputs.0.path: path '../a.png' contains '..'; "
            "restore it from git",
            Location(SHOWN),
        ),
        (
            shard_text(entry_data(outputs=[{**OUTPUT, "path": "/a.png"}])),
            "corrupt lockfile: targets.0.outputs.0.path: path '/a.png' is absolute; write it "
            "relative; restore it from git",
            Location(SHOWN),
        ),
        (
            shard_text(entry_data(outputs=[{**OUTPUT, "path": "a\\b.png"}])),
            "corrupt lockfile: targets.0.outputs.0.path: path 'a\\\\b.png' contains a backslash "
            "or NUL; use '/'; restore it from git",
            Location(SHOWN),
        ),
        (
            shard_text(entry_data(outputs=[{**OUTPUT, "path": ""}])),
            "corrupt lockfile: targets.0.outputs.0.path: path '' is empty; restore it from git",
            Location(SHOWN),
        ),
        (
            shard_text(entry_data(inputs=[{"role": "r", "path": "./x", "sha256": "s"}])),
            "corrupt lockfile: targets.0.inputs.0.path: path './x' has an empty or '.' segment; "
            "restore it from git",
            Location(SHOWN),
        ),
        (
            '{"version": 2, "targets": {"t": {"fingerprint": "f"}}}',
            "corrupt lockfile: targets.t.request: Field required; restore it from git",
            Location(SHOWN),
        ),
        (
            shard_text(entry_data(colour="red")),
            "corrupt lockfile: targets.0.colour: Extra inputs are not permitted; restore it from git",
            Location(SHOWN),
        ),
        (
            # Deeper than json (and pydantic) will parse: damage, or a file made to crash readers.
            '{"version": 2, "targets": {"t": {"request": ' + "[" * 100_000 + "]" * 100_000 + "}}}",
            "corrupt lockfile: nested too deeply to read; restore it from git "
            f"(`git checkout -- {SHOWN}`) or resolve the merge conflict",
            Location(SHOWN, 1),
        ),
        (
            shard_text(entry_data(cost_usd="lots")),
            "corrupt lockfile: targets.0.cost_usd: Input should be a valid number, unable to "
            "parse string as a number; restore it from git",
            Location(SHOWN),
        ),
    ],
)
def test_each_kind_of_bad_shard_gets_the_validators_message(
    tmp_path: Path, text: str, message: str, location: Location
) -> None:
    lock = tmp_path / "promptform.lock"
    lock.mkdir()
    (lock / "hero.yaml.json").write_text(text, encoding="utf-8")

    with pytest.raises(LockfileError) as error:
        read_lockfile(lock, "promptform.lock")

    assert (str(error.value), error.value.location) == (message, location)


def test_values_validation_converts_are_read_as_validation_converts_them() -> None:
    text = shard_text(entry_data(cost_usd=1, outputs=[{**OUTPUT, "bytes": "12"}]), version=True)

    lockfile = loads(text, SHOWN)

    assert lockfile_module._as_written(json.loads(text)) is None  # pydantic decided
    assert lockfile.version == 1
    assert lockfile.targets["0"].cost_usd == 1.0
    assert lockfile.targets["0"].outputs[0].bytes == 12


def test_a_large_lock_is_read_without_validation_as_validation_reads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock = tmp_path / "promptform.lock"
    entries = {f"t{index}": entry(f"f{index}", f"{index}.png") for index in range(300)}
    entries["t0"] = dataclasses.replace(entries["t0"], batch_id="batch_1", cost_usd=0.5)
    write_lockfile(
        lock,
        Lockfile(targets=entries),
        {address: f"m{int(address[1:]) % 7}.yaml" for address in entries},
    )
    validated = {
        address: built
        for shard in sorted(lock.glob("*.json"))
        for address, built in loads_validated(shard.read_text("utf-8"), SHOWN).targets.items()
    }

    def unused(text: str, shown: str) -> None:
        raise AssertionError("a lock promptform wrote is built as written, whatever its size")

    monkeypatch.setattr(lockfile_module, "loads_validated", unused)
    read = read_lock_state(lock, "promptform.lock").lockfile

    assert read == Lockfile(targets=validated)
    assert repr(held(read.targets)) == repr(held(validated))


# Reads a lock in a fresh interpreter; prints its entry count and the pydantic modules imported.
READ_IN_A_FRESH_INTERPRETER = """\
import sys
from pathlib import Path
from promptform.state.lockfile import read_lock_state
targets = read_lock_state(Path(sys.argv[1])).lockfile.targets
print(len(targets), sorted(name for name in sys.modules if name.startswith("pydantic")))
"""


def write_as_promptform_does(lock: Path) -> None:
    batched = dataclasses.replace(entry("f1", "a.png"), batch_id="batch_1", cost_usd=0.5)
    write_lockfile(lock, Lockfile(targets={"a": batched, "b": entry("f2", "b.png")}))


def write_by_hand(lock: Path) -> None:
    lock.mkdir()
    # cost_usd 1: an integer, which pydantic converts to the float the field holds
    text = shard_text(entry_data(cost_usd=1), entry_data(batch_id="batch_1"))
    (lock / "hero.yaml.json").write_text(text, encoding="utf-8")


@pytest.mark.parametrize(
    ("write", "pydantic_imported"), [(write_as_promptform_does, False), (write_by_hand, True)]
)
def test_reading_a_lock_promptform_wrote_imports_no_pydantic(
    tmp_path: Path, write: Callable[[Path], None], pydantic_imported: bool
) -> None:
    lock = tmp_path / "promptform.lock"
    write(lock)

    done = subprocess.run(
        [sys.executable, "-c", READ_IN_A_FRESH_INTERPRETER, str(lock)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    count, modules = done.stdout.split(" ", 1)
    assert count == "2"  # the lock was read
    assert ("pydantic" in modules) is pydantic_imported
