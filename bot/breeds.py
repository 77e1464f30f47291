"""Breed names people type ("jindo", "golden", "shih tzu") matched to known breeds."""

from __future__ import annotations

import re
from dataclasses import dataclass

from rapidfuzz import fuzz, process, utils

from model.answers import Breed, imagenet_breeds
from model.labels import imagenet_classes

MATCH_SCORE = 88  # rapidfuzz WRatio (0–100) at which a typed name counts as that breed
SUGGEST_SCORE = 75


def normalise(text: str) -> str:
    return utils.default_process(re.sub(r"[-_'’]", " ", text))


@dataclass(frozen=True)
class BreedIndex:
    """Every name and alias of the known breeds, for exact and fuzzy look-ups."""

    breeds: tuple[Breed, ...]
    aliases: dict[str, Breed]  # normalised alias -> breed

    @classmethod
    def build(cls, model_breeds: tuple[Breed, ...] | None = None,
              new_breeds: list[tuple[str, str]] = ()) -> BreedIndex:
        """The model's breeds (ImageNet's by default) with their WordNet synonyms, plus breeds
        people have added through corrections."""
        synonyms = {c.wnid: c.names for c in imagenet_classes()}
        model_breeds = model_breeds or imagenet_breeds()
        breeds = list(model_breeds)
        breeds += [Breed(label, name) for label, name in new_breeds
                   if label not in {b.label for b in model_breeds}]
        aliases: dict[str, Breed] = {}
        for breed in breeds:
            for name in (breed.name, *synonyms.get(breed.label, ())):
                aliases.setdefault(normalise(name), breed)
        return cls(tuple(breeds), aliases)

    def match(self, text: str) -> Breed | None:
        """The breed ``text`` names, if it is clear which one."""
        key = normalise(text)
        if not key:
            return None
        if key in self.aliases:
            return self.aliases[key]
        best = process.extract(key, self.aliases.keys(), scorer=fuzz.WRatio, limit=2)
        if best and best[0][1] >= MATCH_SCORE:
            runner_up = best[1][1] if len(best) > 1 else 0
            top = self.aliases[best[0][0]]
            if runner_up < best[0][1] or self.aliases[best[1][0]] == top:
                return top
        return None

    def suggestions(self, text: str, limit: int = 3) -> list[Breed]:
        """Known breeds whose names come closest to ``text``."""
        found: list[Breed] = []
        for alias, score, _ in process.extract(normalise(text), self.aliases.keys(),
                                               scorer=fuzz.WRatio, limit=limit * 3):
            breed = self.aliases[alias]
            if score >= SUGGEST_SCORE and breed not in found:
                found.append(breed)
        return found[:limit]

    def search(self, text: str) -> list[Breed]:
        """Breeds whose name contains ``text`` (all of them for an empty filter)."""
        key = normalise(text)
        return sorted((b for b in self.breeds if key in normalise(b.name)),
                      key=lambda b: b.name.lower())
