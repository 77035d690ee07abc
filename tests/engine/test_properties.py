"""Property: whatever a manifest contains, loading a project raises only promptform's own errors.

Anything else would surface as exit 3 ("a bug in promptform") instead of a message the user can act on.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from promptform.core.config import load_config
from promptform.core.errors import PromptformError
from promptform.engine.project import load_project
from promptform.manifests.manifest import Manifest

FIELDS = sorted(Manifest.model_fields)
TEMPLATE_PIECES = [
    "{{ subject }}",
    "{{ name }}",
    "{{ index }}",
    "{{ ext }}",
    "{{ missing }}",
    "{{ subject | slug }}",
    "{{ subject | upper }}",
    "{{ 1 / 0 }}",
    "{{ 'a' * 3 }}",
    "{{ [1] * 'x' }}",
    "{{ ''.__class__ }}",
    "{% include 'part.j2' %}",
    "{% include '../escape.j2' %}",
    "{% import 'macros.j2' as m %}{{ m.shout(subject) }}",
    "{% extends 'base.j2' %}",
    "{% if %}",
    "{{ range(10**8) | list }}",
    "{% for x in [1,2] %}{{ x }}{% endfor %}",
    "{{",
    "}}",
    "/",
    "..",
    "[",
    ",",
    "=",
    ".png",
    ".jpg",
    "\n",
    " ",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["gpt-image-2", "dall-e-3", "png", "jpeg", "auto", "1024x1024", "0x0"]),
)
templates = st.lists(
    st.one_of(st.sampled_from(TEMPLATE_PIECES), st.text(max_size=8)), max_size=6
).map("".join)
keys = st.one_of(st.sampled_from([*FIELDS, "include", "exclude", "subject"]), st.text(max_size=10))
values: st.SearchStrategy[Any] = st.recursive(
    st.one_of(scalars, templates),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(keys, children, max_size=4),
    ),
    max_leaves=12,
)
matrices = st.dictionaries(
    st.one_of(st.sampled_from(["subject", "palette", "include", "exclude"]), keys),
    st.one_of(
        st.lists(st.one_of(scalars, templates), max_size=3),
        st.lists(st.dictionaries(keys, st.one_of(scalars, templates), max_size=3), max_size=2),
        values,
    ),
    max_size=3,
)


def mostly(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Usually a plausible value, so most examples get as far as rendering; sometimes anything."""
    return st.integers(0, 99).flatmap(
        lambda roll: st.one_of(scalars, values) if roll < 4 else valid
    )


axis_values = st.lists(
    st.one_of(
        st.sampled_from(["red", "blue", "a b", "x,y", "k=v", "..", "/", 1, 2.5, True]), templates
    ),
    min_size=1,
    max_size=3,
)
plausible_matrices = st.fixed_dictionaries(
    {"subject": axis_values},
    optional={
        "palette": axis_values,
        "include": st.lists(
            st.dictionaries(
                st.sampled_from(["subject", "palette", "mood"]),
                st.one_of(scalars, templates),
                max_size=3,
            ),
            max_size=2,
        ),
        "exclude": st.lists(
            st.dictionaries(
                st.sampled_from(["subject", "palette", "other"]),
                st.one_of(scalars, templates),
                max_size=2,
            ),
            max_size=2,
        ),
    },
)
manifests = st.fixed_dictionaries(
    {"prompt": mostly(templates.filter(str.strip))},
    optional={
        "name": mostly(st.one_of(templates, st.sampled_from(["hero", "a/b", "t-{{ subject }}"]))),
        "model": mostly(
            st.sampled_from(["gpt-image-2", "gpt-image-1", "dall-e-3", "dall-e-2", "new-model"])
        ),
        "n": mostly(st.integers(1, 10)),
        "size": mostly(
            st.sampled_from(["auto", "1536x1024", "4000x16", "1x1", "1024x1024", "256x256"])
        ),
        "quality": mostly(st.sampled_from(["low", "medium", "high", "auto", "standard", "hd"])),
        "background": mostly(st.sampled_from(["transparent", "opaque", "auto"])),
        "output_format": mostly(st.sampled_from(["png", "jpeg", "webp"])),
        "output_compression": mostly(st.integers(0, 100)),
        "moderation": mostly(st.sampled_from(["low", "auto"])),
        "provider": mostly(st.sampled_from(["default", "offline", "wisgate", "nope"])),
        "vars": mostly(
            st.dictionaries(
                st.sampled_from(["subject", "palette", "mood", "index"]), values, max_size=3
            )
        ),
        "matrix": mostly(st.one_of(plausible_matrices, matrices)),
        "output": mostly(templates),
        "images": mostly(
            st.lists(
                st.one_of(
                    st.sampled_from(
                        ["refs/a.png", "generated/x.png", "/abs.png", "../up.png", "refs"]
                    ),
                    templates,
                ),
                max_size=3,
            )
        ),
        "mask": mostly(st.sampled_from(["refs/a.png", "missing.png"])),
    },
).flatmap(
    lambda manifest: st.one_of(
        st.just({}), st.just({}), st.dictionaries(keys, values, max_size=2)
    ).map(lambda extra: {**extra, **manifest})
)
documents_files = st.lists(manifests, min_size=1, max_size=3)

yaml_fragments = st.sampled_from(
    [
        "prompt: ",
        "name: ",
        "matrix:\n  ",
        "  - ",
        "- ",
        ": ",
        "---\n",
        "&a ",
        "*a ",
        "<<: ",
        "!!binary ",
        "!!set ",
        "!!python/object:os.system ",
        "{",
        "}",
        "[",
        "]",
        "|\n  ",
        ">-\n  ",
        '"',
        "'",
        "\t",
        "\n",
        "#",
        "%YAML 1.1\n",
        "? ",
        "\x00",
        "\x07",
        "\ufeff",
        "{{ x }}",
    ]
)
yaml_texts = st.lists(st.one_of(yaml_fragments, st.text(max_size=6)), max_size=25).map("".join)


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="promptform-properties-"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def load_only_promptform_errors(root: Path, manifest_text: str) -> None:
    if root.exists():
        shutil.rmtree(root)
    (root / "prompts").mkdir(parents=True)
    (root / "templates").mkdir()
    (root / "refs").mkdir()
    (root / "refs" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (root / "templates" / "part.j2").write_text("Partial {{ subject }}.")
    (root / "templates" / "macros.j2").write_text(
        "{% macro shout(x) %}{{ x | upper }}{% endmacro %}"
    )
    (root / "templates" / "base.j2").write_text("Base {% block b %}{% endblock %}")
    (root / "prompts" / "random.yaml").write_text(manifest_text, encoding="utf-8")
    with contextlib.suppress(PromptformError):
        load_project(load_config(root))


SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@SETTINGS
@given(documents=documents_files)
def test_random_manifests_raise_only_promptform_errors(
    scratch: Path, documents: list[dict[str, Any]]
) -> None:
    text = yaml.safe_dump_all(documents, allow_unicode=True, sort_keys=False)

    load_only_promptform_errors(scratch / "dicts", text)


@SETTINGS
@given(text=yaml_texts)
def test_random_yaml_text_raises_only_promptform_errors(scratch: Path, text: str) -> None:
    load_only_promptform_errors(scratch / "texts", text)
