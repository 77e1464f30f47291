"""model.evaluation.several_dogs: composites and how their dogs are matched to halves; the real
model on composites is tested in test_predictor.py."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from model.answers import Answer, Box, BreedGuess, Dog, PhotoAnswer
from model.data.dataset import Example
from model.evaluation.several_dogs import LAYOUTS, SIDE, breed_pairs, composite, halves


def png(colour: tuple[int, int, int], size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("layout", LAYOUTS)
def test_composite_puts_the_first_photo_left_or_on_top(layout: str) -> None:
    pixels = np.asarray(Image.open(io.BytesIO(composite(png((255, 0, 0), (300, 200)),
                                                        png((0, 0, 255), (50, 90)), layout))))
    first, second = ((pixels[:, :SIDE], pixels[:, SIDE:]) if layout == LAYOUTS[0]
                     else (pixels[:SIDE], pixels[SIDE:]))
    assert first.shape == second.shape == (SIDE, SIDE, 3)
    assert first[8:-8, 8:-8, 0].min() > 230 and second[8:-8, 8:-8, 2].min() > 230


def dog(left: float, right: float, label: str) -> Dog:
    answer = Answer(True, 0.9, False, (BreedGuess(label, label, 0.9),))
    return Dog(Box(left, 0.0, right, 1.0), answer)


def test_halves_are_the_two_dogs_left_to_right() -> None:
    answer = Answer(True, 0.9, True, (BreedGuess("a", "a", 0.4),))
    two = PhotoAnswer(answer, (dog(0.55, 1.0, "b"), dog(0.0, 0.5, "a")), False)
    assert halves(two, LAYOUTS[0]) == ("a", "b")
    same_half = PhotoAnswer(answer, (dog(0.0, 0.4, "a"), dog(0.1, 0.45, "b")), False)
    assert halves(same_half, LAYOUTS[0]) is None
    assert halves(PhotoAnswer(answer, (dog(0.0, 1.0, "a"),), False), LAYOUTS[0]) is None


def test_pairs_are_of_two_breeds_and_repeatable() -> None:
    examples = [Example(Path(f"{i}.jpg"), "", f"n{i % 3}", "", "", "", "") for i in range(9)]
    pairs = breed_pairs(examples, 5)
    assert len(pairs) == 5 and all(a.label != b.label for a, b in pairs)
    assert pairs == breed_pairs(examples, 5)
