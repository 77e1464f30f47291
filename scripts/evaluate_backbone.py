"""ImageNet top-1 and latency of each backbone variant on the shared dog photos.

    python scripts/evaluate_backbone.py [--variants lite0 lite1 lite2] [--limit N] [--json]

Top-1 is over all 1000 ImageNet classes; "dog top-1" takes the argmax over the 121 dog breed
classes only. Latency is one photo at a time, already preprocessed, median of 30 runs.
"""

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from model.evaluation.metrics import imagenet_accuracy
from model.evaluation.scoring import load_data, score_every_file, select_examples
from model.predictor import MODELS, Predictor

SHARED = Path("../shared/datasets")


def latency_ms(predictor: Predictor, runs: int = 30) -> float:
    pixels = np.zeros((1, predictor.resolution, predictor.resolution, 3), np.uint8)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        predictor.classify_probabilities(pixels, "always")  # the photo and its mirror image
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e3


def evaluate(variant: str, limit: int | None) -> dict:
    predictor = Predictor(variant)
    row: dict = {"variant": variant, "resolution": predictor.resolution,
                 "matmul": predictor.matmul}
    for name, folder in (("imagenet-dogs-121", SHARED / "imagenet-dogs-121"),
                         ("dogs-dev val", SHARED / "dogs-dev")):
        examples = select_examples(load_data(folder), "val", limit)  # 121: all (no splits)
        started = time.perf_counter()
        probs = score_every_file(predictor, [e.path for e in examples]).imagenet_probs
        row[name] = imagenet_accuracy(probs, [e.label for e in examples])
        row[name]["photos_per_s"] = len(examples) / (time.perf_counter() - started)
    row["ms_b1"] = latency_ms(predictor)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--limit", type=int, default=None, help="at most this many val photos")
    parser.add_argument("--json", action="store_true", help="print one JSON object per variant")
    args = parser.parse_args()
    print("variant  px   121: top-1  dog top-1 | dogs-dev val: top-1  dog top-1  photos/s | ms b1")
    for variant in args.variants:
        row = evaluate(variant, args.limit)
        if args.json:
            print(json.dumps(row))
            continue
        a, b = row["imagenet-dogs-121"], row["dogs-dev val"]
        print(f"{variant:<8} {row['resolution']}  {a['top1']:10.3f} {a['dog_top1']:10.3f} |"
              f" {b['top1']:18.3f} {b['dog_top1']:10.3f} {b['photos_per_s']:9.0f} |"
              f" {row['ms_b1']:5.1f}   (n={a['count']}, {b['count']}; {row['matmul']} 1×1)")


if __name__ == "__main__":
    main()
