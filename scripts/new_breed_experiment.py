"""How a new breed is learnt: drop a breed the zero-training model knows, learn it back.

    python scripts/new_breed_experiment.py --data ../shared/datasets/dogs-dev \
        --breed n02111889 --photos 10 30 100

No photos of a breed ImageNet lacks (a Shiba Inu, a Jindo) are at hand, so this makes one:
the base model is the zero-training model without ``--breed``'s row, and a head extending it
(as scripts/train.py does) learns the breed from N of its training photos alone (the other
breeds' photos too, as training would). Printed for each N: the breed's recall on the data's
val photos, and top-1 on the val photos of the other breeds beside the zero-training model's.
"""

import argparse
import logging
import sys
import tempfile
from pathlib import Path

from model import DEFAULT_VARIANT, MODELS
from model.data.dataset import load_examples
from model.efficientnet import from_pretrained
from model.training.features import FeatureCache, FeatureExtractor
from model.training.retrain import score
from model.training.train import TrainConfig, imagenet_base, split_examples, train_base


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="a split data set")
    parser.add_argument("--breed", required=True, help="the WordNet id to drop and learn back")
    parser.add_argument("--photos", type=int, nargs="+", default=[10, 30, 100],
                        help="training photos of the breed to learn from (default: 10 30 100)")
    parser.add_argument("--variant", choices=MODELS, default=DEFAULT_VARIANT)
    parser.add_argument("--cache", type=Path, default=Path("var/cache/features"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    try:
        splits = split_examples(load_examples(args.data))
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not any(e.label == args.breed for e in splits["train"]):
        print(f"error: no training photos of {args.breed} in {args.data}", file=sys.stderr)
        return 2
    config = TrainConfig(variant=args.variant)
    _, backbone_params = from_pretrained(args.variant)
    zero, base = imagenet_base(backbone_params), imagenet_base(backbone_params, (args.breed,))
    extractor = FeatureExtractor(args.variant)
    cache = FeatureCache(args.cache, args.variant)
    features = extractor.extract(splits["train"], config.views, cache, "train features")
    features |= extractor.extract(splits["val"], 0, cache, "val features")
    val_breed = [e for e in splits["val"] if e.label == args.breed]
    val_others = [e for e in splits["val"] if e.label != args.breed]
    print(f"learning {args.breed} back ({len(val_breed)} val photos of it, "
          f"{len(val_others)} of the other breeds)")
    print(f"  zero-training, knowing it:   recall {score(zero, val_breed, features).top1:.3f}"
          f"   others top-1 {score(zero, val_others, features).top1:.3f}")
    print(f"  base without it:             recall {0.0:.3f}"
          f"   others top-1 {score(base, val_others, features).top1:.3f}")
    breed_photos = [e for e in splits["train"] if e.label == args.breed]
    for count in args.photos:
        chosen = breed_photos[:count]
        train = [e for e in splits["train"] if e.label != args.breed] + chosen
        with tempfile.TemporaryDirectory() as logs:
            learnt = train_base(config, base, train, splits["val"], features, backbone_params,
                                Path(logs))
        print(f"  from {len(chosen):>4} photos:             recall "
              f"{score(learnt, val_breed, features).top1:.3f}   others top-1 "
              f"{score(learnt, val_others, features).top1:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
