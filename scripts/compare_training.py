"""Which way of training keeps every breed: heads trained on one data set, measured on others.

    python scripts/compare_training.py --data ../shared/datasets/dogs-dev \
        --check ../shared/datasets/imagewoof-val-dev --check ../shared/datasets/wiki-dogs-dev \
        --check ../shared/datasets/imagenet-dogs-121

Trains the head once per setting below on the data's train split (cached features, as
scripts/train.py does) and prints top-1 on the data's val split and on every --check set, on
each photo's clean view (no mirror image: scripts/evaluate.py gives the served figures). For
check sets whose breeds are all in the data, "restricted" top-1 (the best of the data's
breeds) follows after a slash. The zero-training model is the first row.
"""

import argparse
import logging
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from model import DEFAULT_VARIANT, MODELS
from model.data.dataset import Example, load_examples
from model.efficientnet import from_pretrained
from model.training.features import FeatureCache, FeatureExtractor
from model.training.retrain import score
from model.training.train import Base, TrainConfig, imagenet_base, split_examples, train_base

SETTINGS = {  # the row's name: scripts/train.py's flags for it, and the config they make
    "default (extend, distill 10, T 2)": {},
    "--distill-non-target": {"distill_non_target": True},
    "--distill-weight 3": {"distill_weight": 3.0},
    "--distill-weight 0 (plain)": {"distill_weight": 0.0},
    "--label-smoothing 0": {"label_smoothing": 0.0},
    "--epochs 2": {"epochs": 2, "warmup_epochs": 1},
    "--only-data-breeds": {"extend": False},
}


def row(name: str, model: Base, sets: dict[str, list[Example]], data_breeds: set[str],
        features: dict) -> str:
    cells = []
    for photos in sets.values():
        cell = f"{score(model, photos, features).top1:.3f}"
        if {e.label for e in photos} <= data_breeds:
            cell += f" / {score(model, photos, features, data_breeds).top1:.3f}"
        cells.append(f"{cell:>24}")
    return f"{name:<36}" + "".join(cells)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="a split data set")
    parser.add_argument("--check", type=Path, action="append", default=[],
                        help="labelled photos to measure on; repeat")
    parser.add_argument("--variant", choices=MODELS, default=DEFAULT_VARIANT)
    parser.add_argument("--cache", type=Path, default=Path("var/cache/features"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    try:
        splits = split_examples(load_examples(args.data))
        checks = {folder.name: load_examples(folder) for folder in args.check}
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    config = TrainConfig(variant=args.variant)
    _, backbone_params = from_pretrained(args.variant)
    extractor = FeatureExtractor(args.variant)
    cache = FeatureCache(args.cache, args.variant)
    features = extractor.extract(splits["train"], config.views, cache, "train features")
    sets = {f"{args.data.name} val": splits["val"], **checks}
    for name, photos in sets.items():
        features |= extractor.extract(photos, 0, cache, f"{name} features")
    data_breeds = {e.label for e in splits["train"]}
    print(f"{'top-1 (n)':<36}" + "".join(f"{f'{n} ({len(p)})':>24}"
                                         for n, p in sets.items()))
    zero = imagenet_base(backbone_params)
    print(row("zero-training", zero, sets, data_breeds, features))
    for name, changes in SETTINGS.items():
        setting = replace(config, **changes)
        with tempfile.TemporaryDirectory() as logs:
            model = train_base(setting, zero if setting.extend else None, splits["train"],
                               splits["val"], features, backbone_params, Path(logs))
        print(row(name, model, sets, data_breeds, features), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
