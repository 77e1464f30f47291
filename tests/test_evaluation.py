"""model.evaluation.scoring and .metrics: the backbone's ImageNet accuracy on the shared photos,
reported by the script and held here; scoring files that do not read; the metrics and the
threshold sweeps by hand."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from model.answers import Breed
from model.evaluation.metrics import (
    accuracy,
    dog_threshold_sweep,
    mix_threshold_sweep,
    most_confused,
    per_breed,
    restricted_confusion,
)
from model.evaluation.scoring import (
    load_data,
    score_every_file,
    score_files,
    select_examples,
)
from model.predictor import Predictor
from model.preprocess import ImageError

REPO = Path(__file__).resolve().parents[1]


def test_evaluate_backbone_reports_imagenet_top1(shared_datasets: Path) -> None:
    # Measured with all 3,764 val photos: 0.883 / 0.734 top-1 (dog top-1 0.883 / 0.747).
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "evaluate_backbone.py"), "--variants", "lite0",
         "--limit", "400", "--json"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    row = json.loads(result.stdout.splitlines()[-1])
    dogs_121, dogs_dev = row["imagenet-dogs-121"], row["dogs-dev val"]
    assert (dogs_121["count"], dogs_dev["count"]) == (111, 400)
    assert dogs_121["top1"] >= 0.86 and dogs_121["dog_top1"] >= 0.86
    assert dogs_dev["top1"] >= 0.70 and dogs_dev["dog_top1"] >= 0.70


def test_both_shared_layouts_are_evaluation_data(shared_datasets: Path) -> None:
    flat = select_examples(load_data(shared_datasets / "imagenet-dogs-121"), "val")
    assert len(flat) == 111  # named photos have no splits: all of them
    assert all(e.path.name.startswith(f"{e.label}-") for e in flat)
    assert flat[0].name == "Chihuahua" and flat[2].name == "Maltese dog"
    val = select_examples(load_data(shared_datasets / "dogs-dev"), "val", limit=50)
    assert len(val) == 50 and {e.split for e in val} == {"val"}
    assert len({e.label for e in val}) == 10  # every breed, by stride


def test_score_files_keeps_going_past_bad_files(shared_datasets: Path, tmp_path: Path) -> None:
    dog = shared_datasets / "imagenet-dogs-121" / "n02110958-pug.jpg"
    text = tmp_path / "notes.jpg"
    text.write_text("not a photo")
    paths = [dog, tmp_path / "missing.jpg", text, dog]
    predictor = Predictor(warm_up=False)
    scores = score_files(predictor, paths)
    assert scores.read == [0, 3]
    assert [i for i, _ in scores.unreadable] == [1, 2]
    assert "No such file" in scores.unreadable[0][1]
    assert scores.imagenet_probs.shape == (2, 1000)
    assert scores.breed_probs.shape == (2, len(predictor.breeds))
    assert scores.imagenet_probs[0].argmax() == 254  # pug
    with pytest.raises(ImageError, match="missing.jpg"):
        score_every_file(predictor, paths)


def test_breed_metrics_by_hand() -> None:
    breeds = tuple(Breed(f"b{i}", name) for i, name in enumerate(("akita", "beagle", "corgi")))
    # 0: a beagle, right; 1: a beagle taken for an akita (a breed absent from the data), but
    # beagle beats corgi; 2: a corgi taken for a beagle; 3: a corgi, right.
    probs = np.array([[0.1, 0.6, 0.3], [0.5, 0.3, 0.2], [0.1, 0.5, 0.4], [0.0, 0.1, 0.9]])
    truth, predicted = np.array([1, 1, 2, 2]), probs.argmax(1)
    assert accuracy(probs, truth) == {"top1": 0.5, "top5": 1.0, "restricted_top1": 0.75}
    present, counts = restricted_confusion(probs, truth)
    assert present.tolist() == [1, 2] and counts.tolist() == [[2, 0], [1, 1]]
    reports = per_breed(truth, predicted, breeds)
    assert list(reports) == ["b1", "b2"]  # no row for the akita: it is not in the data
    assert (reports["b1"]["precision"], reports["b1"]["recall"]) == (0.5, 0.5)
    assert (reports["b2"]["precision"], reports["b2"]["recall"]) == (1.0, 0.5)
    pairs = most_confused(truth, predicted, breeds)
    assert [(p["true_name"], p["predicted_name"], p["count"]) for p in pairs] == [
        ("beagle", "akita", 1), ("corgi", "beagle", 1)]  # equal counts: by name


def test_dog_threshold_sweep_by_hand() -> None:
    dogs, others = np.array([0.9, 0.5, 0.2]), np.array([0.1, 0.4])
    rows = dog_threshold_sweep(dogs, others, np.array([0.3, 0.45]))
    assert rows == [
        {"threshold": 0.3, "dogs_kept": pytest.approx(2 / 3), "others_refused": 0.5},
        {"threshold": 0.45, "dogs_kept": pytest.approx(2 / 3), "others_refused": 1.0}]


def test_mix_threshold_sweep_by_hand() -> None:
    # Photo 0: sure and right; 1: sure and wrong; 2: unsure, truth second; 3: unsure, truth 4th.
    probs = np.array([[0.8, 0.1, 0.05, 0.05], [0.7, 0.2, 0.05, 0.05],
                      [0.4, 0.35, 0.15, 0.1], [0.4, 0.3, 0.2, 0.1]])
    truth = np.array([0, 1, 1, 3])
    [row] = mix_threshold_sweep(probs, truth, np.array([0.5]))
    assert row == {"threshold": 0.5, "single_breed": 0.5, "single_right": 0.5,
                   "mix_has_truth": 0.5}
