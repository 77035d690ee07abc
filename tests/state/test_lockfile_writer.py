from __future__ import annotations

from pathlib import Path

from promptform.state.lockfile import (
    LockedOutput,
    LockEntry,
    Lockfile,
    ProviderRef,
    dumps,
    read_lockfile,
)
from promptform.state.lockfile_writer import LockfileWriter


def entry(prompt: str, path: str = "a-1.png") -> LockEntry:
    return LockEntry(
        fingerprint=f"sha256:v1:{len(prompt)}",
        request={"model": "gpt-image-2", "prompt": prompt, "n": 1},
        outputs=[
            LockedOutput(path=path, sha256="0" * 64, bytes=10, format="png", width=16, height=16)
        ],
        provider=ProviderRef(kind="offline", name="offline"),
        model="gpt-image-2",
        generated_at="2026-01-01T00:00:00Z",
        usage={"input_tokens": 3, "nested": {"list": [1, 2]}},
        cost_usd=0.04,
    )


def test_incremental_writes_match_a_full_serialisation(tmp_path: Path) -> None:
    path = tmp_path / "promptform.lock"
    writer = LockfileWriter(path, Lockfile())
    writer.write()
    assert path.read_text() == dumps(Lockfile())
    writer.put("b[x=1]", entry("naïve café\nline two"))
    writer.put("a", entry("first"))
    writer.put("ü", entry("unicode address"))
    assert path.read_text(encoding="utf-8") == dumps(writer.lockfile())


def test_rename_puts_and_removes_in_one_write(tmp_path: Path) -> None:
    path = tmp_path / "promptform.lock"
    writer = LockfileWriter(path, Lockfile(targets={"old": entry("x")}))
    writer.update({"new": entry("x")}, ("old",))
    assert list(read_lockfile(path).targets) == ["new"]


def test_removing_an_unknown_address_keeps_the_others(tmp_path: Path) -> None:
    path = tmp_path / "promptform.lock"
    writer = LockfileWriter(path, Lockfile(targets={"a": entry("x")}))
    writer.remove("missing")
    assert list(read_lockfile(path).targets) == ["a"]


def test_an_entry_change_touches_only_its_own_lines(tmp_path: Path) -> None:
    path = tmp_path / "promptform.lock"
    writer = LockfileWriter(path, Lockfile(targets={"a": entry("x"), "c": entry("y")}))
    writer.write()
    before = path.read_text().splitlines()
    writer.put("b", entry("z", "b-1.png"))
    after = path.read_text().splitlines()
    added = [line for line in after if line not in before]
    assert all(line not in before for line in added)
    assert [line for line in before if line in after] == before
