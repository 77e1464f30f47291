"""Train the breed head on cached backbone features and export one model file.

    python scripts/train.py --data MANIFEST_OR_DIR --out var/trained.whatbreed [--views 2] ...

The model answers over every breed of the zero-training model (ImageNet's 121) plus every new
breed in the data, and keeps the zero-training answers for breeds without photos;
--only-data-breeds trains a head over the data's breeds alone.

--data takes a manifest from build_dataset.py, a Stanford-layout folder with splits/*.txt
(e.g. ../shared/datasets/dogs-dev), or class folders already split by a manifest.
"""

import argparse
import json
import logging
import sys
from pathlib import Path

from model import MATMUL_SETTINGS
from model.data.dataset import load_examples
from model.predictor import MODELS
from model.training.train import TrainConfig, train_and_export, train_baseline


class HelpFormatter(argparse.RawDescriptionHelpFormatter,
                    argparse.ArgumentDefaultsHelpFormatter):
    """The docstring as written, and each option's default."""


def print_baseline(metrics: dict, out: Path) -> int:
    print(f"small CNN from scratch: wrote {out.with_name(out.name + '.baseline.json')}")
    for split in ("train", "val", "test"):
        if split in metrics:
            print(f"  {split:<5} top-1 {metrics[split]['top1']:.3f}  "
                  f"top-5 {metrics[split]['top5']:.3f}")
    print(f"  training {metrics['training_s']:.0f} s over {metrics['epochs']} epochs")
    return 0


# TrainConfig's fields that are flags (--learning-rate for learning_rate), with their help.
CONFIG_FLAGS = {
    "views": "augmented views per training photo",
    "hidden": "hidden layer width (0: linear head)",
    "dropout": "dropout rate",
    "epochs": "at most this many (early stopping on val top-1)",
    "batch_size": "photos",
    "learning_rate": "peak AdamW learning rate",
    "label_smoothing": "of the one-hot targets",
    "distill_weight": "how strongly the old breeds keep the zero-training answers (0: off)",
    "distill_temperature": "softens both answers",
    "seed": "for every random draw",
}


def main() -> int:
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--data", type=Path, required=True, default=argparse.SUPPRESS,
                        help="a manifest, a Stanford-layout folder with splits, or class folders")
    parser.add_argument("--out", type=Path, default=Path("var/trained.whatbreed"),
                        help="the model file to write (the bot serves var/model.whatbreed, "
                             "which only scripts/retrain.py replaces)")
    parser.add_argument("--cache", type=Path, default=Path("var/cache/features"),
                        help="where backbone features are cached")
    parser.add_argument("--variant", choices=MODELS, default=defaults.variant, help="backbone")
    parser.add_argument("--matmul", choices=MATMUL_SETTINGS, default=defaults.matmul,
                        help="the backbone's 1×1 products for the features; auto: those the "
                             "bot serves the head with on this machine (README, Training)")
    for name, help_text in CONFIG_FLAGS.items():
        default = getattr(defaults, name)
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(default), default=default,
                            help=help_text)
    parser.add_argument("--distill-non-target", action="store_true",
                        help="leave each photo's own breed out of the distillation (learns the "
                             "data's breeds better, forgets others more: see README)")
    parser.add_argument("--only-data-breeds", action="store_true",
                        help="a head over the data's breeds alone, forgetting the others")
    parser.add_argument("--no-balance", action="store_true", help="no class weights")
    parser.add_argument("--baseline-cnn", action="store_true",
                        help="instead, train a small CNN from scratch on the same photos")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    config = TrainConfig(variant=args.variant, matmul=args.matmul, balance=not args.no_balance,
                         extend=not args.only_data_breeds,
                         distill_non_target=args.distill_non_target,
                         **{name: getattr(args, name) for name in CONFIG_FLAGS})
    try:
        examples = load_examples(args.data)
        if args.baseline_cnn:
            return print_baseline(train_baseline(config, examples, args.out), args.out)
        artifact = train_and_export(config, examples, args.out, args.cache)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    metrics = artifact.metrics
    print(f"wrote {args.out} ({len(artifact.labels)} breeds, {artifact.version}, fitted on "
          f"features of {artifact.matmul} 1×1 products)")
    for split in ("train", "val", "test"):
        if split in metrics:
            m = metrics[split]
            print(f"  {split:<5} top-1 {m['top1']:.3f}  top-5 {m['top5']:.3f}  ({m['count']} views)"
                  f"   zero-training top-1 {metrics['zero_training'][split]:.3f}")
    calibration = metrics["calibration"]
    held_out = f", test ECE {metrics['test']['ece']:.3f}" if "test" in metrics else ""
    print(f"  calibrated: temperature {calibration['temperature']:.2f}, val ECE "
          f"{calibration['val_ece_before']:.3f} -> {metrics['val']['ece']:.3f}{held_out}")
    print(f"  feature extraction {metrics['extraction_s']:.0f} s, head training "
          f"{metrics['training_s']:.0f} s over {metrics['epochs']} epochs")
    print(json.dumps({k: metrics[k] for k in ("val", "zero_training")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
