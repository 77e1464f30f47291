"""From class probabilities to the answer people see: dog or not, which breeds, or a mix; and,
for a photo looked at closer, where each dog is and what it is.

The same answer shapes serve the CLI (``--json``) and the bot.
"""

from __future__ import annotations

from dataclasses import asdict, astuple, dataclass

import numpy as np

from model.labels import BREED_CLASSES, CANID_CLASSES, imagenet_classes

# Chosen with scripts/choose_thresholds.py on dogs-dev val and non-dog photos (see README).
DOG_THRESHOLD = 0.3  # below this mass on the dog classes the photo is "not a dog"
MIX_THRESHOLD = 0.5  # below this top-breed probability the dog is "probably a mix"
# A dog whose box on the dog map covers less of the photo than this is small: it gets a second
# look (``Look``; the "come closer" advice has its own limit, ``model.advice.LIMITS``).
SMALL_DOG = 0.25
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


@dataclass(frozen=True)
class Box:
    """A region of a photo as fractions of its width and height: 0 is the left (top) edge,
    1 the right (bottom) one, in the photo as it is seen (EXIF rotation applied)."""

    left: float
    top: float
    right: float
    bottom: float

    @property
    def share(self) -> float:
        """The share of the photo's area inside the box."""
        return (self.right - self.left) * (self.bottom - self.top)


@dataclass(frozen=True)
class Dog:
    """One dog found in a photo: where it is, and its own answer."""

    box: Box
    answer: Answer

    def to_json(self) -> dict:
        answer = self.answer.to_json()
        return {"box": [round(v, 4) for v in astuple(self.box)], "share": round(self.box.share, 4),
                "mixed": answer["mixed"], "predictions": answer["predictions"]}


@dataclass(frozen=True)
class PhotoAnswer:
    """The answer for a whole photo, and for each dog in it (the brightest on the dog map
    first; none when the photo is not a dog; with one dog, its answer is the photo's)."""

    answer: Answer
    dogs: tuple[Dog, ...]
    looked_twice: bool  # the photo's answer also looked at a crop around its first dog
    # When the answer is unsure: one line on why, and how to retake the photo (model.advice).
    advice: str | None = None

    def to_json(self) -> dict:
        """The photo's answer as ``Answer.to_json``, plus ``dogs`` and ``advice``."""
        return self.answer.to_json() | {"dogs": [dog.to_json() for dog in self.dogs],
                                        "advice": self.advice}


def imagenet_breeds() -> tuple[Breed, ...]:
    """The breeds of the zero-training model: ImageNet's dog classes, i.e. Stanford Dogs' breeds."""
    classes = imagenet_classes()
    return tuple(Breed(classes[i].wnid, classes[i].name) for i in BREED_CLASSES)


def dog_probability(imagenet_probs: np.ndarray) -> np.ndarray:
    """(..., 1000) softmax -> (...,) mass on the dog classes (breeds, wolves, wild dogs)."""
    return imagenet_probs[..., list(CANID_CLASSES)].sum(-1)


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


def article(name: str) -> str:
    """"a" or "an", as English puts it before ``name``: a beagle, an English foxhound."""
    return "an" if name[:1].lower() in "aeiou" else "a"


def headline(answer: Answer) -> str:
    """One line for people: the breed the dog looks most like, a likely mix, or what the
    photo shows instead. Looks, not breed: only a DNA test can tell a mix for sure."""
    if not answer.is_dog:
        return f"that doesn't look like a dog (looks like: {answer.looks_like})"
    if answer.mixed:
        likely = answer.predictions[:MIX_BREEDS]
        names = [p.name for i, p in enumerate(likely) if i < 2 or p.probability >= 0.05]
        return f"probably a mix of {_name_list(names)}"
    name = answer.predictions[0].name
    return f"looks most like {article(name)} {name}"
