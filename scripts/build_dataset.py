"""Merge every labelled photo into one split manifest, and report on the data.

    python scripts/build_dataset.py [--stanford var/data/stanford] [--flickr var/data/flickr]
        [--folder DIR ...] [--corrections sqlite:///var/whatbreed.db --photos var/photos]
        [--out var/data/manifest.csv] [--val 0.1] [--test 0.1] [--seed 0] [--min-photos 5]

Sources that are absent are skipped (a line in the report says so); it is an error only when
none of them has any photo. Exact duplicates are kept once, near-duplicates stay in one split,
official splits are kept (Stanford's val is carved from its train photos). The report is
printed and written to <out>.report.txt; perceptual hashes are cached in phash_cache.csv
beside the output. See model/data/build.py.

The bot's corrections are read from its database without changing it (bot.storage's
export_corrections writes them as a manifest, which the build reads like any other); a
database not at the bot's newest migration is an error: start the bot once to migrate it.
"""

import argparse
import logging
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from bot.storage import UnreadableDatabase, export_corrections
from model.data.build import SMALL_BREED, BuildConfig, BuildError, Sources, build_dataset


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stanford", type=Path, default=Path("var/data/stanford"),
                        help="prepare_stanford_dogs.py's output (default: var/data/stanford)")
    parser.add_argument("--flickr", type=Path, default=Path("var/data/flickr"),
                        help="collect_flickr.py's output (default: var/data/flickr)")
    parser.add_argument("--folder", type=Path, action="append", default=[],
                        help="class folders (class/*.jpg), a Stanford-layout folder or a "
                             "manifest; repeat for more")
    parser.add_argument("--corrections", default="sqlite:///var/whatbreed.db",
                        help="the bot's database URL (default: sqlite:///var/whatbreed.db)")
    parser.add_argument("--photos", type=Path, default=Path("var/photos"),
                        help="the bot's photo folder (default: var/photos)")
    parser.add_argument("--out", type=Path, default=Path("var/data/manifest.csv"),
                        help="the manifest to write (default: var/data/manifest.csv)")
    parser.add_argument("--val", type=float, default=0.1, help="val fraction (default: 0.1)")
    parser.add_argument("--test", type=float, default=0.1, help="test fraction (default: 0.1)")
    parser.add_argument("--seed", type=int, default=0, help="split seed (default: 0)")
    parser.add_argument("--min-photos", type=int, default=5,
                        help="drop breeds with fewer photos (default: 5)")
    parser.add_argument("--small-breed", type=int, default=SMALL_BREED,
                        help=f"list breeds under this many photos (default: {SMALL_BREED})")
    args = parser.parse_args(argv)
    if not (0 <= args.val < 1 and 0 <= args.test < 1 and args.val + args.test < 1):
        parser.error("--val and --test must be fractions in [0, 1) that sum to less than 1")
    if args.min_photos < 1:
        parser.error("--min-photos must be at least 1")
    return args


def sources(args: argparse.Namespace, scratch: Path) -> Sources:
    """The sources named on the command line; the bot's corrections exported into ``scratch``."""
    named = Sources(args.stanford, args.flickr, tuple(args.folder))
    manifest = scratch / "corrections.csv"
    try:
        export_corrections(args.corrections, args.photos, manifest)
    except FileNotFoundError as absent:  # no database or photo folder: the report says so
        return replace(named, skipped=(("correction", str(absent)),))
    return replace(named, corrections=manifest)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)  # its chatter on reading a revision
    config = BuildConfig(args.out, args.val, args.test, args.seed, args.min_photos,
                         args.small_breed)
    try:
        with tempfile.TemporaryDirectory(prefix="corrections-") as scratch:
            report = build_dataset(sources(args, Path(scratch)), config)
    except UnreadableDatabase as error:
        print(f"error: --corrections {error}", file=sys.stderr)
        return 2
    except BuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(report.render(), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
