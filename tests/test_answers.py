"""Tests for model.answers with hand-built ImageNet probability vectors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from model.answers import (
    DOG_THRESHOLD,
    MIX_THRESHOLD,
    Answer,
    BreedGuess,
    PhotoAnswer,
    dog_probability,
    headline,
    imagenet_breeds,
    make_answer,
)
from tests.conftest import breed_probs_on_the_mean

TABBY, TENCH, CHIHUAHUA, GOLDEN_RETRIEVER, TIMBER_WOLF, DINGO = 281, 0, 151, 207, 269, 273
DOG_CLASSES = slice(151, 276)  # ImageNet's breeds, wolves, coyote, dingo, dhole, hunting dog
NOT_DOGS = np.r_[0:151, 276:1000]


def probabilities(peaks: dict[int, float]) -> np.ndarray:
    """A (1000,) softmax-like vector: the given peaks, a floor of 1e-6 on every class and the
    rest spread thinly over the non-dog classes."""
    rest = 1.0 - sum(peaks.values()) - 1000 * 1e-6
    assert rest >= 0, peaks
    probs = np.full(1000, 1e-6)
    probs[NOT_DOGS] += rest / len(NOT_DOGS)
    for index, mass in peaks.items():
        probs[index] += mass
    return probs.astype(np.float32)


def answer_for(probs: np.ndarray, top_k: int = 5) -> Answer:
    return make_answer(probs, breed_probs_on_the_mean(probs), imagenet_breeds(), top_k)


def test_not_a_dog_names_what_it_looks_like() -> None:
    answer = answer_for(probabilities({TABBY: 0.6, CHIHUAHUA: DOG_THRESHOLD / 2}))
    assert not answer.is_dog
    assert answer.dog_probability == pytest.approx(DOG_THRESHOLD / 2, abs=1e-3)
    assert answer.looks_like == "tabby"
    assert not answer.mixed


def test_looks_like_skips_dog_classes() -> None:
    # The single likeliest class is a dog, but all dogs together stay below the threshold.
    answer = answer_for(probabilities({CHIHUAHUA: 0.9 * DOG_THRESHOLD,
                                       TENCH: 0.8 * DOG_THRESHOLD}))
    assert not answer.is_dog
    assert answer.looks_like == "tench"


def test_dog_mass_counts_wolves_and_wild_dogs() -> None:
    probs = probabilities({TIMBER_WOLF: 0.45, DINGO: 0.45})
    assert dog_probability(probs) == pytest.approx(probs[DOG_CLASSES].sum(), abs=1e-6)
    answer = answer_for(probs)
    assert answer.is_dog and answer.looks_like is None
    assert answer.dog_probability == pytest.approx(0.9, abs=1e-3)
    assert answer.predictions[0].label == "n02115641"  # the dingo is a breed, the wolf is not
    assert "n02114367" not in {p.label for p in answer.predictions}


def test_confident_breed_is_not_mixed() -> None:
    answer = answer_for(probabilities({GOLDEN_RETRIEVER: 0.95}))
    assert answer.is_dog and not answer.mixed
    top = answer.predictions[0]
    assert (top.label, top.name) == ("n02099601", "golden retriever")
    assert top.probability > MIX_THRESHOLD


def test_spread_over_breeds_is_mixed() -> None:
    answer = answer_for(probabilities({index: 0.19 for index in range(151, 156)}))
    assert answer.is_dog and answer.mixed
    assert answer.predictions[0].probability == pytest.approx(0.2, abs=1e-3)
    assert {p.label for p in answer.predictions} == {b.label for b in imagenet_breeds()[:5]}


@pytest.mark.parametrize("top_k", [1, 3, 5, 121, 500])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_predictions_sorted_and_bounded(top_k: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.full(1000, 0.05)).astype(np.float32)
    predictions = answer_for(probs, top_k).predictions
    assert len(predictions) == min(top_k, 121)
    chances = [p.probability for p in predictions]
    assert chances == sorted(chances, reverse=True)
    assert sum(chances) <= 1 + 1e-5
    assert len({p.label for p in predictions}) == len(predictions)


@pytest.mark.parametrize("peaks", [{TABBY: 0.7}, {GOLDEN_RETRIEVER: 0.95},
                                   {CHIHUAHUA: 0.3, TIMBER_WOLF: 0.3, 152: 0.3}])
def test_to_json_round_trips(peaks: dict[int, float]) -> None:
    answer = answer_for(probabilities(peaks))
    data = answer.to_json()
    assert json.loads(json.dumps(data, allow_nan=False)) == data
    assert set(data) == {"is_dog", "dog_probability", "mixed", "predictions", "looks_like"}
    assert data["is_dog"] is answer.is_dog and data["mixed"] is answer.mixed
    assert data["dog_probability"] == pytest.approx(answer.dog_probability, abs=1e-4)
    assert data["looks_like"] == answer.looks_like
    assert [(p["label"], p["name"]) for p in data["predictions"]] == [
        (p.label, p.name) for p in answer.predictions]
    assert [p["probability"] for p in data["predictions"]] == pytest.approx(
        [p.probability for p in answer.predictions], abs=1e-4)
    assert all(set(p) == {"label", "name", "probability"} for p in data["predictions"])


def test_imagenet_breeds() -> None:
    breeds = imagenet_breeds()
    assert len(breeds) == 121
    assert len({b.label for b in breeds}) == 121
    names = {b.label: b.name for b in breeds}
    assert names["n02099601"] == "golden retriever"
    assert names["n02115641"] == "dingo"
    assert names["n02085620"] == "Chihuahua"
    assert not {"n02114367", "n02114548", "n02114712", "n02114855"} & set(names)  # wolves, coyote


def test_imagenet_breeds_match_the_photo_folders(shared_datasets: Path) -> None:
    """Every breed has real photos: 111 in imagenet-dogs-121 and the other 10 in dogs-dev."""
    wnids = {p.name.split("-")[0] for p in (shared_datasets / "imagenet-dogs-121").glob("*.jpg")}
    wnids |= {p.name.split("-")[0] for p in (shared_datasets / "dogs-dev" / "Images").iterdir()}
    assert wnids == {b.label for b in imagenet_breeds()}


def test_headline_says_looks_most_like_and_keeps_mixes() -> None:
    assert headline(answer_for(probabilities({GOLDEN_RETRIEVER: 0.95}))) == (
        "looks most like a golden retriever")
    foxhound = Answer(True, 0.9, False, (BreedGuess("n02089973", "English foxhound", 0.8),))
    assert headline(foxhound) == "looks most like an English foxhound"
    mixed = answer_for(probabilities({index: 0.19 for index in range(151, 156)}))
    assert headline(mixed).startswith("probably a mix of ")


def test_a_photo_answer_carries_its_advice_into_json() -> None:
    answer = answer_for(probabilities({TABBY: 0.7}))
    assert PhotoAnswer(answer, (), False).to_json()["advice"] is None
    advised = PhotoAnswer(answer, (), False, "I can't see a dog; is it in the picture?")
    assert advised.to_json() == answer.to_json() | {"dogs": [], "advice": advised.advice}
