"""An evaluation report of a breed model on labelled photos: ``metrics.json`` and an HTML page.

    report = build_report(Predictor(model), select_examples(load_data(path), "val"), out)

The report folder holds ``index.html`` (self-contained apart from the files beside it),
``metrics.json``, the confusion matrix as PNG and CSV, a reliability plot, thumbnails of
misclassified photos (``gallery/``) and Grad-CAM overlays (``gradcam/``). The photos are
scored by ``model.evaluation.scoring`` and measured by ``model.evaluation.metrics``; this
module writes the files.

Which predictions each number uses:
- top-1, top-5, macro F1, the per-breed report, the most-confused pairs, the gallery and
  calibration use the model's full label set: what the model really answers.
- ``restricted_top1`` and the confusion matrix take the argmax over the breeds present in
  the evaluated data only. That makes the zero-training model (121 ImageNet breeds) comparable
  with a head trained on those same breeds, and keeps the matrix square (data breeds × data
  breeds); its diagonal sums to ``restricted_top1 × count``.
"""

from __future__ import annotations

import csv
import html
import json
import logging
from pathlib import Path

import matplotlib
import numpy as np
from PIL import Image

from model.data.dataset import Example
from model.evaluation.metrics import accuracy, most_confused, per_breed, restricted_confusion
from model.evaluation.scoring import Scored, score
from model.predictor import Predictor
from model.preprocess import load_rgb
from model.training.calibration import calibration_bins, expected_calibration_error

matplotlib.use("Agg")  # files only, never a window; must precede pyplot's import
import matplotlib.pyplot as plt  # noqa: E402

log = logging.getLogger(__name__)

THUMBNAIL_PX = 160
GRADCAM_ALPHA = 0.45  # weight of the heatmap over the photo


# --- the report -----------------------------------------------------------------------------

def build_report(predictor: Predictor, examples: list[Example], out: Path, *,
                 data_name: str = "", split: str = "", gradcam: int = 12,
                 gallery: int = 24) -> dict:
    """Evaluate ``predictor`` on ``examples``, write the report folder, return metrics.json's
    content."""
    out.mkdir(parents=True, exist_ok=True)
    scored = score(predictor, examples)
    breeds, truth, probs = predictor.breeds, scored.truth, scored.breed_probs
    predicted = probs.argmax(1)
    confidence, correct = probs.max(1), predicted == truth
    reports = per_breed(truth, predicted, breeds)
    present, counts = restricted_confusion(probs, truth)
    names = [breeds[b].name for b in present]
    write_confusion(out, counts, names)
    bins = calibration_bins(confidence, correct)
    ece = expected_calibration_error(confidence, correct)
    write_reliability(out, bins, ece)
    metrics = {
        "model": predictor.version, "description": predictor.description,
        "matmul": predictor.matmul, "data": data_name, "split": split,
        "count": len(scored.examples),
        "unknown_to_model": sum(scored.unknown.values()),
        "unknown_labels": dict(sorted(scored.unknown.items())),
        "unreadable": len(scored.unreadable), "unreadable_photos": scored.unreadable,
        **accuracy(probs, truth),
        "macro_f1": float(np.mean([r["f1"] for r in reports.values()])),
        "ece": ece, "misclassified": int((~correct).sum()),
        "per_breed": reports,
        "confusion": {"labels": [breeds[b].label for b in present], "names": names,
                      "prediction": "argmax over the breeds present in the data",
                      "counts": counts.tolist()},
        "most_confused": most_confused(truth, predicted, breeds),
        "calibration_bins": bins,
        "gallery": write_gallery(out, scored, breeds, gallery),
        "gradcam": write_gradcam(out, predictor, scored, gradcam),
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    (out / "index.html").write_text(render_html(metrics))
    log.info("report written to %s", out)
    return metrics


# --- plots ----------------------------------------------------------------------------------

def write_confusion(out: Path, counts: np.ndarray, names: list[str]) -> None:
    """confusion.csv (breed names as header and index) and confusion.png."""
    with open(out / "confusion.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["true \\ predicted", *names])
        writer.writerows([name, *map(int, row)] for name, row in zip(names, counts, strict=True))
    side = max(4.0, 0.45 * len(names) + 2.5)
    figure, axes = plt.subplots(figsize=(side + 1, side))
    # Colour by each row's share so that rare breeds' confusions are as visible as common ones.
    shares = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    image = axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    if len(names) <= 30:  # beyond that the numbers would be unreadable anyway
        for (row, column), count in np.ndenumerate(counts):
            axes.text(column, row, str(count), ha="center", va="center", fontsize=8,
                      color="white" if shares[row, column] > 0.5 else "black")
    axes.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=8)
    axes.set_yticks(range(len(names)), names, fontsize=8)
    axes.set_xlabel("predicted (among the breeds in the data)")
    axes.set_ylabel("true breed")
    figure.colorbar(image, ax=axes, label="share of the true breed's photos")
    figure.tight_layout()
    figure.savefig(out / "confusion.png", dpi=100)
    plt.close(figure)


def write_reliability(out: Path, bins: list[dict], ece: float) -> None:
    """reliability.png: accuracy against confidence per bin, and how many photos each holds."""
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(5, 6), sharex=True,
                                         gridspec_kw={"height_ratios": [3, 1]})
    width = bins[0]["upper"] - bins[0]["lower"]
    filled = [b for b in bins if b["count"]]
    top.bar([b["lower"] for b in filled], [b["accuracy"] for b in filled], width=width,
            align="edge", edgecolor="black", color="tab:blue", label="accuracy")
    top.plot([b["confidence"] for b in filled], [b["confidence"] for b in filled], "o",
             color="tab:red", label="mean confidence")
    top.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    top.set(ylim=(0, 1), ylabel="accuracy", title=f"Reliability (ECE {ece:.3f})")
    top.legend(loc="upper left", fontsize=8)
    bottom.bar([b["lower"] for b in bins], [b["count"] for b in bins], width=width,
               align="edge", edgecolor="black", color="tab:grey")
    bottom.set(xlim=(0, 1), xlabel="top-1 confidence", ylabel="photos")
    figure.tight_layout()
    figure.savefig(out / "reliability.png", dpi=100)
    plt.close(figure)


# --- photos ---------------------------------------------------------------------------------

def _top_guesses(probs: np.ndarray, breeds: tuple, count: int = 3) -> list[dict]:
    return [{"label": breeds[i].label, "name": breeds[i].name, "probability": float(probs[i])}
            for i in np.argsort(-probs)[:count]]


def write_gallery(out: Path, scored: Scored, breeds: tuple, limit: int) -> list[dict]:
    """Thumbnails of the misclassified photos, the most confident mistakes first."""
    predicted = scored.breed_probs.argmax(1)
    wrong = np.flatnonzero(predicted != scored.truth)
    wrong = wrong[np.argsort(-scored.breed_probs[wrong].max(1), kind="stable")][:limit]
    (out / "gallery").mkdir(exist_ok=True)
    items = []
    for number, i in enumerate(wrong):
        example = scored.examples[i]
        image = load_rgb(example.path.read_bytes(), THUMBNAIL_PX)
        image.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX), Image.Resampling.LANCZOS)
        name = f"gallery/{number:03d}.jpg"
        image.save(out / name, quality=85)
        items.append({"file": name, "path": str(example.path), "true_label": example.label,
                      "true_name": breeds[scored.truth[i]].name,
                      "guesses": _top_guesses(scored.breed_probs[i], breeds)})
    return items


def write_gradcam(out: Path, predictor: Predictor, scored: Scored, count: int) -> list[dict]:
    """Grad-CAM overlays for ``count`` photos spread evenly over the evaluated ones."""
    if count <= 0:
        return []
    chosen = np.unique(np.linspace(0, len(scored.examples) - 1, count).round().astype(int))
    decoded = predictor.decode([scored.examples[i].path.read_bytes() for i in chosen])
    pixels = np.stack(decoded)  # these photos were read and decoded once already
    targets = scored.breed_probs[chosen].argmax(1)
    cams = predictor.grad_cam(pixels, targets)
    (out / "gradcam").mkdir(exist_ok=True)
    items = []
    for number, (i, target, cam) in enumerate(zip(chosen, targets, cams, strict=True)):
        name = f"gradcam/{number:03d}.png"
        Image.fromarray(overlay(pixels[number], cam)).save(out / name)
        items.append({"file": name, "path": str(scored.examples[i].path),
                      "true_name": predictor.breeds[scored.truth[i]].name,
                      "target_name": predictor.breeds[target].name,
                      "probability": float(scored.breed_probs[i, target]),
                      "correct": bool(target == scored.truth[i])})
    return items


def overlay(pixels: np.ndarray, cam: np.ndarray) -> np.ndarray:
    """The photo and the photo under a colour-mapped heatmap, side by side (S, 2S, 3) uint8."""
    heat = matplotlib.colormaps["jet"](cam)[..., :3]
    blended = (1 - GRADCAM_ALPHA) * pixels / 255.0 + GRADCAM_ALPHA * heat
    return np.concatenate([pixels, np.clip(blended * 255, 0, 255).astype(np.uint8)], axis=1)


# --- HTML -----------------------------------------------------------------------------------

_STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; max-width: 1100px; margin: 2em auto;
       padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { padding: 0.25em 0.7em; border-bottom: 1px solid #eee; text-align: left; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
.grid { display: flex; flex-wrap: wrap; gap: 12px; }
figure { margin: 0; width: 170px; font-size: 0.85em; }
figure.wide { width: 460px; }
figure img { display: block; max-width: 100%; border-radius: 4px; }
.muted { color: #666; } .wrong { color: #b00; } .right { color: #070; }
"""


def _e(value: object) -> str:
    return html.escape(str(value))


def _pct(value: float) -> str:
    return f"{value:.1%}"


def _summary(m: dict) -> str:
    rows = [("Photos evaluated", m["count"]), ("Top-1 accuracy", _pct(m["top1"])),
            ("Top-5 accuracy", _pct(m["top5"])),
            ("Restricted top-1 (argmax over the data's breeds only)", _pct(m["restricted_top1"])),
            ("Macro F1 (over the data's breeds)", f"{m['macro_f1']:.3f}"),
            ("Expected calibration error (15 bins)", f"{m['ece']:.3f}"),
            ("Misclassified", m["misclassified"]),
            ("Unknown to the model (excluded)", m["unknown_to_model"]),
            ("Unreadable photos (skipped)", m["unreadable"])]
    body = "".join(f"<tr><th>{_e(k)}</th><td class=n>{_e(v)}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _per_breed_table(m: dict) -> str:
    head = ("<tr><th>breed</th><th class=n>precision</th><th class=n>recall</th>"
            "<th class=n>F1</th><th class=n>support</th></tr>")
    rows = "".join(f"<tr><td>{_e(r['name'])} <span class=muted>{_e(label)}</span></td>"
                   f"<td class=n>{r['precision']:.3f}</td><td class=n>{r['recall']:.3f}</td>"
                   f"<td class=n>{r['f1']:.3f}</td><td class=n>{r['support']}</td></tr>"
                   for label, r in m["per_breed"].items())
    return f"<table>{head}{rows}</table>"


def _pairs_table(m: dict) -> str:
    if not m["most_confused"]:
        return "<p>No photo was misclassified.</p>"
    rows = "".join(f"<tr><td>{_e(p['true_name'])}</td><td>{_e(p['predicted_name'])}</td>"
                   f"<td class=n>{p['count']}</td></tr>" for p in m["most_confused"])
    return ("<table><tr><th>true breed</th><th>taken for</th><th class=n>photos</th></tr>"
            f"{rows}</table>")


def _gallery(m: dict) -> str:
    if not m["gallery"]:
        return "<p>No photo was misclassified.</p>"
    figures = []
    for item in m["gallery"]:
        guesses = "<br>".join(f"{_e(g['name'])} {_pct(g['probability'])}"
                              for g in item["guesses"])
        figures.append(f"<figure><img src=\"{_e(item['file'])}\" alt=\"\" loading=lazy>"
                       f"<figcaption><b>{_e(item['true_name'])}</b><br>"
                       f"<span class=wrong>{guesses}</span></figcaption></figure>")
    shown = (f"<p class=muted>The {len(figures)} most confident of {m['misclassified']} "
             "mistakes: true breed in bold, then the model's top 3.</p>")
    return shown + f"<div class=grid>{''.join(figures)}</div>"


def _gradcam(m: dict) -> str:
    if not m["gradcam"]:
        return "<p>None requested.</p>"
    figures = "".join(
        f"<figure class=wide><img src=\"{_e(g['file'])}\" alt=\"\" loading=lazy><figcaption>"
        f"true: <b>{_e(g['true_name'])}</b>; top guess: "
        f"<span class={'right' if g['correct'] else 'wrong'}>{_e(g['target_name'])} "
        f"{_pct(g['probability'])}</span></figcaption></figure>" for g in m["gradcam"])
    return ("<p class=muted>Left the photo as the model sees it, right where the model looked "
            "for its top guess (red: most).</p>" f"<div class=grid>{figures}</div>")


def _excluded(m: dict) -> str:
    parts = []
    if m["unknown_labels"]:
        items = ", ".join(f"{_e(k)} ({v})" for k, v in m["unknown_labels"].items())
        parts.append(f"<p>Unknown to the model (not counted in accuracy): {items}</p>")
    if m["unreadable_photos"]:
        items = "".join(f"<li>{_e(u['path'])}: {_e(u['reason'])}</li>"
                        for u in m["unreadable_photos"][:50])
        parts.append(f"<p>Unreadable photos, skipped:</p><ul>{items}</ul>")
    return "".join(parts) or "<p>None: every photo was evaluated.</p>"


def render_html(m: dict) -> str:
    """The report page; it refers only to the PNG, JPEG and CSV files beside it."""
    return f"""<!doctype html>
<html lang=en><head><meta charset=utf-8>
<meta name=viewport content="width=device-width, initial-scale=1">
<title>WhatBreed report: {_e(m['model'])}</title><style>{_STYLE}</style></head><body>
<h1>WhatBreed evaluation report</h1>
<p><b>{_e(m['model'])}</b>: {_e(m['description'])} (its own figures; this report's are
below)<br>
<span class=muted>data: {_e(m['data'])}, split: {_e(m['split'] or 'all')}</span></p>
<h2>Summary</h2>{_summary(m)}
<p class=muted>Top-1, top-5, F1 and calibration use all the model's breeds; restricted top-1
and the confusion matrix take the best guess among the breeds present in the data only.
Details in <a href="metrics.json">metrics.json</a>.</p>
<h2>Per breed</h2>{_per_breed_table(m)}
<h2>Confusion matrix</h2>
<p class=muted>Rows: true breed; columns: the best guess among the breeds in the data.
<a href="confusion.csv">confusion.csv</a></p>
<img src="confusion.png" alt="confusion matrix" style="max-width:100%">
<h2>Most-confused breeds</h2>{_pairs_table(m)}
<h2>Calibration</h2>
<p>Expected calibration error {m['ece']:.3f}: the gap between how sure the model is of its
top guess and how often that guess is right, averaged over 15 confidence bins.</p>
<img src="reliability.png" alt="reliability plot">
<h2>Misclassified photos</h2>{_gallery(m)}
<h2>Grad-CAM</h2>{_gradcam(m)}
<h2>Excluded photos</h2>{_excluded(m)}
</body></html>
"""
