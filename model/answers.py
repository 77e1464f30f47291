"""From class probabilities to the answer people see: dog or not, which breeds, or a mix.

The same answer shape serves the CLI (``--json``) and the bot.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from model.labels import BREED_CLASSES, CANID_CLASSES, imagenet_classes

# Chosen with scripts/choose_thresholds.py on dogs-dev val and non-dog photos (see README).
DOG_THRESHOLD = 0.3  # below this mass on the dog classes the photo is "not a dog"
MIX_THRESHOLD = 0.5  # below this top-breed probability the dog is "probably a mix"
MIX_BREEDS = 3  # how many breeds a "mix of …" answer names at most


@dataclass(frozen=True)
class Breed:
    label: str  # stable id: a WordNet id such as "n02099601", or a slug for new breeds
    name: str  # display name such as "golden retriever"


@dataclass(frozen=True)
class BreedGuess:
    label: str
    name: str
    probability: float


@dataclass(frozen=True)
class Answer:
    is_dog: bool
    dog_probability: float  # probability mass on the ImageNet dog classes
    mixed: bool  # no breed is confident: probably a mix of the first few predictions
    predictions: tuple[BreedGuess, ...]  # sorted, most likely first; probabilities sum to <= 1
    looks_like: str | None = None  # for non-dogs: the likeliest ImageNet class, e.g. "tabby"

    def to_json(self) -> dict:
        """Plain JSON types, probabilities rounded to 4 places."""
        predictions = [asdict(p) | {"probability": round(p.probability, 4)}
                       for p in self.predictions]
        return asdict(self) | {"dog_probability": round(self.dog_probability, 4),
                               "predictions": predictions}


def imagenet_breeds() -> tuple[Breed, ...]:
    """The breeds of the zero-training model: ImageNet's dog classes, i.e. Stanford Dogs' breeds."""
    classes = imagenet_classes()
    return tuple(Breed(classes[i].wnid, classes[i].name) for i in BREED_CLASSES)


def dog_probability(imagenet_probs: np.ndarray) -> np.ndarray:
    """(..., 1000) softmax -> (...,) mass on the dog classes (breeds, wolves, wild dogs)."""
    return imagenet_probs[..., list(CANID_CLASSES)].sum(-1)


def imagenet_breed_probs(imagenet_probs: np.ndarray) -> np.ndarray:
    """(..., 1000) softmax -> (..., 121): the ImageNet head restricted to breeds, renormalised."""
    breed_mass = imagenet_probs[..., list(BREED_CLASSES)]
    return breed_mass / breed_mass.sum(-1, keepdims=True)


def make_answer(imagenet_probs: np.ndarray, breed_probs: np.ndarray,
                breeds: tuple[Breed, ...], top_k: int = 5) -> Answer:
    """One photo's answer from its (1000,) ImageNet softmax and (N,) breed probabilities."""
    dog_mass = float(dog_probability(imagenet_probs))
    order = np.argsort(-breed_probs)[:top_k]
    predictions = tuple(BreedGuess(breeds[i].label, breeds[i].name, float(breed_probs[i]))
                        for i in order)
    if dog_mass < DOG_THRESHOLD:
        others = np.delete(np.arange(imagenet_probs.shape[-1]), list(CANID_CLASSES))
        best_other = int(others[np.argmax(imagenet_probs[others])])
        return Answer(False, dog_mass, False, predictions, imagenet_classes()[best_other].name)
    return Answer(True, dog_mass, predictions[0].probability < MIX_THRESHOLD, predictions)


def _name_list(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def headline(answer: Answer) -> str:
    """One line for people: the breed, a likely mix, or what the photo shows instead."""
    if not answer.is_dog:
        return f"that doesn't look like a dog (looks like: {answer.looks_like})"
    if answer.mixed:
        likely = answer.predictions[:MIX_BREEDS]
        names = [p.name for i, p in enumerate(likely) if i < 2 or p.probability >= 0.05]
        return f"probably a mix of {_name_list(names)}"
    return answer.predictions[0].name
