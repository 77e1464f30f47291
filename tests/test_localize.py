"""model.localize on hand-made dog maps and boxes; the real model's maps are tested through
``Predictor.look`` in test_predictor.py."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from model.answers import Box
from model.labels import CANID_CLASSES
from model.localize import box_in_photo, crop_square, dog_maps, dog_pooled, find_dogs
from model.preprocess import Square, whole_square


def test_dog_maps_are_each_cells_dog_probability_and_evidence() -> None:
    logits = np.zeros((1, 2, 3, 1000), np.float32)
    logits[0, 1, 2, CANID_CLASSES[0]] = 20.0  # one cell sure it shows a dog
    probability, evidence = (np.asarray(m) for m in dog_maps(jnp.asarray(logits)))
    assert probability.shape == evidence.shape == (1, 2, 3)
    assert probability[0, 1, 2] == pytest.approx(1.0, abs=1e-5)
    assert probability[0, 0, 0] == pytest.approx(len(CANID_CLASSES) / 1000, abs=1e-6)  # uniform
    assert evidence[0, 1, 2] == pytest.approx(20.0, abs=1e-5)
    assert evidence[0, 0, 0] == pytest.approx(np.log(len(CANID_CLASSES)), abs=1e-5)


def test_dog_pooling_weighs_each_cell_by_its_dog_probability() -> None:
    logits = np.zeros((2, 2, 2, 1000), np.float32)
    logits[0, ..., 0] = 20.0  # photo 0: sure of a fish (class 0) everywhere but one cell,
    logits[0, 0, 0, CANID_CLASSES[0]] = 40.0  # which is sure of a dog
    logits[1, ..., 0] = np.arange(4, dtype=np.float32).reshape(2, 2)  # photo 1: no dog at all
    features = np.zeros((2, 2, 2, 3), np.float32)
    features[..., 0] = 1.0  # every cell the same in channel 0
    features[:, 0, 0, 1] = 8.0  # what only the top-left cell shows
    pooled = np.asarray(dog_pooled(jnp.asarray(features), jnp.asarray(logits)))
    assert pooled.shape == (2, 3)
    assert pooled[0] == pytest.approx([1.0, 8.0, 0.0], abs=1e-3)  # the dog's cell alone
    # No dog anywhere: the weights are the cells' faint dog probabilities, still a mean.
    assert pooled[1, 0] == pytest.approx(1.0) and 0.0 < pooled[1, 1] < 8.0


def maps(*dogs: tuple[slice, slice, float]) -> tuple[np.ndarray, np.ndarray]:
    """9 × 9 dog maps: each dog (rows, columns, evidence) a block of probability 1, its
    evidence peaking in its middle; the background at probability 0.05, evidence 5."""
    probability, evidence = np.full((9, 9), 0.05, np.float32), np.full((9, 9), 5.0, np.float32)
    for rows, columns, peak in dogs:
        probability[rows, columns] = 1.0
        y, x = np.mgrid[rows, columns]
        middle_y, middle_x = y.mean(), x.mean()
        evidence[rows, columns] = peak - 4 * np.hypot(y - middle_y, x - middle_x)
    return probability, evidence


def test_one_dog_gives_its_region() -> None:
    (box,) = find_dogs(*maps((slice(2, 5), slice(3, 7), 30.0)))
    # Bilinear upsampling blurs each edge by half a cell; the box holds the cells and little more.
    assert box.left <= 3 / 9 and box.right >= 7 / 9 and box.top <= 2 / 9 and box.bottom >= 5 / 9
    assert box.left > 2 / 9 and box.right < 8 / 9 and box.top > 1 / 9 and box.bottom < 6 / 9


def test_two_dogs_apart_most_evident_first() -> None:
    right, left = find_dogs(*maps((slice(3, 6), slice(0, 3), 20.0),
                                  (slice(3, 6), slice(6, 9), 30.0)))
    assert right.left > 0.5 and left.right < 0.5


def test_two_dogs_that_touch_are_told_apart_by_their_evidence() -> None:
    probability, evidence = maps((slice(2, 7), slice(0, 4), 30.0), (slice(2, 7), slice(4, 9), 25.0))
    assert (probability[2:7] == 1).all()  # they touch: one region of probability
    left, right = find_dogs(probability, evidence)
    assert left.right <= 5 / 9 and right.left >= 4 / 9
    assert left.left == 0 and right.right == 1


@pytest.mark.parametrize("second", ["tiny", "head and body"])
def test_tiny_regions_and_one_dogs_parts_are_not_more_dogs(second: str) -> None:
    probability, evidence = maps((slice(2, 7), slice(0, 5), 30.0))
    if second == "tiny":
        probability[8, 8], evidence[8, 8] = 0.9, 20.0  # one corner cell: under 4% of the map
    else:
        evidence[2:4, 3:5] += 3.0  # a second bump on the same dog, not prominent
    assert len(find_dogs(probability, evidence)) == 1


def test_a_faint_map_still_points_at_its_peak() -> None:
    probability, evidence = maps()
    probability[6:8, 6:8], evidence[6:8, 6:8] = 0.3, 9.0  # a small dog the map is unsure of
    (box,) = find_dogs(probability, evidence)
    assert box.left >= 5 / 9 and box.top >= 5 / 9 and box.share < 0.1


def test_a_box_on_a_letterboxed_view_is_clipped_to_the_photo() -> None:
    view = whole_square(400, 200)  # the photo is the middle half of the view's rows
    box = box_in_photo(Box(0.5, 0.0, 1.0, 0.5), view, 400, 200)
    assert box == Box(0.5, 0.0, 1.0, 0.5 * 400 / 200 - 0.5)
    assert box.share == pytest.approx(0.25)


def test_crop_square_adds_a_margin_and_stays_inside() -> None:
    # A 100 × 50 px dog in the top-left corner of a 1000 × 800 photo.
    square = crop_square(Box(0.0, 0.0, 0.1, 0.0625), 1000, 800, margin=0.25)
    assert square == Square(0.0, 0.0, 150.0)
    # A box as wide as a square photo: the square outgrows it and is centred on it.
    square = crop_square(Box(0.0, 0.4, 1.0, 0.6), 500, 500, margin=0.1)
    assert square == Square(-50.0, -50.0, 600.0)
