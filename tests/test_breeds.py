"""Typed breed names: exact, fuzzy, unknown, and breeds added by users."""

import pytest

from bot.breeds import BreedIndex
from model.data.dataset import slug


@pytest.fixture(scope="module")
def index() -> BreedIndex:
    return BreedIndex.build()


@pytest.mark.parametrize("typed, name", [
    ("golden", "golden retriever"),
    ("GOLDEN RETRIEVER", "golden retriever"),
    ("golden retreiver", "golden retriever"),
    ("shih tzu", "Shih-Tzu"),
    ("Shih-Tzu", "Shih-Tzu"),
    ("german shepard", "German shepherd"),
    ("labrador", "Labrador retriever"),
    ("Maltese", "Maltese dog"),  # a WordNet synonym
])
def test_typed_names_match_known_breeds(index: BreedIndex, typed: str, name: str) -> None:
    assert index.match(typed).name == name


@pytest.mark.parametrize("typed", ["jindo", "shiba inu", "", "   ", "poodle", "terrier"])
def test_unknown_or_ambiguous_names_do_not_match(index: BreedIndex, typed: str) -> None:
    assert index.match(typed) is None


def test_suggestions_offer_close_names(index: BreedIndex) -> None:
    assert [b.name for b in index.suggestions("beagel")][:1] == ["beagle"]
    assert {b.name for b in index.suggestions("poodle")} == {
        "toy poodle", "miniature poodle", "standard poodle"}
    assert index.suggestions("jindo") == []


def test_new_breeds_become_known(index: BreedIndex) -> None:
    grown = BreedIndex.build(new_breeds=[("korean-jindo", "Korean Jindo")])
    assert grown.match("korean jindo").label == "korean-jindo"
    assert len(grown.breeds) == len(index.breeds) + 1


def test_search_and_slug(index: BreedIndex) -> None:
    assert len(index.search("")) == 121
    assert [b.name for b in index.search("poodle")] == [
        "miniature poodle", "standard poodle", "toy poodle"]
    assert slug("  Korean Jindo (진돗개)!") == "korean-jindo"
    assert slug("진돗개").startswith("breed-") and slug("진돗개") != slug("시바견")
