"""Evaluate a breed model on labelled photos and write an HTML report with metrics.json.

    python scripts/evaluate.py --model ARTIFACT_OR_VARIANT --data MANIFEST_OR_DIR
        [--split val] [--out var/reports/<name>] [--limit N] [--gradcam 12] [--gallery 24]
        [--mirror never|unsure|always] [--matmul auto|float32|bfloat16]

--model is lite0, lite1 or lite2 (no training) or a trained model file; --data a manifest, a
Stanford-layout folder with splits/*.txt, or class folders (used whole: they have no splits).
"""

import argparse
import logging
import os
import sys
from pathlib import Path

from model import DEFAULT_VARIANT, MATMUL_SETTINGS
from model.artifact import ArtifactError
from model.evaluation.report import build_report
from model.evaluation.scoring import EvaluationError, load_data, select_examples
from model.predictor import MIRROR, MIRRORS, Predictor


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=os.environ.get("WHATBREED_MODEL", DEFAULT_VARIANT),
                        help="lite0, lite1, lite2 or a trained model file")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--split", default="val", help="train, val, test or all (default val)")
    parser.add_argument("--out", type=Path, help="report folder (default var/reports/<name>)")
    parser.add_argument("--limit", type=int, help="at most this many photos, spread evenly")
    parser.add_argument("--gradcam", type=int, default=12, help="photos with Grad-CAM overlays")
    parser.add_argument("--gallery", type=int, default=24, help="misclassified photos shown")
    parser.add_argument("--mirror", choices=MIRRORS, default=MIRROR,
                        help="which photos are averaged with their mirror image")
    parser.add_argument("--matmul", choices=MATMUL_SETTINGS, default="auto",
                        help="the backbone's 1×1 products (default auto, as the bot serves "
                             "by default; see WHATBREED_MATMUL in the README)")
    args = parser.parse_args()
    if any(n is not None and n < 0 for n in (args.limit, args.gradcam, args.gallery)):
        parser.error("--limit, --gradcam and --gallery must not be negative")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("model.evaluation").setLevel(logging.INFO)
    name = f"{Path(args.model).stem}-{args.data.resolve().name}-{args.split}"
    out = args.out or Path("var/reports") / name
    try:
        examples = select_examples(load_data(args.data), args.split, args.limit)
        predictor = Predictor(args.model, warm_up=False, mirror=args.mirror,
                              matmul=args.matmul)
        metrics = build_report(predictor, examples, out, data_name=str(args.data),
                               split=args.split, gradcam=args.gradcam, gallery=args.gallery)
    except (ArtifactError, EvaluationError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{metrics['model']} on {metrics['count']} photos of {args.data} ({args.split}): "
          f"top-1 {metrics['top1']:.3f}  top-5 {metrics['top5']:.3f}  "
          f"macro F1 {metrics['macro_f1']:.3f}  ECE {metrics['ece']:.3f}"
          f"  (restricted top-1 {metrics['restricted_top1']:.3f})")
    if metrics["unknown_to_model"] or metrics["unreadable"]:
        print(f"excluded: {metrics['unknown_to_model']} of breeds unknown to the model, "
              f"{metrics['unreadable']} unreadable")
    print(f"report: {out / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
