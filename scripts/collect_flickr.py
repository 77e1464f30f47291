"""Collect photos of a breed from Flickr (Creative Commons by default), checked and credited.

python scripts/collect_flickr.py --breed jindo --query "Jindo dog" --query "진돗개" --max 600
    [--out var/data/flickr] [--name "Korean Jindo"] [--licence cc|any|ID,...] [--against PATH ...]

Needs FLICKR_API_KEY and FLICKR_API_SECRET; FLICKR_REST_URL points the client at another REST
endpoint (tests, mirrors). Rerunning resumes: photos already kept or dropped are skipped.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from tqdm.contrib.logging import logging_redirect_tqdm

from model import DEFAULT_VARIANT
from model.data.flickr import (
    CollectorError,
    CollectorSettings,
    FlickrCollector,
    credentials_from_env,
    flickr_client,
    parse_licences,
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--breed", required=True, help="breed id, made into the folder's slug")
    parser.add_argument("--query", action="append", required=True,
                        help="a search text; repeat for several (e.g. in other languages)")
    parser.add_argument("--max", type=int, default=600, dest="max_photos",
                        help="photos to keep in all, earlier runs included (default 600)")
    parser.add_argument("--out", type=Path, default=Path("var/data/flickr"),
                        help="where breeds are collected (default var/data/flickr)")
    parser.add_argument("--name", help="display name (default: the breed, title-cased)")
    parser.add_argument("--licence", default="cc",
                        help="cc (Creative Commons, default), any, or Flickr licence ids 4,5,9")
    parser.add_argument("--against", type=Path, nargs="+", action="extend", default=[],
                        metavar="PATH", help="data sets (manifest CSV, Stanford-layout or "
                        "class folders) whose near-duplicates are refused")
    parser.add_argument("--model", default=os.environ.get("WHATBREED_MODEL", DEFAULT_VARIANT),
                        help="backbone that checks photos are dogs "
                             f"(default: $WHATBREED_MODEL or {DEFAULT_VARIANT})")
    parser.add_argument("--interval", type=float, default=1.0,
                        help="seconds between requests (default 1)")
    parser.add_argument("--timeout", type=float, default=20.0,
                        help="seconds per request (default 20)")
    args = parser.parse_args(argv)
    if args.max_photos < 1:
        parser.error("--max must be at least 1")
    try:
        args.licences = parse_licences(args.licence)
    except ValueError as error:
        parser.error(str(error))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        api_key, api_secret = credentials_from_env()
    except CollectorError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from model.artifact import ArtifactError  # these load JAX: only once the keys are there
    from model.predictor import Predictor

    settings = CollectorSettings(interval_s=args.interval, timeout_s=args.timeout)
    try:
        predictor = Predictor(args.model, warm_up=False)
    except ArtifactError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    collector = FlickrCollector(flickr_client(api_key, api_secret, timeout_s=args.timeout),
                                predictor, args.out, settings)
    try:
        with logging_redirect_tqdm():
            report = collector.collect(args.breed, args.query, args.max_photos, args.name,
                                       args.licences, args.against)
    except (CollectorError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: run the same command again to resume", file=sys.stderr)
        return 130
    print("dropped by reason:")
    print(report.table())
    print(report.summary())
    if report.pages_failed and report.kept_before + report.kept < args.max_photos:
        print(f"error: {report.pages_failed} search page(s) failed (is Flickr reachable?): run "
              "the same command again to fetch them", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
