"""targets.py: matrix expansion, addresses, output paths and request bodies of single manifests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path, PurePosixPath

import pytest

from promptform.core.config import load_config
from promptform.core.errors import Location, PromptformError
from promptform.core.fingerprint import FINGERPRINT_PREFIX
from promptform.core.paths import relative_path_problem
from promptform.manifests.addresses import address_matches
from promptform.manifests.documents import load_documents
from promptform.manifests.manifest import LoadedManifest, parse_manifest
from promptform.manifests.output_paths import _split_suffix
from promptform.manifests.render import Renderer
from promptform.manifests.targets import (
    EDITS,
    GENERATIONS,
    Expansion,
    Target,
    TargetBuilder,
)

FAKE_SHA = "ab" * 32


def expand_with(root: Path, text: str, default_name: str = "shop/hero") -> Expansion:
    config = load_config(root)
    [document] = load_documents(text, "prompts/p.yaml")
    loaded = LoadedManifest(parse_manifest(document), document, default_name)
    builder = TargetBuilder(
        config,
        Renderer(config.templates_dir, "templates"),
        lambda path, where: FAKE_SHA,
        lambda path, where: path,
    )
    return builder.expand(loaded)


Expand = Callable[..., list[Target]]


@pytest.fixture
def expand(tmp_path: Path) -> Expand:
    def run(text: str, default_name: str = "shop/hero") -> list[Target]:
        return expand_with(tmp_path, text, default_name).targets

    return run


def problems(tmp_path: Path, text: str) -> list[tuple[str, Location | None]]:
    with pytest.raises(PromptformError) as caught:
        expand_with(tmp_path, text)
    return [(leaf.message, leaf.location) for leaf in caught.value.errors()]


def test_plain_manifest_is_one_target_addressed_by_its_default_name(expand: Expand) -> None:
    [target] = expand("prompt: A beautiful sunset\n")

    assert target.address == "shop/hero"
    assert target.cell == ()
    assert target.endpoint == GENERATIONS


def test_explicit_name_is_the_address(expand: Expand) -> None:
    [target] = expand("name: marketing/product-hero-sunset-v2\nprompt: x\n")

    assert target.address == "marketing/product-hero-sunset-v2"


def test_name_may_be_a_template(expand: Expand) -> None:
    [target] = expand('name: "tile-{{ version }}"\nvars: {version: 3}\nprompt: x\n')

    assert target.address == "tile-3"


@pytest.mark.parametrize("name", ["a[b]", "x,y", "k=v", "/lead", "trail/", "a//b", "a/../b", " sp"])
def test_names_that_would_break_addresses_are_refused(tmp_path: Path, name: str) -> None:
    [(message, location)] = problems(tmp_path, f"name: {name!r}\nprompt: x\n")

    assert "is not a valid address" in message
    assert location == Location("prompts/p.yaml", 1, 1)


@pytest.mark.parametrize("file_name", ["a[b]", "x,y", "k=v", " sp"])
def test_file_names_that_would_break_addresses_are_refused(tmp_path: Path, file_name: str) -> None:
    with pytest.raises(PromptformError) as caught:
        expand_with(tmp_path, "prompt: x\n", default_name=file_name)

    [leaf] = caught.value.errors()
    assert "is not a valid address" in leaf.message
    assert leaf.message.endswith("; set name: or rename the file")


def test_classic_request_body_is_exactly_the_documented_one(expand: Expand) -> None:
    [target] = expand("model: gpt-image-2\nprompt: A beautiful sunset\nn: 1\nsize: 1024x1024\n")

    assert target.body == {
        "model": "gpt-image-2",
        "prompt": "A beautiful sunset",
        "n": 1,
        "size": "1024x1024",
    }


def test_config_defaults_fill_fields_the_manifest_leaves_out(tmp_path: Path) -> None:
    (tmp_path / "promptform.toml").write_text(
        '[defaults]\nsize = "1536x1024"\nquality = "high"\noutput_format = "webp"\n'
    )

    [target] = expand_with(tmp_path, "prompt: x\nquality: low\n").targets

    assert target.body["size"] == "1536x1024"
    assert target.body["quality"] == "low"
    assert target.body["output_format"] == "webp"


def test_rendered_prompt_is_stripped_but_inner_whitespace_is_kept(expand: Expand) -> None:
    [target] = expand('prompt: "\\n\\n  first  line\\n\\n\\tsecond\\n  \\n"\n')

    assert target.body["prompt"] == "first  line\n\n\tsecond"


def test_prompt_that_renders_empty_is_an_error(tmp_path: Path) -> None:
    [(message, _)] = problems(tmp_path, "prompt: \"{{ '' }}\"\n")

    assert message == "prompt renders to empty text"


def test_matrix_gives_one_target_per_cell_with_axes_in_declared_order(expand: Expand) -> None:
    targets = expand(
        "name: tile\nprompt: '{{ subject }} {{ palette }}'\n"
        "matrix:\n  subject: [bottle, mug]\n  palette: [warm, cool]\n"
    )

    assert [target.address for target in targets] == [
        "tile[subject=bottle,palette=warm]",
        "tile[subject=bottle,palette=cool]",
        "tile[subject=mug,palette=warm]",
        "tile[subject=mug,palette=cool]",
    ]
    assert targets[3].body["prompt"] == "mug cool"


def test_address_order_follows_the_manifest_not_the_alphabet(expand: Expand) -> None:
    [target] = expand("name: t\nprompt: x\nmatrix:\n  zebra: [z]\n  apple: [a]\n")

    assert target.address == "t[zebra=z,apple=a]"


def test_address_values_with_separators_are_quoted(expand: Expand) -> None:
    targets = expand("name: t\nprompt: x\nmatrix:\n  v: ['a, b', 'x=y', ' pad', 'plain words']\n")

    assert [target.address for target in targets] == [
        't[v="a, b"]',
        't[v="x=y"]',
        't[v=" pad"]',
        "t[v=plain words]",
    ]


def test_address_values_with_control_characters_are_quoted(expand: Expand) -> None:
    targets = expand('name: t\nprompt: x\nmatrix:\n  v: ["a\\nb", "c\\n", "d\\u001be"]\n')

    assert [target.address for target in targets] == [
        't[v="a\\nb"]',
        't[v="c\\n"]',
        't[v="d\\u001be"]',
    ]


def test_boolean_and_number_axis_values_read_as_yaml_wrote_them(expand: Expand) -> None:
    targets = expand("name: t\nprompt: x\nmatrix:\n  v: [true, 3, 1.5]\n")

    assert [target.address for target in targets] == ["t[v=true]", "t[v=3]", "t[v=1.5]"]


def test_matrix_exclude_removes_every_matching_cell(expand: Expand) -> None:
    targets = expand(
        "name: t\nprompt: x\nmatrix:\n  a: [1, 2]\n  b: [x, y]\n  exclude:\n    - {b: y}\n"
    )

    assert [target.address for target in targets] == ["t[a=1,b=x]", "t[a=2,b=x]"]


def test_matrix_include_adds_a_cell_that_names_every_axis(expand: Expand) -> None:
    targets = expand(
        "name: t\nprompt: '{{ a }}{{ b }}'\nmatrix:\n  a: [1]\n  b: [x]\n  include:\n"
        "    - {a: 9, b: z}\n"
    )

    assert [target.address for target in targets] == ["t[a=1,b=x]", "t[a=9,b=z]"]
    assert targets[1].body["prompt"] == "9z"


def test_matrix_include_gives_extra_vars_to_every_matching_cell(expand: Expand) -> None:
    targets = expand(
        "name: t\nprompt: '{{ a }} {{ mood | default(\"calm\") }}'\n"
        "matrix:\n  a: [1, 2]\n  b: [x, y]\n  include:\n    - {a: 2, mood: stormy}\n"
    )

    assert [target.body["prompt"] for target in targets] == [
        "1 calm",
        "1 calm",
        "2 stormy",
        "2 stormy",
    ]


def test_matrix_vars_override_manifest_vars(expand: Expand) -> None:
    [target] = expand("name: t\nvars: {a: from-vars}\nprompt: '{{ a }}'\nmatrix:\n  a: [cell]\n")

    assert target.body["prompt"] == "cell"


def test_matrix_include_that_adds_nothing_and_misses_axes_is_an_error(tmp_path: Path) -> None:
    [(message, location)] = problems(
        tmp_path,
        "name: t\nprompt: x\nmatrix:\n  a: [1]\n  b: [x]\n  include:\n    - {a: 5}\n",
    )

    assert message == (
        "matrix include entry matches no cell; to add a cell set every axis (missing: b)"
    )
    assert location == Location("prompts/p.yaml", 7, 7)


def test_matrix_exclude_naming_an_unknown_axis_is_an_error(tmp_path: Path) -> None:
    [(message, _)] = problems(
        tmp_path, "name: t\nprompt: x\nmatrix:\n  a: [1]\n  exclude:\n    - {colour: red}\n"
    )

    assert message == "matrix exclude names unknown axis 'colour' (axes: a)"


def test_matrix_that_excludes_every_cell_is_an_error(tmp_path: Path) -> None:
    [(message, _)] = problems(
        tmp_path, "name: t\nprompt: x\nmatrix:\n  a: [1]\n  exclude:\n    - {a: 1}\n"
    )

    assert message == "matrix has no cells left after exclude"


def test_matrix_axis_without_values_is_an_error(tmp_path: Path) -> None:
    [(message, location)] = problems(tmp_path, "name: t\nprompt: x\nmatrix:\n  a: []\n")

    assert message == "matrix axis 'a' has no values"
    assert location == Location("prompts/p.yaml", 4, 3)


def test_matrix_axis_repeating_a_value_is_an_error(tmp_path: Path) -> None:
    [(message, _)] = problems(tmp_path, "name: t\nprompt: x\nmatrix:\n  a: [1, '1']\n")

    assert message == "matrix axis 'a' repeats a value"


def test_default_output_is_slugged_name_cell_values_index_and_extension(expand: Expand) -> None:
    targets = expand(
        "name: Shop/Hero Shot\nprompt: x\nmatrix:\n  subject: [Red Bike]\n  n2: [2]\n",
    )

    assert targets[0].outputs == ("shop/hero-shot-red-bike-2-1.png",)


def test_default_output_of_a_plain_manifest(expand: Expand) -> None:
    [target] = expand("prompt: x\noutput_format: jpeg\n")

    assert target.outputs == ("shop/hero-1.jpg",)


def test_n_images_give_n_default_outputs(expand: Expand) -> None:
    [target] = expand("prompt: x\nn: 3\n")

    assert target.outputs == ("shop/hero-1.png", "shop/hero-2.png", "shop/hero-3.png")


def test_output_template_sees_name_vars_index_and_ext(expand: Expand) -> None:
    [target] = expand(
        "name: hero\nprompt: x\nn: 2\noutput_format: webp\nvars: {campaign: spring}\n"
        'output: "{{ campaign }}/{{ name }}-v{{ index }}.{{ ext }}"\n'
    )

    assert target.outputs == ("spring/hero-v1.webp", "spring/hero-v2.webp")


def test_output_template_without_index_gets_one_appended_for_several_images(expand: Expand) -> None:
    [target] = expand("prompt: x\nn: 2\noutput: hero/main.png\n")

    assert target.outputs == ("hero/main-1.png", "hero/main-2.png")


def test_output_template_without_extension_gets_the_formats(expand: Expand) -> None:
    [target] = expand("prompt: x\noutput_format: jpeg\noutput: hero/main\n")

    assert target.outputs == ("hero/main.jpg",)


def test_output_extension_must_match_output_format(tmp_path: Path) -> None:
    [(message, location)] = problems(tmp_path, "prompt: x\noutput_format: webp\noutput: a.png\n")

    assert message == "output 'a.png' ends in .png but output_format is webp; use .webp"
    assert location == Location("prompts/p.yaml", 3, 1)


def test_jpeg_accepts_both_jpg_and_jpeg_extensions(expand: Expand) -> None:
    [target] = expand("prompt: x\noutput_format: jpeg\noutput: a.JPEG\n")

    assert target.outputs == ("a.JPEG",)


def test_output_template_giving_one_path_to_two_images_is_an_error(tmp_path: Path) -> None:
    [(message, _)] = problems(tmp_path, 'prompt: x\nn: 3\noutput: "o-{{ index % 2 }}.png"\n')

    assert message == "output gives 2 different paths for 3 images; use {{ index }} in it"


def test_reference_images_make_the_request_an_edit_with_hashed_inputs(expand: Expand) -> None:
    [target] = expand("prompt: x\nimages: [refs/a.png, refs/b.png]\nmask: refs/m.png\n")

    assert target.endpoint == EDITS
    assert [(item.role, item.path, item.sha256) for item in target.inputs] == [
        ("image", "refs/a.png", FAKE_SHA),
        ("image", "refs/b.png", FAKE_SHA),
        ("mask", "refs/m.png", FAKE_SHA),
    ]


def test_manifest_naming_an_unknown_provider_is_an_error_at_that_line(tmp_path: Path) -> None:
    [(message, location)] = problems(tmp_path, "prompt: x\nprovider: nowhere\n")

    assert message.startswith("unknown provider 'nowhere'")
    assert location == Location("prompts/p.yaml", 2, 1)


def test_per_model_problems_point_at_the_field(tmp_path: Path) -> None:
    [(message, location)] = problems(tmp_path, "prompt: x\nsize: 1000x1000\n")

    assert message == (
        "gpt-image-2 cannot make 1000x1000: both sides must be divisible by 16; "
        "the nearest size it can make is 1008x1008"
    )
    assert location == Location("prompts/p.yaml", 2, 1)


def test_per_model_problem_of_a_cell_names_its_address(tmp_path: Path) -> None:
    found = problems(
        tmp_path, "name: t\nprompt: \"{{ 'x' * count }}\"\nmatrix:\n  count: [10, 32001]\n"
    )

    assert found == [
        (
            "t[count=32001]: prompt is 32,001 characters; gpt-image-2 takes at most 32,000",
            Location("prompts/p.yaml", 2, 1),
        )
    ]


def test_unknown_model_is_a_warning_not_an_error(tmp_path: Path) -> None:
    expansion = expand_with(tmp_path, "prompt: x\nmodel: flux-pro-9\n")

    assert len(expansion.targets) == 1
    [warning] = expansion.warnings
    assert warning.message.startswith("unknown model 'flux-pro-9': sent as is")
    assert warning.location == Location("prompts/p.yaml", 2, 1)


def test_fingerprint_is_versioned_and_identical_for_identical_requests(tmp_path: Path) -> None:
    first = expand_with(tmp_path, "prompt: x\n").targets[0]
    second = expand_with(tmp_path, "prompt: x\n", default_name="elsewhere").targets[0]

    assert first.fingerprint.startswith(FINGERPRINT_PREFIX)
    assert first.fingerprint == second.fingerprint


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("", "is empty"),
        ("/abs.png", "is absolute; write it relative"),
        ("C:/x.png", "is absolute; write it relative"),
        ("a/../b.png", "contains '..'"),
        ("a\\b.png", "contains a backslash or NUL; use '/'"),
        ("a//b.png", "has an empty or '.' segment"),
        ("./b.png", "has an empty or '.' segment"),
        ("ok/fine.png", None),
    ],
)
def test_relative_path_problems(path: str, problem: str | None) -> None:
    assert relative_path_problem(path) == problem


@pytest.mark.parametrize(
    ("pattern", "selected"),
    [
        ("tile[a=1]", True),
        ("tile", True),
        ("ti*", True),
        ("tile[a=?]", True),
        ("til", False),
        ("tile[a=2]", False),
    ],
)
def test_address_patterns_select_addresses_manifest_names_and_globs(
    pattern: str, selected: bool
) -> None:
    assert address_matches("tile[a=1]", pattern) is selected


@pytest.mark.parametrize("output", ["''", "'/'", "'{{ \"\" }}'"])
def test_output_rendering_to_no_file_name_is_an_error(tmp_path: Path, output: str) -> None:
    [(message, _)] = problems(tmp_path, f"prompt: x\nn: 2\noutput: {output}\n")

    assert message.startswith("output path '")


@pytest.mark.parametrize(
    "path",
    ["a.png", "dir/a.png", "dir.v2/a", "dir/.hidden", "dir/a.", "a.tar.gz", "a", "x/y/z.JPEG"],
)
def test_suffixes_are_split_as_pure_posix_path_splits_them(path: str) -> None:
    posix = PurePosixPath(path)
    assert _split_suffix(path) == (str(posix.with_suffix("")), posix.suffix)


def test_an_uppercase_x_in_the_size_is_sent_as_lowercase(tmp_path: Path) -> None:
    (tmp_path / "promptform.toml").write_text('[defaults]\nsize = "1536X1024"\n')
    [manifest_size] = expand_with(tmp_path, "prompt: x\nsize: 1024X1024\n").targets
    [default_size] = expand_with(tmp_path, "prompt: x\n").targets

    assert manifest_size.body["size"] == "1024x1024"
    assert default_size.body["size"] == "1536x1024"
