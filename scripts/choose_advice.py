"""Sweep the limits of the advice on poor photos, on dogs-dev val photos as they are and made
dark, washed out, small and blurred.

    python scripts/choose_advice.py [--data ../shared/datasets/dogs-dev] [--photos 300] [--seed 0]

The photos are a fixed random sample of dogs-dev val (--seed; --photos 3764 or more takes them
all, and the seed then only draws the degradations); each is looked at in every condition, as
the bot looks. Each table sweeps one limit with the others at model.advice's.
"""

import argparse
import dataclasses
from pathlib import Path

import numpy as np

from model.advice import LIMITS
from model.evaluation.advice import (
    CONDITIONS,
    RIGHT,
    Looked,
    advice_rates,
    advised,
    look_at_conditions,
    sweep,
)
from model.evaluation.scoring import load_data, select_examples
from model.predictor import Predictor

SWEEPS = {"dark": np.arange(0.12, 0.31, 0.02), "bright": np.arange(0.02, 0.31, 0.04),
          "small": np.arange(0.05, 0.36, 0.05), "blurred": np.arange(10, 131, 20)}
DEGRADED = CONDITIONS[1:]


def _percent(part: int, whole: int) -> str:
    return f"{part / whole:6.1%}" if whole else "     -"


def _row(rates: dict, condition: str) -> str:
    """Advice on good photos; right advice for ``condition`` among its unsure answers, and
    over all its photos."""
    good, these = rates["good"], rates[condition]
    return (f"{_percent(good['advised'], good['photos'])}        "
            f"{_percent(these['right'], these['unsure'])}         "
            f"{_percent(these['right'], these['photos'])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/datasets/dogs-dev"))
    parser.add_argument("--photos", type=int, default=300,
                        help="val photos sampled (at least 1; as many as there are: all)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.photos < 1:
        parser.error("--photos must be at least 1")
    examples = select_examples(load_data(args.data), "val")
    count = min(args.photos, len(examples))  # all of them: --photos 3764
    chosen = sorted(np.random.default_rng(args.seed).choice(len(examples), count, replace=False))
    photos = [examples[i].path.read_bytes() for i in chosen]
    predictor = Predictor()
    looked = list(look_at_conditions(predictor, photos, args.seed))
    print(f"{count} dogs-dev val photos (seed {args.seed}) in each condition, {predictor.variant}"
          f" with {predictor.matmul} 1×1 products; limits {dataclasses.asdict(LIMITS)}\n")
    print_sweep(looked)
    print("\ngood photos advised, and why:")
    for item, why in advised(looked, "good", LIMITS):
        quality = item.quality
        share = "no dog found" if quality.share is None else f"share {quality.share:.3f}"
        print(f"  {examples[chosen[item.photo]].path.name}  {why:<7}  "
              f"{'a dog' if item.answer.is_dog else 'not a dog'}, dogs named {item.dogs}; "
              f"brightness {quality.brightness:.2f}, blown {quality.blown:.3f}, "
              f"sharpness {quality.sharpness:.0f}, {share}")


def print_sweep(looked: list[Looked]) -> None:
    """The rates at model.advice's limits, each limit swept, and the totals."""
    rates = advice_rates(looked, LIMITS)
    print("condition  photos  unsure  advised  no dog  right advice: of unsure  of all")
    for condition in CONDITIONS:
        r = rates[condition]
        right = (f"{r['right']:6d} {_percent(r['right'], r['unsure'])}   "
                 f"{_percent(r['right'], r['photos'])}" if RIGHT[condition] else "")
        print(f"{condition:<9} {r['photos']:6d} {r['unsure']:7d} {r['advised']:8d} "
              f"{r['no_dog']:7d}  {right}".rstrip())
    for field, values in SWEEPS.items():
        print(f"\n{field:<8}  good photos advised  right '{field}' advice: of unsure  of all")
        for row in sweep(looked, LIMITS, field, values):
            print(f"  {row['value']:6.2f}  {_row(row, field)}")
    right = sum(rates[c]["right"] for c in DEGRADED)
    unsure = sum(rates[c]["unsure"] for c in DEGRADED)
    photos = sum(rates[c]["photos"] for c in DEGRADED)
    print(f"\ndegraded photos: right advice on {right} of {unsure} unsure answers "
          f"({_percent(right, unsure).strip()}), {right} of {photos} photos "
          f"({_percent(right, photos).strip()}); good photos advised: "
          f"{rates['good']['advised']} of {rates['good']['photos']}")


if __name__ == "__main__":
    main()
