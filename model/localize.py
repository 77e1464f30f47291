"""Where the dogs are in a photo: dog maps from the backbone's last feature map, and boxes.

The backbone ends in global average pooling and one dense layer, so that layer applied to each
cell of the last feature map (9 × 9 at Lite2's 260 px) says what the cell shows: a class
activation map (Zhou et al. 2016). Two maps come from it:

- the dog probability of each cell: its softmax summed over ImageNet's dog classes, the same
  mass ``dog_probability`` takes of the whole photo. It has an absolute 0–1 scale, so "this
  cell looks like a dog" means the same in every photo; but it saturates at 1 all over a dog,
  and two dogs that touch make one region. (The CAM paper's own map, dog activations relative
  to their peak, lit up most of the frame behind the dogs here.)
- the dog evidence of each cell: the log-sum-exp of its dog-class logits. It does not
  saturate: it peaks on each dog (mostly the head) and dips where two dogs meet.

A dog region is a connected region of the (bilinearly upsampled) probability map at or above
``DOG_LEVEL``; a region whose evidence has several prominent peaks holds that many dogs, each
the part of the region nearest its peak. A dog's box is its part's bounding box. The map is
coarse and brightest on the head, so the square cropped around a box adds a margin
(``crop_square``).
"""

from __future__ import annotations

import jax
import numpy as np
from PIL import Image
from scipy import ndimage

from model.answers import Box, dog_probability
from model.efficientnet import EfficientNetLite
from model.labels import CANID_CLASSES
from model.preprocess import Square

DOG_LEVEL = 0.5  # a cell at or above this dog probability is part of a dog
UPSAMPLE = 8  # the map's cells are cut into 8 × 8 before thresholding, for finer boxes
MIN_DOG_SHARE = 0.04  # a dog other than the first covers at least this share of the map
# A peak of dog evidence is a dog of its own when it stands this far above the level where it
# meets a higher one (a share of the region's evidence above the photo's median).
PROMINENCE = 0.15
LEVELS = np.linspace(0.2, 1.0, 25)[:-1]  # where, in those shares, to look for separate peaks


def dog_maps(cell_logits: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(B, h, w, 1000) ImageNet logits of each cell -> dog probability and dog evidence of
    each cell, both (B, h, w)."""
    evidence = jax.nn.logsumexp(cell_logits[..., list(CANID_CLASSES)], axis=-1)
    return dog_probability(jax.nn.softmax(cell_logits)), evidence


def dog_pooled(feature_map: jax.Array, cell_logits: jax.Array) -> jax.Array:
    """(B, h, w, C) cell features and their (B, h, w, 1000) ImageNet logits -> (B, C): the
    cells' mean weighted by each one's dog probability, so the background counts little in
    what the breed is told from. Where no cell shows a dog, the likeliest cells still lead.

    ImageNet's classifier was fitted on the plain mean; on the dog's cells its logits are about
    twice as large, hence ``model.head.TEMPERATURE`` (README, "Looking closer").
    """
    # The weights say where the dog is, not which breed: Grad-CAM (the only gradient taken
    # through the backbone) asks which cells' features make the breed.
    weights = jax.lax.stop_gradient(dog_maps(cell_logits)[0])[..., None] + 1e-6  # (B, h, w, 1)
    return (feature_map * weights).sum((1, 2)) / weights.sum((1, 2))


def pooled_features(backbone: EfficientNetLite, params: dict, feature_map: jax.Array,
                    pooling: str) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(B, h, w, 1280) feature map -> the features heads read, pooled as ``pooling`` says
    (``model.POOLINGS``: "mean" or "dog"), (B, 1280); ImageNet's logits of the whole photo
    (B, 1000: dog or not, and what else it looks like); and each cell's (B, h, w, 1000)."""
    mean, logits = backbone.apply(params, feature_map, method="pool")
    cell_logits = backbone.apply(params, feature_map, method="cell_logits")
    features = dog_pooled(feature_map, cell_logits) if pooling == "dog" else mean
    return features, logits, cell_logits


def find_dogs(probability: np.ndarray, evidence: np.ndarray) -> list[Box]:
    """Boxes (fractions of the map) of the dogs on (h, w) dog maps, the most evident first.

    The most evident dog always counts, even on a faint map: there the level drops to half
    the peak, so its box still says where the photo looks most like a dog. Other dogs count
    only if they cover ``MIN_DOG_SHARE`` of the map.
    """
    probability, evidence = _upsampled(probability), _upsampled(evidence)  # (8h, 8w)
    regions, count = ndimage.label(probability >= min(DOG_LEVEL, probability.max() / 2))
    relative = evidence - np.median(evidence)
    dogs = [dog for index in range(1, count + 1) for dog in _split(regions == index, relative)]
    dogs.sort(key=lambda dog: relative[dog].max(), reverse=True)
    return [_bounds(dog) for i, dog in enumerate(dogs) if i == 0 or dog.mean() >= MIN_DOG_SHARE]


def _upsampled(cells: np.ndarray) -> np.ndarray:
    size = (cells.shape[1] * UPSAMPLE, cells.shape[0] * UPSAMPLE)
    return np.asarray(Image.fromarray(cells.astype(np.float32), "F").resize(
        size, Image.Resampling.BILINEAR))


def _split(region: np.ndarray, relative: np.ndarray) -> list[np.ndarray]:
    """The dogs in one region (a mask): one per prominent peak of ``relative`` evidence, each
    the region's pixels nearest that peak."""
    peak = relative[region].max()
    if peak <= 0 or region.mean() < 2 * MIN_DOG_SHARE:  # no room for two dogs
        return [region]
    share = relative / peak  # 1 at the region's peak
    seeds = max((_peaks(region & (share >= level), share, level) for level in LEVELS), key=len)
    if len(seeds) < 2:
        return [region]
    labels = np.zeros(region.shape, np.int32)
    for number, seed in enumerate(seeds, 1):
        labels[seed] = number
    _, (rows, columns) = ndimage.distance_transform_edt(labels == 0, return_indices=True)
    nearest = labels[rows, columns]
    return [region & (nearest == number) for number in range(1, len(seeds) + 1)]


def _peaks(mask: np.ndarray, share: np.ndarray, level: float) -> list[np.ndarray]:
    """The parts of ``mask`` (the region above ``level``) big enough to be a dog whose peak
    stands ``PROMINENCE`` above ``level``."""
    parts, count = ndimage.label(mask)
    found = (parts == number for number in range(1, count + 1))
    return [part for part in found
            if part.mean() >= MIN_DOG_SHARE and share[part].max() >= level + PROMINENCE]


def _bounds(mask: np.ndarray) -> Box:
    """The bounding box of a (H, W) mask's True cells, as fractions of the mask."""
    rows, columns = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    height, width = mask.shape
    return Box(float(columns[0] / width), float(rows[0] / height),
               float((columns[-1] + 1) / width), float((rows[-1] + 1) / height))


def box_in_photo(box: Box, view: Square, width: int, height: int) -> Box:
    """A box on the view of ``view`` (fractions of the square) as fractions of the photo,
    clipped to it: the letterboxed margins are not the photo."""
    def clip(value: float) -> float:
        return min(max(value, 0.0), 1.0)

    return Box(clip((view.left + box.left * view.side) / width),
               clip((view.top + box.top * view.side) / height),
               clip((view.left + box.right * view.side) / width),
               clip((view.top + box.bottom * view.side) / height))


def crop_square(box: Box, width: int, height: int, margin: float) -> Square:
    """The square (photo pixels) to classify a dog in ``box`` (fractions of the photo) from.

    Its side is the box's longer side plus ``margin`` of it on each end; it is shifted to
    lie inside the photo where it fits, and centred on the photo along a side it outgrows.
    """
    left, right = box.left * width, box.right * width
    top, bottom = box.top * height, box.bottom * height
    side = max(right - left, bottom - top) * (1 + 2 * margin)
    return Square(_place((left + right) / 2, side, width),
                  _place((top + bottom) / 2, side, height), side)


def _place(centre: float, side: float, length: int) -> float:
    """Where a span of ``side`` around ``centre`` starts, kept inside [0, length] if it fits."""
    if side >= length:
        return (length - side) / 2
    return min(max(centre - side / 2, 0.0), length - side)
