"""Learn from people's corrections: train a candidate, promote it only when it is better.

    python scripts/retrain.py [--model var/model.whatbreed] [--check DIR ...] [--every 6h]
    python scripts/retrain.py --rollback

Reads the bot's corrections (its own export, read-only), keeps those the rules trust (the
event's host, or enough people agreeing; one person's weight capped), trains a candidate that
extends the served model (the file, or the zero-training model when there is none), and
compares the two on held-out corrected photos and on every --check folder. Promotion swaps
the model file atomically; the running bot reloads it by itself. Each vote's outcome is written
to <model>.history/votes-<time>.csv; every promotion is logged in promotions.jsonl there.
"""

import argparse
import csv
import logging
import os
import re
import sys
import tempfile
import time
from dataclasses import astuple
from datetime import UTC, datetime
from pathlib import Path

from bot.config import (
    DATABASE_URL,
    FEATURE_CACHE,
    PHOTO_DIR,
    PROMOTED_MODEL,
    ModelSource,
    matmul_setting,
)
from bot.storage import UnreadableDatabase, export_votes
from model import MODELS
from model.artifact import ArtifactError
from model.data.corrections import BOX_FIELDS, Decisions, Rules, decide, read_votes
from model.data.dataset import load_examples
from model.training.promotion import (
    PromotionError,
    history_dir,
    promote,
    rollback,
    sweep_killed_writes,
)
from model.training.retrain import (
    Candidate,
    RetrainError,
    promotion_record,
    read_state,
    served_model,
    train_candidate,
    write_state,
)
from model.training.train import TrainConfig, manifest_digest

log = logging.getLogger("retrain")
EVERY = re.compile(r"(\d+)([smhd])")
SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
RULE_FLAGS = {  # Rules' fields, as flags (--min-agree for min_agree)
    "min_agree": "people who must agree without the host",
    "max_per_voter": "photos one person may help decide",
    "new_breed_voters": "people who must name a new breed",
    "new_breed_photos": "photos a new breed needs to become a class",
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    rules, parser = Rules(), argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    served = ModelSource.from_setting(os.environ.get("WHATBREED_MODEL"))  # as the bot reads it
    parser.add_argument("--database", default=DATABASE_URL,
                        help="the bot's database URL (default: $DATABASE_URL or SQLite in "
                             "$WHATBREED_DATA)")
    parser.add_argument("--photos", type=Path, default=PHOTO_DIR,
                        help="the bot's photo folder (default: %(default)s)")
    parser.add_argument("--model", type=Path, default=served.watched or PROMOTED_MODEL,
                        help="the model file the bot serves, promoted into (default: "
                             "$WHATBREED_MODEL's file, else %(default)s)")
    parser.add_argument("--variant", choices=MODELS,
                        default=served.name if served.watched is None else served.fallback,
                        help="backbone when no model file exists yet (default: %(default)s)")
    parser.add_argument("--check", type=Path, action="append", default=[],
                        help="labelled photos of other breeds that must not get worse "
                             "(a Stanford-layout folder, class folders or a manifest); repeat")
    parser.add_argument("--cache", type=Path, default=FEATURE_CACHE,
                        help="backbone features cache (default: %(default)s)")
    parser.add_argument("--tolerance", type=float, default=0.01,
                        help="how much worse a check set may get (default: %(default)s)")
    for name, help_text in RULE_FLAGS.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(rules, name),
                            help=f"{help_text} (default: %(default)s)")
    parser.add_argument("--every", help="run again at this interval, e.g. 30m or 6h")
    parser.add_argument("--rollback", action="store_true",
                        help="serve again the model the last promotion replaced")
    args = parser.parse_args(argv)
    if args.every and not EVERY.fullmatch(args.every):
        parser.error(f"--every takes a number and s, m, h or d, e.g. 6h: not {args.every!r}")
    return args


def write_outcomes(decisions: Decisions, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["correction_id", "at", "sha256", *BOX_FIELDS, "label", "name", "host",
                         "counted", "why"])
        for o in decisions.outcomes:
            box = astuple(o.vote.box) if o.vote.box else ("",) * len(BOX_FIELDS)
            writer.writerow([o.vote.correction_id, o.vote.at, o.vote.sha256, *box, o.vote.label,
                             o.vote.name, int(o.vote.host), int(o.counted), o.why])


def print_decisions(decisions: Decisions, outcomes_file: Path) -> None:
    counts = ", ".join(f"{why} {n}" for why, n in decisions.counts().most_common())
    print(f"{len(decisions.outcomes)} corrections: {counts or 'none'} ({outcomes_file})")
    dogs = sum(e.box is not None for e in decisions.examples)
    print(f"{len(decisions.examples)} trusted labels: {len(decisions.examples) - dogs} whole "
          f"photos, {dogs} dogs of several")
    for breed in decisions.new_breeds:
        print(f"new breed {breed.name} ({breed.label}): {breed.voters} people, "
              f"{breed.photos} photos or dogs")
    for breed in decisions.candidates:
        print(f"candidate breed {breed.name} ({breed.label}): {breed.voters} people, "
              f"{breed.photos} photos or dogs; more photos: {breed.suggestion()}")


def print_candidate(candidate: Candidate, current: str) -> None:
    print(f"{'':34}{current[:26]:>26}  {candidate.artifact.version[:26]:>26}")
    names = {b.label: b.name for b in candidate.artifact.labels}
    corrected = candidate.comparisons[0]
    for c in candidate.comparisons:
        print(f"  {c.name[:32]:<32}{c.before.top1:>18.3f} (ECE {c.before.ece:.3f})"
              f"{c.after.top1:>12.3f} (ECE {c.after.ece:.3f})  n={c.after.count}")
        if c is corrected:
            for label, (right, count) in c.after.per_breed.items():
                print(f"    {names[label][:30]:<30}{c.before.per_breed[label][0]:>14}/{count}"
                      f"{right:>21}/{count}")
    print(("promoted: " if candidate.promote else "kept the current model: ") + candidate.why)


def retrain_once(args: argparse.Namespace) -> int:
    """One round: export, decide, train, compare, promote. 0 also when nothing is new."""
    if swept := sweep_killed_writes(args.model):
        print(f"removed {swept} partly written files that killed runs left")
    served = served_model(args.model, args.variant, matmul_setting())  # as the bot serves it
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    with tempfile.TemporaryDirectory(prefix="votes-") as scratch:
        export_votes(args.database, args.photos, Path(scratch) / "votes.csv")
        votes = read_votes(Path(scratch) / "votes.csv")
    rules = Rules(**{name: getattr(args, name) for name in RULE_FLAGS})
    decisions = decide(votes, {b.label for b in served.base.labels}, rules)
    state_file = history_dir(args.model) / "retrain_state.json"
    digest = manifest_digest(decisions.examples)  # what a candidate would learn from
    if read_state(state_file).get("digest") == digest:
        print(f"{len(votes)} corrections, nothing new since the last run: "
              f"{served.version} stays")
        return 0
    outcomes_file = history_dir(args.model) / f"votes-{stamp}.csv"
    write_outcomes(decisions, outcomes_file)
    print_decisions(decisions, outcomes_file)
    checks = {folder.name: load_examples(folder) for folder in args.check}
    config = TrainConfig(variant=served.variant)
    try:
        candidate = train_candidate(config, served, decisions.examples, checks, args.cache,
                                    history_dir(args.model) / f"logs-{stamp}", args.tolerance)
    except RetrainError as too_few:  # the normal state of a new bot: wait for more
        print(f"not yet: {too_few}")
        write_state(state_file, {"digest": digest, "candidate": None, "promoted": False})
        return 0
    if candidate.promote:  # before printing: the record is part of the file, and its version
        candidate.artifact.metrics["promotion"] = promotion_record(
            candidate, served, datetime.now(UTC).isoformat(timespec="seconds"))
    print_candidate(candidate, served.version)
    if candidate.promote:
        promote(candidate.artifact, args.model, served.version, candidate.figures())
    write_state(state_file, {"digest": digest, "candidate": candidate.artifact.version,
                             "promoted": candidate.promote})
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    if args.rollback:
        return guarded(lambda: print(f"rolled back: serving {rollback(args.model)} again"))
    if not args.every:
        return guarded(lambda: retrain_once(args))
    number, unit = EVERY.fullmatch(args.every).groups()
    while True:  # unattended: a failed round is reported, and the next one tries again
        try:
            guarded(lambda: retrain_once(args))
        except Exception:
            log.exception("this round failed; the next one tries again")
        time.sleep(int(number) * SECONDS[unit])


def guarded(run) -> int:
    """``run()``'s status; a problem the user can fix is one line on stderr and status 2."""
    try:
        return run() or 0
    except (OSError, UnreadableDatabase, ArtifactError, PromotionError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
