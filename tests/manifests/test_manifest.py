"""manifest.py: the pydantic models, their messages, file discovery and the JSON Schema."""

from __future__ import annotations

from pathlib import Path

import pytest

from promptform.core.errors import ErrorGroup, Location, PromptformError
from promptform.manifests.documents import load_documents
from promptform.manifests.manifest import (
    Manifest,
    load_manifest_file,
    load_manifest_text,
    manifest_schema,
    parse_manifest,
)
from promptform.manifests.manifest_files import find_manifest_files


def parse(text: str) -> Manifest:
    return parse_manifest(load_documents(text, "p.yaml")[0])


def problems(text: str) -> list[tuple[str, Location | None]]:
    with pytest.raises(PromptformError) as caught:
        parse(text)
    return [(leaf.message, leaf.location) for leaf in caught.value.errors()]


def test_minimal_manifest_needs_only_a_prompt() -> None:
    manifest = parse("prompt: A beautiful sunset\n")

    assert manifest.prompt == "A beautiful sunset"
    assert manifest.name is None
    assert manifest.n is None
    assert manifest.images == []


def test_unknown_field_suggests_the_closest_field_at_its_line() -> None:
    assert problems("prompt: x\nsise: 1024x1024\n") == [
        ("unknown field 'sise' in the manifest; did you mean 'size'?", Location("p.yaml", 2, 1))
    ]


def test_unknown_field_without_a_close_match_lists_every_field() -> None:
    [(message, _)] = problems("prompt: x\nzzzzzz: 1\n")

    assert message.startswith(
        "unknown field 'zzzzzz' in the manifest; expected one of: background,"
    )


def test_every_problem_of_a_document_is_reported_together() -> None:
    found = problems("prompt: x\nn: 0\nquality: ultra\n")

    assert [location for _, location in found] == [
        Location("p.yaml", 2, 1),
        Location("p.yaml", 3, 1),
    ]
    assert "'n' input should be greater than or equal to 1 (got 0)" in found[0][0]
    assert "must be one of 'low', 'medium', 'high', 'auto', 'standard' or 'hd'" in found[1][0]


def test_missing_prompt_is_an_error() -> None:
    assert problems("name: x\n") == [
        ("missing required field 'prompt' in the manifest", Location("p.yaml", 1, 1))
    ]


def test_blank_prompt_is_an_error() -> None:
    [(message, _)] = problems("prompt: '   '\n")

    assert "prompt is empty" in message


@pytest.mark.parametrize("n", [0, 11])
def test_n_outside_one_to_ten_is_an_error(n: int) -> None:
    [(message, _)] = problems(f"prompt: x\nn: {n}\n")

    assert message.startswith("'n' input should be")


def test_output_compression_outside_0_to_100_is_an_error() -> None:
    [(message, _)] = problems("prompt: x\noutput_compression: 101\n")

    assert message.startswith("'output_compression' input should be less than or equal to 100")


def test_var_names_must_be_identifiers() -> None:
    [(message, location)] = problems("prompt: x\nvars:\n  my-colour: red\n")

    assert "'my-colour' is not a valid identifier" in message
    assert location == Location("p.yaml", 2, 1)


def test_matrix_axes_are_kept_in_declared_order() -> None:
    manifest = parse("prompt: x\nmatrix:\n  zeta: [1]\n  alpha: [a, b]\n")

    assert manifest.matrix is not None
    assert list(manifest.matrix.axes()) == ["zeta", "alpha"]


def test_matrix_axis_values_must_be_scalars() -> None:
    assert problems("prompt: x\nmatrix:\n  colour: [{nested: 1}]\n") == [
        (
            "'matrix.colour[0]': input should be a string, a number or true/false",
            Location("p.yaml", 3, 12),
        )
    ]


def test_matrix_axis_names_must_be_identifiers() -> None:
    [(message, _)] = problems("prompt: x\nmatrix:\n  'a=b': [1]\n")

    assert "matrix axis name 'a=b' is not a valid identifier" in message


def test_misspelt_matrix_include_is_taken_for_an_axis_of_dicts_and_refused() -> None:
    [(message, _)] = problems(
        "prompt: x\nmatrix:\n  colour: [red]\n  includes:\n    - {colour: blue}\n"
    )

    assert message.startswith("'matrix.includes[0]': input should be a string")


def test_load_manifest_file_keeps_every_document_and_the_default_name(tmp_path: Path) -> None:
    prompts = tmp_path / "prompts"
    path = prompts / "marketing" / "hero.yaml"
    path.parent.mkdir(parents=True)
    path.write_text("prompt: one\n---\nname: second\nprompt: two\n")

    loaded = load_manifest_file(path, prompts, "prompts/marketing/hero.yaml")

    assert [item.manifest.prompt for item in loaded] == ["one", "two"]
    assert {item.default_name for item in loaded} == {"marketing/hero"}
    assert loaded[1].location("name") == Location("prompts/marketing/hero.yaml", 3, 1)


def test_problems_in_several_documents_of_one_file_are_reported_together(tmp_path: Path) -> None:
    path = tmp_path / "two.yaml"
    path.write_text("promt: one\n---\nprompt: two\nsize: [1]\n")

    with pytest.raises(ErrorGroup) as caught:
        load_manifest_file(path, tmp_path, "two.yaml")

    assert [leaf.location for leaf in caught.value.errors()] == [
        Location("two.yaml", 1, 1),
        Location("two.yaml", 1, 1),
        Location("two.yaml", 4, 1),
    ]


def test_a_document_that_is_not_a_mapping_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- prompt: x\n")

    with pytest.raises(ErrorGroup) as caught:
        load_manifest_file(path, tmp_path, "list.yaml")

    [leaf] = caught.value.errors()
    assert leaf.message.startswith("a manifest must be a mapping")
    assert leaf.location == Location("list.yaml", 1, 1)


def test_manifest_files_are_yaml_and_yml_in_a_stable_order(tmp_path: Path) -> None:
    for relative in ("b.yaml", "a/z.yml", "a/readme.md", "c.YAML.bak", "a.yaml"):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text("prompt: x\n")

    found = [path.relative_to(tmp_path).as_posix() for path in find_manifest_files(tmp_path)]

    assert found == ["a.yaml", "a/z.yml", "b.yaml"]


def test_manifest_files_are_found_as_a_glob_of_the_folder_finds_them(tmp_path: Path) -> None:
    # The definition: every *.yaml / *.yml that is a file (a symlink to one too), found without
    # entering symlinked folders, in the order of their paths under the folder.
    prompts, elsewhere = tmp_path / "prompts", tmp_path / "elsewhere"
    for relative in (
        "a.yaml",
        "b/c.yml",
        "b/d/e.yaml",
        ".hidden.yaml",
        ".yaml",
        "f.yaml.txt",
        "g.YAML",
        "h.tar.yaml",
        "..yaml",
        "k.yaml.",
        "dir.yaml/i.yaml",
        "é/ü.yaml",
        "j k.yml",
    ):
        (prompts / relative).parent.mkdir(parents=True, exist_ok=True)
        (prompts / relative).write_text("prompt: x\n")
    (elsewhere / "deep").mkdir(parents=True)
    (elsewhere / "outside.yaml").write_text("prompt: x\n")
    (elsewhere / "deep" / "inner.yaml").write_text("prompt: x\n")
    (prompts / "link.yaml").symlink_to(elsewhere / "outside.yaml")
    (prompts / "broken.yaml").symlink_to(tmp_path / "missing.yaml")
    (prompts / "linked-folder").symlink_to(elsewhere / "deep")
    (prompts / "folder-link.yaml").symlink_to(elsewhere / "deep")
    expected = sorted(
        (
            path
            for path in prompts.rglob("*")
            if path.suffix in (".yaml", ".yml") and path.is_file()
        ),
        key=lambda path: path.relative_to(prompts).as_posix(),
    )

    found = find_manifest_files(prompts)

    assert found == expected
    assert "link.yaml" in [path.name for path in found]  # the check sees symlinks


def test_missing_prompts_dir_has_no_manifests(tmp_path: Path) -> None:
    assert find_manifest_files(tmp_path / "nowhere") == []


def test_schema_forbids_unknown_fields_and_requires_a_prompt() -> None:
    schema = manifest_schema()

    assert schema["additionalProperties"] is False
    assert schema["required"] == ["prompt"]
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_schema_lists_every_model_field() -> None:
    assert set(manifest_schema()["properties"]) == set(Manifest.model_fields)


def test_an_axis_not_indented_under_matrix_is_named_as_such() -> None:
    text = "matrix:\n  product: [mug]\ntime: [day, night]\nprompt: A {{ time }} scene\n"

    with pytest.raises(PromptformError) as caught:
        load_manifest_text(text, "p", "p.yaml")

    (problem,) = caught.value.errors()
    assert problem.location == Location("p.yaml", 3, 1)
    assert "looks like a matrix axis that is not indented under `matrix:`" in problem.message


@pytest.mark.parametrize(
    "text",
    [
        "time: [day, night]\nprompt: x\n",  # no matrix at all
        "time: [day, night]\nmatrix:\n  product: [mug]\nprompt: x\n",  # above matrix
        "matrix:\n  product: [mug]\ntime: day\nprompt: x\n",  # not a list of values
    ],
)
def test_other_unknown_fields_keep_the_did_you_mean_hint(text: str) -> None:
    with pytest.raises(PromptformError) as caught:
        load_manifest_text(text, "p", "p.yaml")

    (problem,) = caught.value.errors()
    assert "unknown field 'time'" in problem.message
    assert "matrix axis" not in problem.message
