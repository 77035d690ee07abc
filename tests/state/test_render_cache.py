"""render_cache.py: a manifest file's expansion reused while its inputs stay the same."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings

import promptform.manifests.manifest
from promptform.core.config import load_config
from promptform.core.errors import PromptformError
from promptform.engine.project import Project, load_project
from promptform.manifests.targets import Target
from promptform.state.render_cache import CACHE_FILE, EXPANSION_MODULES, cache_key
from tests.engine.test_properties import documents_files
from tests.support.files import MakeProject, write_files

PNG = b"\x89PNG\r\n\x1a\n" + b"pretend pixels"

VARIED_PROJECT: dict[str, str | bytes] = {
    "promptform.toml": """
        [promptform]
        default_provider = "offline"

        [defaults]
        quality = "medium"
        vars = { brand = "Acme" }
    """,
    "templates/style.j2": "{% import 'macros.j2' as m %}{{ m.shout(brand) }}, 50mm lens.",
    "templates/macros.j2": "{% macro shout(text) %}{{ text | upper }}!{% endmacro %}",
    "templates/base.j2": "Base: {% block body %}{% endblock %}",
    "templates/child.j2": "{% extends 'base.j2' %}{% block body %}child {{ mood }}{% endblock %}",
    "templates/unused.j2": "never included",
    "refs/logo.png": PNG,
    "prompts/catalogue.yaml": """
        name: catalogue/item
        description: Catalogue tiles
        model: gpt-image-2
        size: 1536x1024
        vars:
          product: Café racer
        matrix:
          subject: [kitchen, garden]
          light: [1, 2.5, true]
          exclude:
            - {subject: garden, light: true}
          include:
            - {subject: beach, light: 1}
            - {subject: kitchen, light: 1, mood: calm}
        prompt: |
          {% include "style.j2" %}
          {{ product }} in a {{ subject }} setting, light {{ light }}{{ ' ' ~ mood if mood is defined }}.
        output: "catalogue/{{ name | slug }}/{{ subject }}-{{ light }}.png"
    """,
    "prompts/multi.yml": """
        name: hero
        prompt: A beautiful sunset
        n: 2
        output_format: webp
        ---
        name: hero-edit
        prompt: "{% include 'child.j2' %}"
        vars:
          mood: bright
        images: [refs/logo.png, generated/hero-1.webp]
        mask: refs/logo.png
    """,
    "prompts/warned.yaml": """
        model: some-future-model
        prompt: Unicode ✓ and "quotes"
        output: "warned/{{ index }}"
        n: 2
    """,
}


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The manifest files (as shown) that a load parsed rather than took from the cache."""
    seen: list[str] = []
    original = promptform.manifests.manifest.load_manifest_text

    def spy(text: str, stem: str, shown: str) -> object:
        seen.append(shown)
        return original(text, stem, shown)

    monkeypatch.setattr(promptform.manifests.manifest, "load_manifest_text", spy)
    yield seen


def fresh(root: Path) -> Project:
    return load_project(load_config(root))


def cached(root: Path) -> Project:
    return load_project(load_config(root), use_cache=True)


def assert_same(one: Project, other: Project) -> None:
    # repr, not ==, so that 1, 1.0 and True in a matrix cell or a request count as different.
    assert repr(one.targets) == repr(other.targets)
    # Decoded targets are built without Target's __init__: each must still hold every field (a
    # field missing from the cache would read as its class default, and repr would not tell).
    names = {field.name for field in dataclasses.fields(Target)}
    assert all(vars(target).keys() == names for target in (*one.targets, *other.targets))
    assert [(type(w), w.one_line()) for w in one.warnings] == [
        (type(w), w.one_line()) for w in other.warnings
    ]
    assert (one.manifest_files, one.manifests) == (other.manifest_files, other.manifests)


def test_a_cache_hit_gives_exactly_the_targets_and_warnings_of_a_fresh_load(
    make_project: MakeProject, parses: list[str]
) -> None:
    root = make_project(VARIED_PROJECT)
    expected = fresh(root)
    cached(root)
    parses.clear()

    hit = cached(root)

    assert parses == []
    assert_same(hit, expected)
    assert expected.warnings, "the project is meant to cover warnings"
    assert any(target.upstream for target in hit.targets), "and upstream links"


def test_an_edited_manifest_is_parsed_again_and_the_others_are_not(
    make_project: MakeProject, parses: list[str]
) -> None:
    root = make_project(VARIED_PROJECT)
    cached(root)
    path = root / "prompts/warned.yaml"
    path.write_text(path.read_text().replace("Unicode", "Emoji"))
    parses.clear()

    hit = cached(root)

    assert parses == ["prompts/warned.yaml"]
    assert_same(hit, fresh(root))


def test_a_cache_committed_with_a_pull_request_is_never_trusted(
    make_project: MakeProject, parses: list[str]
) -> None:
    # A poisoned cache with the right content hash must not stand in for the manifest: a checkout
    # gives the file a new mtime, which is part of its identity in the cache.
    root = make_project(VARIED_PROJECT)
    cached(root)
    cache_file = root / ".promptform/render-cache.json"
    poisoned = cache_file.read_text().replace("Unicode", "Poison")
    assert poisoned != cache_file.read_text()
    cache_file.write_text(poisoned)
    manifest = root / "prompts/warned.yaml"
    stat = manifest.stat()
    os.utime(manifest, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    parses.clear()

    hit = cached(root)

    assert parses == ["prompts/warned.yaml"]
    assert_same(hit, fresh(root))
    assert all("Poison" not in target.body["prompt"] for target in hit.targets)


def test_an_edited_template_replans_only_the_manifests_whose_renders_loaded_it(
    make_project: MakeProject, parses: list[str]
) -> None:
    root = make_project(VARIED_PROJECT)
    cached(root)
    (root / "templates/macros.j2").write_text("{% macro shout(text) %}{{ text }}?{% endmacro %}")
    parses.clear()

    hit = cached(root)

    assert parses == ["prompts/catalogue.yaml"]  # imported by style.j2, which it includes
    assert_same(hit, fresh(root))
    assert "ACME?" not in repr(hit.targets) and "Acme?" in repr(hit.targets)


def test_a_template_that_extends_another_depends_on_both(
    make_project: MakeProject, parses: list[str]
) -> None:
    root = make_project(VARIED_PROJECT)
    cached(root)
    (root / "templates/base.j2").write_text("New base: {% block body %}{% endblock %}")
    parses.clear()

    hit = cached(root)

    assert parses == ["prompts/multi.yml"]
    assert_same(hit, fresh(root))


def test_a_template_that_appears_where_a_render_looked_for_it_replans(
    make_project: MakeProject, parses: list[str]
) -> None:
    root = make_project(
        {
            "prompts/a.yaml": "prompt: \"base{% include 'extra.j2' ignore missing %}\"\n",
            "prompts/b.yaml": "prompt: plain\n",
        }
    )
    cached(root)
    (root / "templates").mkdir()
    (root / "templates/extra.j2").write_text(" and extra")
    parses.clear()

    hit = cached(root)

    assert parses == ["prompts/a.yaml"]
    assert hit.targets[0].body["prompt"] == "base and extra"


def test_an_edited_config_replans_everything(make_project: MakeProject, parses: list[str]) -> None:
    root = make_project(VARIED_PROJECT)
    cached(root)
    config = root / "promptform.toml"
    config.write_text(config.read_text().replace('"medium"', '"high"'))
    parses.clear()

    hit = cached(root)

    assert len(parses) == 3
    assert_same(hit, fresh(root))
    assert {target.body["quality"] for target in hit.targets} == {"high"}


def test_a_forced_provider_is_part_of_what_the_cache_depends_on(make_project: MakeProject) -> None:
    root = make_project(VARIED_PROJECT)
    cached(root)

    forced = load_project(load_config(root).with_provider("wisgate"), use_cache=True)

    assert {target.provider for target in forced.targets} == {"wisgate"}


def test_an_edited_reference_image_changes_the_fingerprint_on_a_cache_hit(
    make_project: MakeProject,
) -> None:
    root = make_project(VARIED_PROJECT)
    before = cached(root).by_address()["hero-edit"]
    (root / "refs/logo.png").write_bytes(PNG + b" retouched")

    after = cached(root)

    assert after.by_address()["hero-edit"].fingerprint != before.fingerprint
    assert_same(after, fresh(root))


def test_a_deleted_reference_image_is_still_an_error_on_a_cache_hit(
    make_project: MakeProject,
) -> None:
    root = make_project(VARIED_PROJECT)
    cached(root)
    (root / "refs/logo.png").unlink()

    with pytest.raises(PromptformError) as from_cache:
        cached(root)
    with pytest.raises(PromptformError) as from_scratch:
        fresh(root)

    assert [e.one_line() for e in from_cache.value.errors()] == [
        e.one_line() for e in from_scratch.value.errors()
    ]


@pytest.mark.skipif(os.name == "nt", reason="symlinks")
def test_an_output_symlink_leading_outside_is_refused_on_a_cache_hit(
    make_project: MakeProject, tmp_path: Path
) -> None:
    root = make_project(VARIED_PROJECT)
    cached(root)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (root / "generated").mkdir()
    (root / "generated/warned").symlink_to(outside)

    with pytest.raises(PromptformError) as from_cache:
        cached(root)
    with pytest.raises(PromptformError) as from_scratch:
        fresh(root)

    messages = [e.one_line() for e in from_cache.value.errors()]
    assert messages == [e.one_line() for e in from_scratch.value.errors()]
    assert "through a symlink" in messages[0]


def test_a_manifest_with_problems_is_never_served_from_the_cache(
    make_project: MakeProject,
) -> None:
    root = make_project(
        {"prompts/a.yaml": "prompt: '{{ missing }}'\n", "prompts/b.yaml": "prompt: b\n"}
    )

    for _ in range(2):
        with pytest.raises(PromptformError, match="1 problem"):
            cached(root)

    (root / "prompts/a.yaml").write_text("prompt: fixed\n")
    assert [target.address for target in cached(root).targets] == ["a", "b"]


def test_a_removed_manifest_leaves_the_cache(make_project: MakeProject) -> None:
    root = make_project(VARIED_PROJECT)
    cached(root)
    (root / "prompts/warned.yaml").unlink()

    cached(root)

    stored = json.loads((root / ".promptform" / CACHE_FILE).read_text())["files"]
    assert sorted(stored) == ["catalogue.yaml", "multi.yml"]


def _with_entry_field(text: str, field: str, value: object) -> str:
    data = json.loads(text)
    data["files"]["multi.yml"][field] = value
    return json.dumps(data)


@pytest.mark.parametrize(
    "damage",
    [
        lambda text: text[: len(text) // 2],
        lambda text: "not json at all",
        lambda text: json.dumps({"key": json.loads(text)["key"], "files": []}),
        lambda text: text.replace('"targets":[[', '"targets":[[1,'),
        lambda text: _with_entry_field(text, "manifests", "two"),
        lambda text: _with_entry_field(text, "templates", None),
        lambda text: '{"files": ' + "[" * 100_000 + "]" * 100_000 + "}",
    ],
    ids=[
        "truncated",
        "not-json",
        "wrong-shape",
        "damaged-target",
        "bad-count",
        "no-templates",
        "too-deep",
    ],
)
def test_a_damaged_cache_is_ignored_and_rewritten(
    make_project: MakeProject, damage: Callable[[str], str]
) -> None:
    root = make_project(VARIED_PROJECT)
    cached(root)
    path = root / ".promptform" / CACHE_FILE
    path.write_text(damage(path.read_text()))

    assert_same(cached(root), fresh(root))
    assert_same(cached(root), fresh(root))
    assert sorted(json.loads(path.read_text())["files"]) == [
        "catalogue.yaml",
        "multi.yml",
        "warned.yaml",
    ]


def test_the_cache_writes_nothing_outside_the_state_directory(make_project: MakeProject) -> None:
    root = make_project(VARIED_PROJECT)

    def snapshot() -> dict[str, bytes]:
        return {
            path.relative_to(root).as_posix(): path.read_bytes()
            for path in sorted(root.rglob("*"))
            if path.is_file() and ".promptform" not in path.parts
        }

    before = snapshot()
    cached(root)
    cached(root)

    assert snapshot() == before
    assert sorted(path.name for path in (root / ".promptform").iterdir()) == [
        ".gitignore",
        CACHE_FILE,
    ]


def test_a_fresh_load_neither_reads_nor_writes_the_cache(make_project: MakeProject) -> None:
    root = make_project(VARIED_PROJECT)

    fresh(root)

    assert not (root / ".promptform").exists()


def test_plan_fills_the_cache_and_prints_the_same_plan_from_it(
    make_project: MakeProject, run_cli: Callable[..., object]
) -> None:
    root = make_project(VARIED_PROJECT)

    first = run_cli("-C", root, "plan", "--format", "json")
    second = run_cli("-C", root, "plan", "--format", "json")

    assert (root / ".promptform" / CACHE_FILE).is_file()
    assert first == second


def test_concurrent_runs_leave_a_readable_cache_and_agree(make_project: MakeProject) -> None:
    root = make_project(VARIED_PROJECT)
    expected = fresh(root)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: cached(root), range(8)))

    for result in results:
        assert_same(result, expected)
    assert sorted(json.loads((root / ".promptform" / CACHE_FILE).read_text())["files"]) == [
        "catalogue.yaml",
        "multi.yml",
        "warned.yaml",
    ]
    assert [path.name for path in (root / ".promptform").iterdir() if path.suffix == ".tmp"] == []


def test_the_cache_key_covers_every_module_that_loading_a_project_imports() -> None:
    # render.py, manifest.py and render_deadline.py are imported when the first manifest is
    # expanded rather than with project.py.
    imported = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, promptform.engine.project, promptform.manifests.render, "
            "promptform.manifests.manifest, promptform.manifests.render_deadline; "
            "print(' '.join(m.replace('.', '/') + ('/__init__' if hasattr(sys.modules[m], '__path__') else '') "
            "for m in sys.modules if m.startswith('promptform')))",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split()

    modules = {name.removeprefix("promptform/") for name in imported}
    assert modules == set(EXPANSION_MODULES)


@pytest.mark.parametrize("package", ["jinja2", "yaml", "pydantic"])
def test_the_cache_key_changes_when_another_release_of_a_library_expansion_uses_is_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, package: str
) -> None:
    # A stand-in installation found first on the path, as pip would leave it.
    config = load_config(tmp_path)
    installed = tmp_path / "site" / package / "__init__.py"
    installed.parent.mkdir(parents=True)
    installed.write_text('__version__ = "1.0"\n')
    monkeypatch.delitem(sys.modules, package, raising=False)  # found by its spec, not imported
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    before = cache_key(config)
    assert cache_key(config) == before

    installed.write_text('__version__ = "1.1.0"\n')

    assert cache_key(config) != before


def _outcome(load: Callable[[], Project]) -> tuple[str, ...]:
    """What a load gives, comparable across loads: the project, or every problem."""
    try:
        project = load()
    except PromptformError as exc:
        return tuple(problem.one_line() for problem in exc.errors())
    return (
        repr(project.targets),
        repr([(type(w), w.one_line()) for w in project.warnings]),
        repr((project.manifest_files, project.manifests)),
    )


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(documents=documents_files)
def test_random_manifests_load_the_same_from_the_cache(
    tmp_path: Path, documents: list[dict[str, Any]]
) -> None:
    root = tmp_path / "random"
    shutil.rmtree(root, ignore_errors=True)
    write_files(
        root,
        {
            "prompts/random.yaml": yaml.safe_dump_all(documents, allow_unicode=True),
            "prompts/plain.yaml": "prompt: a steady neighbour\n",
            "templates/part.j2": "Partial {{ subject }}.",
            "templates/macros.j2": "{% macro shout(x) %}{{ x | upper }}{% endmacro %}",
            "templates/base.j2": "Base {% block b %}{% endblock %}",
            "refs/a.png": PNG,
        },
    )
    expected = _outcome(lambda: fresh(root))

    assert _outcome(lambda: cached(root)) == expected
    assert _outcome(lambda: cached(root)) == expected
