"""Prepare Stanford Dogs: one cropped photo per annotated dog, and a manifest.

    python scripts/prepare_stanford_dogs.py [--out var/data/stanford]
        [--data-dir ~/tensorflow_datasets] [--margin 0.1] [--from-dir PATH]

Without --from-dir, tensorflow-datasets downloads and parses the official archives (needs
pip install -e '.[stanford]'). With it, a folder laid out as Stanford's or Kaggle's
(Images/<wnid>-<Name>/*.jpg, optionally Annotation/, lists/*_list.mat or splits/*.txt).
"""

import argparse
import logging
import sys
from pathlib import Path

from model.data.stanford import DEFAULT_MARGIN, StanfordError, prepare_from_dir, prepare_from_tfds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("var/data/stanford"),
                        help="output folder, replaced as a whole (default: var/data/stanford)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="tensorflow-datasets' cache (default: ~/tensorflow_datasets)")
    parser.add_argument("--margin", type=float, default=DEFAULT_MARGIN,
                        help="margin around each box, as a fraction of its size (default: 0.1)")
    parser.add_argument("--from-dir", type=Path, default=None,
                        help="a Stanford-layout folder to read instead of tensorflow-datasets")
    args = parser.parse_args(argv)
    if args.margin < 0:
        parser.error("--margin must be at least 0")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.from_dir is not None:
            prepared = prepare_from_dir(args.from_dir.expanduser(), args.out, args.margin)
        else:
            data_dir = args.data_dir.expanduser() if args.data_dir else None
            prepared = prepare_from_tfds(args.out, data_dir, args.margin)
    except StanfordError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(prepared.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
