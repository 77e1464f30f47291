"""Sweep the "not a dog" and "probably a mix" thresholds on dogs-dev val and non-dog photos.

    python scripts/choose_thresholds.py [--data ../shared/datasets/dogs-dev] [--limit 1000]

Non-dogs are scikit-image's sample photos (needs the dev extra) plus synthetic ones.
"""

import argparse
import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from model.answers import dog_probability, imagenet_breeds
from model.evaluation.metrics import dog_threshold_sweep, mix_threshold_sweep
from model.evaluation.scoring import load_data, score_every_file, select_examples
from model.predictor import Predictor

try:
    import skimage.data
except ImportError:
    sys.exit("error: the non-dog sample photos come from scikit-image: pip install -e '.[dev]'")

SKIMAGE_PHOTOS = ("astronaut", "brick", "camera", "chelsea", "clock", "coffee", "coins",
                  "colorwheel", "grass", "gravel", "horse", "hubble_deep_field",
                  "immunohistochemistry", "logo", "moon", "page", "retina", "rocket", "text")


def non_dog_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = {name: getattr(skimage.data, name)() for name in SKIMAGE_PHOTOS}
    ramp = np.linspace(0, 255, 256, dtype=np.uint8)
    arrays |= {
        "noise": rng.integers(0, 256, (256, 256, 3), dtype=np.uint8),
        "black": np.zeros((256, 256, 3), np.uint8),
        "white": np.full((256, 256, 3), 255, np.uint8),
        "grey ramp": np.tile(ramp, (256, 1)),
        "colour ramp": np.stack([np.tile(ramp, (256, 1)), np.tile(ramp, (256, 1)).T,
                                 np.full((256, 256), 128, np.uint8)], -1),
    }
    return arrays


def photos_as_bytes(arrays: dict[str, np.ndarray]) -> dict[str, bytes]:
    """Encode arrays (any of bool, grey, RGB, RGBA) as PNG, so they take the real decode path."""
    encoded = {}
    for name, array in arrays.items():
        if array.dtype != np.uint8:
            array = (array / max(array.max(), 1) * 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, "PNG")
        encoded[name] = buffer.getvalue()
    return encoded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/datasets/dogs-dev"))
    parser.add_argument("--limit", type=int, default=None, help="at most this many val photos")
    args = parser.parse_args()
    predictor = Predictor()
    dogs = select_examples(load_data(args.data), "val", args.limit)
    dogs_scores = score_every_file(predictor, [d.path for d in dogs])
    others = photos_as_bytes(non_dog_arrays())
    other_answers = predictor.classify(list(others.values()))
    other_probs = np.array([a.dog_probability for a in other_answers])

    print(f"dogs: {len(dogs)} dogs-dev val photos; non-dogs: {len(others)} "
          f"({predictor.variant}, {predictor.matmul} 1×1 products)")
    for name, answer in zip(others, other_answers, strict=True):
        print(f"  {name:<22} dog {answer.dog_probability:6.1%}  looks like {answer.looks_like}")
    print("\nthreshold  dogs kept  non-dogs refused")
    for row in dog_threshold_sweep(dog_probability(dogs_scores.imagenet_probs), other_probs,
                                   np.arange(0.05, 0.96, 0.05)):
        print(f"  {row['threshold']:.2f}     {row['dogs_kept']:7.1%}  {row['others_refused']:7.1%}")

    index = {b.label: i for i, b in enumerate(imagenet_breeds())}
    truth = np.array([index[d.label] for d in dogs])
    print("\nthreshold  one breed named  it is right  true breed among a mix's three")
    for row in mix_threshold_sweep(dogs_scores.breed_probs, truth,
                                   np.arange(0.2, 0.91, 0.05)):
        print(f"  {row['threshold']:.2f}     {row['single_breed']:7.1%}"
              f"  {row['single_right']:12.1%}  {row['mix_has_truth']:12.1%}")


if __name__ == "__main__":
    main()
