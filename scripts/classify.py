"""Classify dog photos: python scripts/classify.py PATH_OR_DIR_OR_URL... [--top-k 5] [--json]
[--look-twice]"""

import argparse
import logging
import os
import sys

from model import DEFAULT_VARIANT, MODELS
from model.artifact import ArtifactError
from model.classify import classify_sources
from model.photo_sources import expand
from model.predictor import LOOK, LOOK_TWICE, Predictor


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("photos", nargs="+", help="photo files, folders or http(s) URLs")
    parser.add_argument("--top-k", type=int, default=5, help="breeds to list per photo")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--look-twice", action="store_true",
                        help="also classify a crop around the dog when unsure or small")
    parser.add_argument("--model", default=os.environ.get("WHATBREED_MODEL", DEFAULT_VARIANT),
                        help=f"{', '.join(MODELS)} (no training) or a trained model file "
                             f"(default: $WHATBREED_MODEL or {DEFAULT_VARIANT})")
    args = parser.parse_args()
    if args.top_k < 1:
        parser.error("--top-k must be at least 1")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        predictor = Predictor(args.model, top_k=args.top_k, warm_up=False)  # compile on demand
    except ArtifactError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        failures = classify_sources(expand(args.photos), predictor, args.json,
                                    sys.stdout, sys.stderr, LOOK_TWICE if args.look_twice else LOOK)
    except BrokenPipeError:  # e.g. piped into `head`: stop quietly, like any Unix tool
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
