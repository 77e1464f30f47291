"""Looking closer: breed accuracy and photo-to-answer time of each way of looking at a photo,
and how ``Predictor.look`` does with several dogs in one photo.

    python scripts/evaluate_looks.py [--sample 200] [--timing 30] [--pairs 20] [--json]

Accuracy is the dog breed top-1 and top-5 of the answers people get, on wiki-dogs-dev (photos
as people take them), imagewoof-val-dev and ``--sample`` dogs-dev val photos drawn with a
fixed seed. The product's own ways of looking run first, then the sweep (each view of each
photo computed once; "cost" is its backbone work in Lite2 views at 260 px, today's being 2).
Time is the median of one photo a call, bytes in and answer out, over ``--timing``
wiki-dogs-dev photos as they are and resized as Telegram sends photos (1280 px), for the
product's ways and the sweeps that reach GOAL on wiki-dogs-dev; the variants take turns.
"""

import argparse
import dataclasses
import json
import logging
import random
from pathlib import Path

from model import MODELS
from model.data.dataset import load_examples
from model.evaluation.looking import (
    ViewBank,
    looking_variants,
    median_ms,
    score,
    score_sweep,
    sweeps,
    telegram_sized,
    timed,
)
from model.evaluation.several_dogs import breed_pairs, composite_report, split_report
from model.predictor import Predictor

SHARED = Path("../shared/datasets")
GOAL = 124  # of wiki-dogs-dev's 182 photos: today's 114 plus 5 points (issue 10)

log = logging.getLogger("evaluate_looks")


def data_sets(sample: int) -> dict[str, list]:
    dogs_dev = [e for e in load_examples(SHARED / "dogs-dev") if e.split == "val"]
    return {"wiki-dogs-dev": load_examples(SHARED / "wiki-dogs-dev"),
            "imagewoof-val-dev": load_examples(SHARED / "imagewoof-val-dev"),
            f"dogs-dev val ({sample} drawn)": random.Random(0).sample(dogs_dev, sample)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sample", type=int, default=200, help="dogs-dev val photos drawn")
    parser.add_argument("--timing", type=int, default=30, help="photos timed per variant")
    parser.add_argument("--pairs", type=int, default=20,
                        help="composites per source (imagewoof-val-dev, dogs-dev val); 0: none")
    parser.add_argument("--json", action="store_true", help="one JSON object per row")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    predictors = {variant: Predictor(variant, warm_up=False) for variant in MODELS}
    predictor = predictors["lite2"]
    data = data_sets(args.sample)
    rows = []  # (name, cost or None, scores by data set, Variant to time or None)
    for variant in looking_variants(predictor):
        rows.append((variant.name, None, {n: score(variant, e) for n, e in data.items()},
                     variant))
        log.info("scored %s: %s", variant.name, counts(rows[-1][2]))
    tried = sweeps()
    detail = max(sweep.detail for sweep in tried)
    banks = {name: ViewBank(predictors, examples, detail) for name, examples in data.items()}
    for sweep in tried:
        scores = {name: score_sweep(sweep, bank) for name, bank in banks.items()}
        wanted = scores["wiki-dogs-dev"].top1 >= GOAL
        rows.append((sweep.name, sweep.cost, scores,
                     timed(sweep, predictors) if wanted else None))
        log.info("scored %s: %s", sweep.name, counts(scores))
    wiki = data["wiki-dogs-dev"]
    photos = [e.path.read_bytes() for e in wiki[:: max(1, len(wiki) // args.timing)]]
    photos = photos[: args.timing]
    to_time = [row[3] for row in rows if row[3]]
    times = dict(zip([v.name for v in to_time], zip(
        median_ms(to_time, photos), median_ms(to_time, [telegram_sized(p) for p in photos]),
        strict=True), strict=True))
    print_table(rows, times, args.json)
    if args.pairs:
        several_dogs(predictor, data, args.pairs)


def counts(scores: dict) -> str:
    return ", ".join(f"{s.top1}/{s.top5}/{s.count}" for s in scores.values())


def print_table(rows: list, times: dict, as_json: bool) -> None:
    today = times[rows[0][0]]
    names = list(rows[0][2])
    if not as_json:
        print(f"{'variant':<70}" + "".join(f"{name:>26}" for name in names)
              + "  cost    ms    ×  ms 1280px   ×")
    for name, cost, scores, _ in rows:
        ms, ms_big = times.get(name, (None, None))
        if as_json:
            print(json.dumps({"variant": name, "cost": cost, "ms": ms, "ms_1280px": ms_big,
                              **{n: dataclasses.asdict(s) for n, s in scores.items()}}))
            continue
        cells = "".join(f"     {s.top1 / s.count:.3f} {s.top5 / s.count:.3f} {s.top1:>3}/{s.count}"
                        for s in scores.values())
        spent = (f"{ms:6.1f} {ms / today[0]:4.2f} {ms_big:9.1f} {ms_big / today[1]:4.2f}"
                 if ms else "")
        print(f"{name:<70}{cells}  {'' if cost is None else f'{cost:4.1f}':>4} {spent}",
              flush=True)


def several_dogs(predictor: Predictor, data: dict[str, list], count: int) -> None:
    sources = list(data)[1:]  # imagewoof-val-dev and dogs-dev val: ten breeds, one dog a photo
    pairs = [pair for name in sources for pair in breed_pairs(data[name], count)]
    scores = composite_report(predictor, pairs)
    print(f"\ncomposites of two photos of different breeds ({count} pairs from each of "
          f"{' and '.join(sources)}); both photos right when looked at alone: "
          f"{scores[0].alone_right}/{len(pairs)}")
    for s in scores:
        print(f"  {s.layout:<20} two dogs found (one in each half) {s.two_dogs:>3}/{s.count},"
              f" both breeds right {s.both_right:>3}/{s.count}")
    for name in list(data)[:2]:
        split = split_report(predictor, data[name])
        print(f"{name}: several dogs found in {len(split.several)}/{split.count} photos (look "
              "at them: some show several dogs)")
        for path in split.several:
            print(f"  {path}")


if __name__ == "__main__":
    main()
