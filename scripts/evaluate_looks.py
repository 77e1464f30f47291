"""Looking closer: breed accuracy and photo-to-answer time of each way of looking at a photo,
and how ``Predictor.look`` does with several dogs in one photo.

    python scripts/evaluate_looks.py [--stride 10] [--timing 40] [--pairs 20] [--json]

Accuracy is the dog breed top-1 and top-5 of the answers people get, on wiki-dogs-dev (photos
as people take them), imagewoof-val-dev and every ``--stride``-th dogs-dev val photo. Time is
the median of one photo a call, bytes in and answer out, over ``--timing`` wiki-dogs-dev
photos as they are and resized as Telegram sends photos (1280 px); the variants take turns.
"""

import argparse
import dataclasses
import json
import logging
from pathlib import Path

from model.data.dataset import load_examples
from model.evaluation.looking import looking_variants, median_ms, score, telegram_sized
from model.evaluation.several_dogs import breed_pairs, composite_report, split_report
from model.predictor import Predictor

SHARED = Path("../shared/datasets")


def data_sets(stride: int) -> dict[str, list]:
    dogs_dev = [e for e in load_examples(SHARED / "dogs-dev") if e.split == "val"]
    return {"wiki-dogs-dev": load_examples(SHARED / "wiki-dogs-dev"),
            "imagewoof-val-dev": load_examples(SHARED / "imagewoof-val-dev"),
            f"dogs-dev val /{stride}": dogs_dev[::stride]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stride", type=int, default=10, help="every n-th dogs-dev val photo")
    parser.add_argument("--timing", type=int, default=40, help="photos timed per variant")
    parser.add_argument("--pairs", type=int, default=20,
                        help="composites per source (imagewoof-val-dev, dogs-dev val)")
    parser.add_argument("--json", action="store_true", help="one JSON object per row")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    predictor = Predictor("lite2", warm_up=False)
    variants = looking_variants(predictor, Predictor("lite0", warm_up=False))
    data = data_sets(args.stride)
    wiki = data["wiki-dogs-dev"]
    photos = [e.path.read_bytes() for e in wiki[:: max(1, len(wiki) // args.timing)]]
    ms = median_ms(variants, photos[: args.timing])
    ms_big = median_ms(variants, [telegram_sized(p) for p in photos[: args.timing]])
    print(f"{'variant':<44}" + "".join(f"{name:>24}" for name in data)
          + "  2nd look     ms   ×    ms 1280px   ×")
    for variant, spent, spent_big in zip(variants, ms, ms_big, strict=True):
        scores = {name: score(variant, examples) for name, examples in data.items()}
        if args.json:
            print(json.dumps({"variant": variant.name, "ms": spent, "ms_1280px": spent_big,
                              **{n: dataclasses.asdict(s) for n, s in scores.items()}}))
            continue
        cells = "".join(f"   {s.top1 / s.count:.3f} {s.top5 / s.count:.3f} {s.top1:>3}/{s.count}"
                        for s in scores.values())
        twice = [s.looked_twice / s.count for s in scores.values() if s.looked_twice is not None]
        print(f"{variant.name:<44}{cells}  "
              + (f"{min(twice):.0%}-{max(twice):.0%}" if twice else "    -  ").rjust(8)
              + f" {spent:6.1f} {spent / ms[0]:4.2f} {spent_big:9.1f} {spent_big / ms_big[0]:5.2f}",
              flush=True)
    several_dogs(predictor, data, args.pairs)


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
