"""Which way of training keeps every breed, and how a new breed is learnt.

    python scripts/compare_training.py --data ../shared/datasets/dogs-dev \
        --check ../shared/datasets/imagewoof-val-dev --check ../shared/datasets/wiki-dogs-dev \
        --check ../shared/datasets/imagenet-dogs-121
    python scripts/compare_training.py --data ../shared/datasets/dogs-dev \
        --learn-back n02111889 --photos 10 30 100

The first trains a head on the data's train split once per setting (scripts/train.py's flags;
cached features) and prints top-1 on the data's val split and every --check set; for sets
whose breeds are all in the data, restricted top-1 (the best of the data's breeds) follows a
slash. The second drops a breed from the zero-training model and learns it back as a new one
from N of its photos (no photos of a breed ImageNet lacks are at hand), printing its recall
on val and top-1 on the other breeds' val photos. Clean view only: scripts/evaluate.py gives
the served figures.
"""

import argparse
import logging
import sys
from pathlib import Path

from model import DEFAULT_VARIANT, MODELS
from model.data.dataset import load_examples
from model.efficientnet import from_pretrained, served_matmul
from model.evaluation.training_experiments import compare_settings, learn_back
from model.training.features import cached_features
from model.training.train import TrainConfig, split_examples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="a split data set")
    parser.add_argument("--check", type=Path, action="append", default=[],
                        help="labelled photos to measure on; repeat")
    parser.add_argument("--learn-back", metavar="WNID",
                        help="instead, drop this breed and learn it back from --photos")
    parser.add_argument("--photos", type=int, nargs="+", default=[10, 30, 100],
                        help="with --learn-back: photos to learn from (default: 10 30 100)")
    parser.add_argument("--variant", choices=MODELS, default=DEFAULT_VARIANT)
    parser.add_argument("--cache", type=Path, default=Path("var/cache/features"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    try:
        splits = split_examples(load_examples(args.data))
        sets = {f"{args.data.name} val": splits["val"],
                **{folder.name: load_examples(folder) for folder in args.check}}
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.learn_back and not any(e.label == args.learn_back for e in splits["train"]):
        print(f"error: no training photos of {args.learn_back} in {args.data}", file=sys.stderr)
        return 2
    config = TrainConfig(variant=args.variant)
    _, backbone_params = from_pretrained(args.variant)
    features = cached_features(args.variant, config.seed, config.views, splits["train"], sets,
                               args.cache, matmul=served_matmul(config.matmul))
    if args.learn_back:
        print(f"learning {args.learn_back} back{'':<23}recall  others top-1")
        for name, recall, others in learn_back(config, splits, args.learn_back, args.photos,
                                               features, backbone_params):
            print(f"  {name:<40}{recall:>8.3f}{others:>14.3f}", flush=True)
        return 0
    print(f"{'top-1 (n)':<36}" + "".join(f"{f'{n} ({len(p)})':>24}" for n, p in sets.items()))
    for name, row in compare_settings(config, splits, sets, features, backbone_params):
        cells = [f"{top1:.3f}" + (f" / {restricted:.3f}" if restricted is not None else "")
                 for top1, restricted in row.values()]
        print(f"{name:<36}" + "".join(f"{cell:>24}" for cell in cells), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
