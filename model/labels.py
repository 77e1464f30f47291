"""The ImageNet-1k label table, and which of its classes are dogs and which are breeds."""

from __future__ import annotations

import functools
import importlib.resources
from dataclasses import dataclass

# ImageNet classes 151–268 are dog breeds, 269–272 wolves and the coyote, 273–275 the dingo,
# dhole and African hunting dog (which Stanford Dogs counts as breeds).
BREED_CLASSES = (*range(151, 269), 273, 274, 275)
CANID_CLASSES = tuple(range(151, 276))


@dataclass(frozen=True)
class ImageNetClass:
    index: int
    wnid: str  # WordNet id, e.g. "n02099601": the stable label
    names: tuple[str, ...]  # e.g. ("golden retriever",); the first is the display name

    @property
    def name(self) -> str:
        return self.names[0]


@functools.cache
def imagenet_classes() -> tuple[ImageNetClass, ...]:
    """All 1000 classes in the order of the backbone's logits."""
    text = importlib.resources.files("model").joinpath("imagenet_classes.tsv").read_text()
    rows = [line.split("\t") for line in text.splitlines() if not line.startswith("#")]
    classes = tuple(ImageNetClass(int(i), wnid, tuple(n.strip() for n in names.split(",")))
                    for i, wnid, names in rows)
    assert [c.index for c in classes] == list(range(1000))
    return classes

