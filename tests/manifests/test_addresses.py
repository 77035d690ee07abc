"""Address patterns: exact addresses, globs, axes in any order, paths, and did-you-mean."""

from __future__ import annotations

import pytest

from promptform.core.errors import PromptformError
from promptform.manifests.addresses import address_matches, matching_addresses, path_aliases

HERO = "marketing/product-hero[product=water bottle,time=dawn]"
QUOTED = 'cards/a[caption="a, b",time=dawn]'


@pytest.mark.parametrize(
    "pattern",
    [
        HERO,
        "marketing/product-hero[time=dawn,product=water bottle]",
        "marketing/product-hero[ time=dawn , product=water bottle ]",
        "marketing/product-hero",
        "marketing/*",
        "*[product=water bottle,time=dawn]",
    ],
)
def test_pattern_selects_the_address(pattern: str) -> None:
    assert address_matches(HERO, pattern)


@pytest.mark.parametrize(
    "pattern",
    [
        "marketing/product-hero[time=dusk,product=water bottle]",
        "marketing/product-hero[time=dawn]",
        "marketing/product-hero[time=dawn,product=water bottle,extra=1]",
        "marketing/other[time=dawn,product=water bottle]",
    ],
)
def test_pattern_does_not_select_another_cell(pattern: str) -> None:
    assert not address_matches(HERO, pattern)


def test_quoted_values_match_in_any_order() -> None:
    assert address_matches(QUOTED, 'cards/a[time=dawn,caption="a, b"]')


def test_path_aliases_name_outputs_with_and_without_the_outputs_dir_and_the_manifest() -> None:
    aliases = path_aliases(
        "prompts/marketing/hero.yaml", ["marketing/hero-1.png"], "prompts", "generated"
    )
    assert set(aliases) == {
        "prompts/marketing/hero.yaml",
        "marketing/hero.yaml",
        "marketing/hero-1.png",
        "generated/marketing/hero-1.png",
    }


@pytest.mark.parametrize(
    "pattern",
    [
        "generated/marketing/hero-1.png",
        "marketing/hero-1.png",
        "./generated/marketing/hero-1.png",
        "prompts/marketing/hero.yaml",
        "marketing/hero.yaml",
        "generated/marketing/*.png",
    ],
)
def test_paths_select_their_targets(pattern: str) -> None:
    aliases = {
        HERO: path_aliases(
            "prompts/marketing/hero.yaml", ["marketing/hero-1.png"], "prompts", "generated"
        ),
        "other": path_aliases("prompts/other.yaml", ["other-1.png"], "prompts", "generated"),
    }
    assert matching_addresses([HERO, "other"], [pattern], _unmatched, aliases) == [HERO]


def _unmatched(pattern: str, suggestion: str | None) -> str:
    return f"no match for '{pattern}'" + (f"; did you mean '{suggestion}'?" if suggestion else "")


def test_nothing_matching_suggests_the_closest_address() -> None:
    with pytest.raises(PromptformError) as error:
        matching_addresses([HERO, "sunset"], ["marketing/product-hro"], _unmatched)
    assert error.value.message == (
        "no match for 'marketing/product-hro'; did you mean 'marketing/product-hero'?"
    )


def test_a_wrong_axis_value_suggests_a_cell_of_the_same_manifest() -> None:
    cells = [
        "marketing/product-hero[product=mug,time=dusk]",
        HERO,
        "marketing/product-hero[product=water bottle,time=dusk]",
        "marketing/product-her",
    ]
    with pytest.raises(PromptformError) as error:
        matching_addresses(
            cells, ["marketing/product-hero[time=daw,product=water bottle]"], _unmatched
        )
    assert error.value.message.endswith(f"did you mean '{HERO}'?")


def test_nothing_close_suggests_nothing() -> None:
    with pytest.raises(PromptformError) as error:
        matching_addresses([HERO], ["zzzz"], _unmatched)
    assert error.value.message == "no match for 'zzzz'"
