"""The lockfile as plan relies on it: same input, same bytes; one entry's change, one entry's lines."""

from __future__ import annotations

import difflib

from promptform.core.config import load_config
from promptform.engine.project import load_project
from promptform.state.lockfile import dumps, read_lockfile, write_lockfile
from tests.support.files import MakeProject
from tests.support.lock import lock_files
from tests.support.plans import CONFIG, apply_everything, lock_entry

FILES = {
    "promptform.toml": CONFIG,
    "prompts/a.yaml": "name: a\nprompt: A fox.\n",
    "prompts/b.yaml": "name: b\nprompt: An owl.\n",
    "prompts/c.yaml": "name: c\nprompt: A heron.\n",
}


def test_lockfile_is_byte_identical_across_runs(make_project: MakeProject) -> None:
    root = make_project(FILES)
    apply_everything(root)
    first = lock_files(root / "promptform.lock")
    assert sorted(first) == ["a.yaml.json", "b.yaml.json", "c.yaml.json"]
    apply_everything(root)
    assert lock_files(root / "promptform.lock") == first
    write_lockfile(root / "promptform.lock", read_lockfile(root / "promptform.lock"))
    assert lock_files(root / "promptform.lock") == first
    for shard in first.values():
        assert b"\r\n" not in shard
        assert shard.endswith(b"}\n")


def test_regenerating_one_entry_changes_only_its_lines(make_project: MakeProject) -> None:
    root = make_project(FILES)
    _, lockfile = apply_everything(root)
    before = dumps(lockfile).splitlines()
    (root / "prompts/b.yaml").write_text("name: b\nprompt: A snowy owl.\n")
    config = load_config(root)
    target = load_project(config).by_address()["b"]
    after = dumps(lockfile.with_entry("b", lock_entry(target, config))).splitlines()
    start, end = _entry_span(before, "b")
    changed = [
        index
        for tag, first, last, _, _ in difflib.SequenceMatcher(a=before, b=after).get_opcodes()
        if tag != "equal"
        for index in range(first, max(last, first + 1))
    ]
    assert changed
    assert all(start < index < end for index in changed)


def test_lockfile_has_no_absolute_paths_or_base_urls(make_project: MakeProject) -> None:
    root = make_project(FILES)
    apply_everything(root)
    for data in lock_files(root / "promptform.lock").values():
        assert str(root).encode() not in data
        assert b"https://" not in data


def _entry_span(lines: list[str], address: str) -> tuple[int, int]:
    """First and last line index of one entry in the dumped lockfile (4-space indented key)."""
    start = lines.index(f'    "{address}": {{')
    end = next(index for index in range(start, len(lines)) if lines[index] in ("    }", "    },"))
    return start, end
