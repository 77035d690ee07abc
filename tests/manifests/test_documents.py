"""documents.py: bounded, position-keeping YAML loading."""

from __future__ import annotations

from pathlib import Path

import pytest

from promptform.core.errors import Location, ManifestError
from promptform.manifests import documents
from promptform.manifests.documents import load_documents, read_text

ALIAS_BOMB = "\n".join(
    [
        'a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]',
        *(
            f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]"
            for previous, name in zip("abcdefg", "bcdefgh", strict=True)
        ),
        "prompt: boom",
    ]
)


def test_every_document_of_a_multi_document_file_is_loaded_with_its_start_line() -> None:
    loaded = load_documents("prompt: one\n---\nprompt: two\n", "p.yaml")

    assert [document.data for document in loaded] == [{"prompt": "one"}, {"prompt": "two"}]
    assert [document.start_line for document in loaded] == [1, 3]


def test_empty_documents_are_skipped() -> None:
    loaded = load_documents("---\n---\nprompt: only\n---\n", "p.yaml")

    assert [document.data for document in loaded] == [{"prompt": "only"}]


def test_positions_are_recorded_for_nested_keys_and_list_items() -> None:
    text = "vars:\n  colour: red\nimages:\n  - a.png\n  - b.png\n"

    document = load_documents(text, "p.yaml")[0]

    assert document.location(("vars", "colour")) == Location("p.yaml", 2, 3)
    assert document.location(("images", 1)) == Location("p.yaml", 5, 5)


def test_location_of_an_unknown_key_falls_back_to_its_closest_parent() -> None:
    document = load_documents("vars:\n  colour: red\n", "p.yaml")[0]

    assert document.location(("vars", "missing")) == Location("p.yaml", 1, 1)
    assert document.location(("nothing",)) == Location("p.yaml", 1, 1)


def test_block_scalar_value_line_is_the_line_after_the_indicator() -> None:
    document = load_documents("name: x\nprompt: |\n  first line\n", "p.yaml")[0]

    assert document.value_line(("prompt",)) == 3
    assert document.value_line(("name",)) == 1


def test_malformed_yaml_reports_line_and_column() -> None:
    with pytest.raises(ManifestError) as caught:
        load_documents("prompt: x\n  bad: value\n", "p.yaml")

    assert caught.value.location == Location("p.yaml", 2, 6)
    assert caught.value.message.startswith("invalid YAML: ")


def test_duplicate_key_is_an_error_at_the_second_key() -> None:
    with pytest.raises(ManifestError, match="duplicate key 'prompt'") as caught:
        load_documents("prompt: a\nn: 1\nprompt: b\n", "p.yaml")

    assert caught.value.location == Location("p.yaml", 3, 1)


def test_merge_key_is_overridden_by_a_key_written_next_to_it() -> None:
    text = "base: &base {x: 1, y: 2}\nover:\n  <<: *base\n  x: 3\n"

    data = load_documents(text, "p.yaml")[0].data

    assert data["over"] == {"x": 3, "y": 2}


def test_first_merged_mapping_wins_over_later_ones() -> None:
    text = "a: &a {x: 1}\nb: &b {x: 2, y: 2}\nc:\n  <<: [*a, *b]\n"

    data = load_documents(text, "p.yaml")[0].data

    assert data["c"] == {"x": 1, "y": 2}


def test_merging_a_scalar_is_an_error() -> None:
    with pytest.raises(ManifestError, match="merges mappings only"):
        load_documents("a: &a 1\nb:\n  <<: *a\n", "p.yaml")


def test_alias_bomb_is_refused_quickly() -> None:
    with pytest.raises(ManifestError, match="expands to too many values"):
        load_documents(ALIAS_BOMB, "p.yaml")


def test_nesting_beyond_the_depth_limit_is_refused() -> None:
    text = "x: " + "[" * (documents.MAX_DEPTH + 5) + "]" * (documents.MAX_DEPTH + 5)

    with pytest.raises(ManifestError):
        load_documents(text, "p.yaml")


def test_python_object_tags_are_not_constructed() -> None:
    with pytest.raises(ManifestError, match="could not determine a constructor"):
        load_documents("prompt: !!python/object/apply:os.system true\n", "p.yaml")


def test_control_character_is_reported_with_its_position() -> None:
    with pytest.raises(ManifestError, match=r"U\+0007") as caught:
        load_documents("prompt: ok\nname: a\x07b\n", "p.yaml")

    assert caught.value.location == Location("p.yaml", 2, 8)


def test_pure_python_parser_reports_control_characters_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import yaml

    monkeypatch.setattr(documents, "_SafeLoader", yaml.SafeLoader)

    with pytest.raises(ManifestError, match=r"U\+0007") as caught:
        load_documents("prompt: a\x07b\n", "p.yaml")

    assert caught.value.location == Location("p.yaml", 1, 10)


def test_float_and_null_mapping_keys_are_refused() -> None:
    for text in ("1.5: x\n", "~: x\n"):
        with pytest.raises(ManifestError, match="mapping keys must be plain strings"):
            load_documents(text, "p.yaml")


def test_file_over_the_size_limit_is_refused_before_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(documents, "MAX_FILE_BYTES", 10)
    path = tmp_path / "big.yaml"
    path.write_text("prompt: more than ten bytes\n")

    with pytest.raises(ManifestError, match="over the 10-byte limit") as caught:
        read_text(path, "prompts/big.yaml")

    assert caught.value.location == Location("prompts/big.yaml")


def test_non_utf8_file_reports_the_offending_byte_and_position(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("prompt: ok\nname: caf\xe9\n".encode("latin-1"))

    with pytest.raises(ManifestError, match="byte 0xe9") as caught:
        read_text(path, "latin1.yaml")

    assert caught.value.location == Location("latin1.yaml", 2, 10)


def test_tags_on_collections_are_refused_rather_than_ignored() -> None:
    with pytest.raises(
        ManifestError, match=r"tag '!!python/object/apply:os\.system' is not supported"
    ):
        load_documents("prompt: !!python/object/apply:os.system ['true']\n", "p.yaml")


def _dropped_comments(text: str) -> list[str]:
    loaded = load_documents(text, "p.yaml")
    return [warning.one_line() for document in loaded for warning in document.warnings]


def test_a_comment_after_a_plain_value_is_a_warning_naming_the_dropped_text() -> None:
    text = "name: bottle\nprompt: A water bottle in brand orange #FF6600 on a ledge\n"

    (warning,) = _dropped_comments(text)

    assert warning.startswith("p.yaml:2:40: ")
    assert "`#FF6600 on a ledge`" in warning
    assert "quote the whole value" in warning and "`|`" in warning


def test_a_comment_after_a_plain_list_item_is_a_warning() -> None:
    text = "matrix:\n  colour:\n    - orange #FF6600\n    - teal\nprompt: x\n"

    assert [warning.split(": ")[0] for warning in _dropped_comments(text)] == ["p.yaml:3:14"]


def test_a_comment_after_the_last_line_of_a_multi_line_plain_value_is_a_warning() -> None:
    text = "prompt: A bottle\n  in brand orange #FF6600\nn: 1\n"

    assert [warning.split(": ")[0] for warning in _dropped_comments(text)] == ["p.yaml:2:19"]


@pytest.mark.parametrize(
    "text",
    [
        "# a comment on its own line\nprompt: x\n",
        "prompt: x\n  # indented, on its own line\n",
        "prompt: 'A bottle' # after a quoted value\n",
        'prompt: "A bottle" # after a double-quoted value\n',
        "prompt: |  # after a block indicator\n  A bottle #FF6600\n",
        "prompt: A bottle#FF6600 stays in the value\n",
        "n: 2 # after a number\n",
        "size: 1024x1024 # after a setting, whose value is a word, not text\n",
        "quality: high # the best we can afford\nmodel: gpt-image-2 # pinned\n",
        "matrix:  # after a key\n  colour: [orange, teal] # after a flow list\nprompt: x\n",
    ],
)
def test_comments_that_drop_no_text_are_not_warned_about(text: str) -> None:
    assert _dropped_comments(text) == []


YAML_MISTAKES = {
    # text, the expected location, words the message must contain
    "colon_in_value": (
        "name: poster\nprompt: A poster: bold type\n",
        (2, 17),
        ["`: `", "quote the whole value", "`|`"],
    ),
    "line_without_colon_at_the_end": (
        "prompt: x\nn: 1\nsize 1024x1024\n",
        (3, 1),
        ["`size 1024x1024`", "`:`"],
    ),
    "unclosed_list_at_the_end": ("prompt: x\ntime: [day, night\n", (2, 7), ["`[`", "`]`"]),
    "unclosed_list_before_more_fields": (
        "prompt: x\ntime: [day, night\nn: 1\n",
        (2, 7),
        ["`[`", "`]`"],
    ),
    "unclosed_mapping": ("prompt: x\nvars: {a: 1\n", (2, 7), ["`{`", "`}`"]),
    "unclosed_quote": ('prompt: "A fox\nn: 1\n', (1, 9), ["quote", "never closed"]),
    "tab": ("prompt: x\nvars:\n\tcolour: red\n", (3, 1), ["tab", "spaces"]),
    "text_after_quote": ('prompt: "A fox" in a box\n', (1, 17), ["closing quote"]),
    "misaligned_field": ("vars:\n  a: 1\n b: 2\nprompt: x\n", (3, 2), ["line it up"]),
}


@pytest.mark.parametrize("parser", ["libyaml", "python"])
@pytest.mark.parametrize("case", list(YAML_MISTAKES))
def test_yaml_mistakes_are_explained_in_plain_words_at_a_line_of_the_file(
    monkeypatch: pytest.MonkeyPatch, case: str, parser: str
) -> None:
    import yaml

    if parser == "python":
        monkeypatch.setattr(documents, "_SafeLoader", yaml.SafeLoader)
    text, (line, column), words = YAML_MISTAKES[case]

    with pytest.raises(ManifestError) as caught:
        load_documents(text, "p.yaml")

    assert caught.value.location == Location("p.yaml", line, column)
    assert line <= len(text.splitlines())
    assert all(word in caught.value.message for word in words), caught.value.message


def test_an_unexplained_yaml_error_past_the_end_is_shown_on_the_last_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import yaml

    # The pure-Python parser gives up on a stray directive after the last line.
    monkeypatch.setattr(documents, "_SafeLoader", yaml.SafeLoader)
    text = "prompt: x\n%foo\n"

    with pytest.raises(ManifestError) as caught:
        load_documents(text, "p.yaml")

    assert caught.value.location is not None
    assert (caught.value.location.line or 0) <= len(text.splitlines())
