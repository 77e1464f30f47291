"""Every correction people made, one CSV row each, for retraining to weigh.

    python -m bot.export_votes [--database sqlite:///var/whatbreed.db] [--photos var/photos]
        [--out var/data/votes.csv]

The defaults follow the bot's settings ($DATABASE_URL, $WHATBREED_DATA). The database is only
read; one not at the bot's newest migration is an error: start the bot once to migrate it.
Columns: see bot.storage.export_votes.
"""

import argparse
import sys
from pathlib import Path

from bot.config import DATA_DIR, DATABASE_URL, PHOTO_DIR
from bot.storage import UnreadableDatabase, export_votes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.export_votes", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default=DATABASE_URL,  # not shown: it may hold a password
                        help="the bot's database URL (default: $DATABASE_URL, else "
                             "sqlite:///$WHATBREED_DATA/whatbreed.db)")
    parser.add_argument("--photos", type=Path, default=PHOTO_DIR,
                        help=f"the bot's photo folder (default: {PHOTO_DIR})")
    parser.add_argument("--out", type=Path, default=DATA_DIR / "data" / "votes.csv",
                        help="the CSV to write (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        count = export_votes(args.database, args.photos, args.out)
    except (OSError, UnreadableDatabase) as error:  # e.g. no such database, a bad URL
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{count} corrections written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
