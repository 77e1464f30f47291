"""Tests for model.evaluation.report and scripts/evaluate.py: whole reports on a few real photos
(symlinked from ../shared/datasets, never copied) for the zero-training model and for a trained
head."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from model.artifact import Artifact, BreedLabel, save_artifact
from model.efficientnet import from_pretrained
from model.evaluation.report import build_report
from model.evaluation.scoring import load_data, select_examples
from model.head import imagenet_rows
from model.predictor import Predictor

REPO = Path(__file__).resolve().parents[1]
BREEDS = ("n02088364-beagle", "n02111889-Samoyed", "n02099601-golden_retriever")
PHOTOS_PER_BREED = 4
COUNT = len(BREEDS) * PHOTOS_PER_BREED


def run_evaluate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "scripts" / "evaluate.py"), *args],
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def dataset(shared_datasets: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Class folders: 4 real photos of each of 3 breeds, one photo of a breed no model knows
    ("jindo"), and one damaged file."""
    root = tmp_path_factory.mktemp("dogs")
    images = shared_datasets / "dogs-dev" / "Images"
    for breed in BREEDS:
        (root / breed).mkdir()
        for photo in sorted((images / breed).iterdir())[:PHOTOS_PER_BREED]:
            (root / breed / photo.name).symlink_to(photo)
    (root / "jindo").mkdir()
    (root / "jindo" / "a.jpg").symlink_to(sorted((images / BREEDS[0]).iterdir())[-1])
    (root / BREEDS[0] / "damaged.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return root


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    return Predictor("lite0", warm_up=False)


@pytest.fixture(scope="module")
def report(predictor: Predictor, dataset: Path,
           tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("report")
    examples = select_examples(load_data(dataset), "val")
    return out, build_report(predictor, examples, out, data_name=str(dataset), split="val",
                             gradcam=2, gallery=24)


# --- a whole report -------------------------------------------------------------------------

def test_metrics_are_consistent(report: tuple[Path, dict], predictor: Predictor) -> None:
    out, written = report
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics == json.loads(json.dumps(written))
    assert metrics["count"] == COUNT
    assert metrics["matmul"] == predictor.matmul  # the products the figures came from
    assert metrics["unknown_to_model"] == 1 and metrics["unknown_labels"] == {"jindo": 1}
    assert metrics["unreadable"] == 1
    assert 0 <= metrics["top1"] <= metrics["top5"] <= 1
    assert metrics["top1"] <= metrics["restricted_top1"] <= 1
    assert 0 <= metrics["macro_f1"] <= 1 and 0 <= metrics["ece"] <= 1
    assert sum(r["support"] for r in metrics["per_breed"].values()) == COUNT
    assert set(metrics["per_breed"]) == {b.split("-")[0] for b in BREEDS}
    assert sum(b["count"] for b in metrics["calibration_bins"]) == COUNT
    assert metrics["misclassified"] == round((1 - metrics["top1"]) * COUNT)
    for pair in metrics["most_confused"]:
        assert pair["true_name"] != pair["predicted_name"] and pair["count"] >= 1


def test_confusion_matrix_is_over_the_data_breeds(report: tuple[Path, dict]) -> None:
    """3×3 over the breeds in the data, with the argmax taken among them (restricted)."""
    out, metrics = report
    with open(out / "confusion.csv", newline="") as f:
        header, *rows = list(csv.reader(f))
    names = sorted(b.split("-", 1)[1].replace("_", " ") for b in BREEDS)
    assert sorted(header[1:]) == names and sorted(r[0] for r in rows) == names
    counts = np.array([[int(v) for v in r[1:]] for r in rows])
    assert counts.shape == (3, 3) and counts.sum() == COUNT
    assert np.trace(counts) == round(metrics["restricted_top1"] * COUNT)


def test_page_plots_gallery_and_gradcam(report: tuple[Path, dict]) -> None:
    out, metrics = report
    page = (out / "index.html").read_text()
    assert "Top-1" in page and "http" not in page.replace('href="metrics.json"', "")
    for png in ("confusion.png", "reliability.png",
                *(g["file"] for g in metrics["gradcam"])):
        with Image.open(out / png) as image:
            assert image.format == "PNG" and min(image.size) > 100
        assert png in page
    assert len(metrics["gradcam"]) == 2
    assert len(metrics["gallery"]) == metrics["misclassified"]
    for item in metrics["gallery"]:
        with Image.open(out / item["file"]) as thumbnail:
            assert max(thumbnail.size) == 160
        assert len(item["guesses"]) == 3 and item["file"] in page


def test_trained_head(predictor: Predictor, dataset: Path, tmp_path: Path) -> None:
    """A head on exactly the data's breeds (started from ImageNet's rows for them): restricted
    top-1 equals top-1, and Grad-CAM scores with the head's logits."""
    labels = [BreedLabel(*b.split("-", 1)) for b in BREEDS]
    head = {"classifier": imagenet_rows([b.label for b in labels], from_pretrained("lite0")[1],
                                        "mean")}
    path = tmp_path / "head.whatbreed"
    save_artifact(Artifact("lite0", labels, {"hidden": 0, "dropout": 0.2}, head,
                           created_at="2026-11-25T00:00:00"), path)
    trained = Predictor(str(path), warm_up=False, matmul=predictor.matmul)  # compared below
    examples = select_examples(load_data(dataset), "val")
    metrics = build_report(trained, examples, tmp_path / "report", gradcam=1, gallery=2)
    assert metrics["count"] == COUNT and metrics["top5"] == 1
    assert metrics["restricted_top1"] == metrics["top1"] >= 0.5
    with Image.open(tmp_path / "report" / metrics["gradcam"][0]["file"]) as image:
        assert image.size == (2 * trained.resolution, trained.resolution)
    # The head's logits are ImageNet's for these breeds, so its heatmaps are the zero-training
    # model's.
    pixels = np.stack(trained.decode([next((dataset / b).glob("n*.jpg")).read_bytes()
                                      for b in BREEDS]))
    imagenet_targets = [[b.label for b in predictor.breeds].index(label.label)
                        for label in labels]
    np.testing.assert_allclose(trained.grad_cam(pixels, np.arange(len(labels))),
                               predictor.grad_cam(pixels, np.array(imagenet_targets)),
                               atol=1e-4)


# --- the command line -----------------------------------------------------------------------

def test_cli_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    missing = run_evaluate("--data", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert missing.stderr.strip().splitlines() == [f"error: {tmp_path / 'nowhere'}: "
                                                    "no such file or folder"]
    (tmp_path / "breed").mkdir()
    (tmp_path / "breed" / "a.jpg").write_bytes(b"x")
    (tmp_path / "model.whatbreed").write_bytes(b"not a model")
    bad_model = run_evaluate("--data", str(tmp_path), "--model", str(tmp_path / "model.whatbreed"))
    assert bad_model.returncode == 2 and "Traceback" not in bad_model.stderr
    assert "is not a WhatBreed model file" in bad_model.stderr
