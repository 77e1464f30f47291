"""The bot under load: python -m bot against the Bot API stand-in, 100 users sending a photo at
once, then a sustained rate, with micro-batching and without, side by side; --startup times
the bot's start to its first answer, cold and warm (README, Speed)."""

import argparse
import asyncio
import sys
from pathlib import Path

from bot.config import DEFAULT_MAX_BATCH
from bot.loadtest import (
    Load,
    LoadTestError,
    format_runs,
    format_starts,
    measure_startup,
    read_photos,
    run_load,
)
from model import MODELS


def main() -> None:
    defaults = Load()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=defaults.users,
                        help="users sending a photo each at once (default %(default)s)")
    parser.add_argument("--rate", type=float, default=defaults.rate,
                        help="photos a second after the burst (default %(default)s)")
    parser.add_argument("--duration", type=float, default=defaults.duration,
                        help="seconds of the sustained rate; 0: the burst only "
                             "(default %(default)s)")
    parser.add_argument("--model", choices=MODELS, default=defaults.model)
    parser.add_argument("--photos", type=Path, default=defaults.photos,
                        help="a folder of photos to send (default %(default)s)")
    parser.add_argument("--max-batch", type=int, nargs="+", default=[DEFAULT_MAX_BATCH, 1],
                        help="WHATBREED_MAX_BATCH of one bot run each, side by side; 1 turns "
                             "micro-batching off (default: %(default)s)")
    parser.add_argument("--startup", action="store_true",
                        help="time the start to the first answer instead: cold, warm, and "
                             "two bots at once on an empty compilation cache")
    args = parser.parse_args()
    load = Load(args.users, args.rate, args.duration, args.model, args.photos)
    try:
        if args.startup:
            starts = asyncio.run(measure_startup(read_photos(load.photos, 1)[0], load.model))
            print(format_starts(load.model, starts))
            return
        runs = [asyncio.run(run_load(load, max_batch)) for max_batch in args.max_batch]
    except LoadTestError as error:
        sys.exit(f"error: {error}")
    print(format_runs(load, runs))
    if not all(run.correct for run in runs):
        sys.exit("error: some photos were not answered exactly once (see above)")


if __name__ == "__main__":
    main()
