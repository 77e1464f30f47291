"""scripts/compare_training.py on a tiny real data set: every row, and a breed learnt back."""

import subprocess
import sys
from pathlib import Path

from model.evaluation.training_experiments import SETTINGS

REPO = Path(__file__).resolve().parents[1]


def compare(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "scripts" / "compare_training.py"),
                           *map(str, args)], cwd=REPO, capture_output=True, text=True,
                          timeout=600)


def test_every_setting_is_measured_on_every_set(tiny_dogs_dev: Path, tmp_path: Path) -> None:
    result = compare("--data", tiny_dogs_dev, "--check", tiny_dogs_dev, "--cache",
                     tmp_path / "cache")
    assert result.returncode == 0, result.stderr[-2000:]
    header, *rows = result.stdout.splitlines()
    assert "data val (9)" in header and "data (27)" in header
    names = [row[:36].strip() for row in rows]
    assert names == ["zero-training", *SETTINGS]
    cells = {row[:36].strip(): row[36:].split() for row in rows}
    # Both sets hold only the data's breeds, so each cell is "top-1 / restricted top-1".
    assert all(len(c) == 6 and c[1] == c[4] == "/" for c in cells.values())
    only = cells["--only-data-breeds"]
    assert only[0] == only[2]  # a head over the data's breeds alone: restricted is all there is


def test_a_dropped_breed_is_learnt_back(tiny_dogs_dev: Path, tmp_path: Path) -> None:
    result = compare("--data", tiny_dogs_dev, "--learn-back", "n02111889", "--photos", 3, 6,
                     "--cache", tmp_path / "cache")
    assert result.returncode == 0, result.stderr[-2000:]
    rows = {line[:42].strip(): line[42:].split() for line in result.stdout.splitlines()[1:]}
    assert list(rows) == ["zero-training, knowing it", "base without it",
                          "trained, knowing it, all 6", "learnt back from 3",
                          "learnt back from 6"]
    assert rows["base without it"][0] == "0.000"  # it cannot name a breed it does not know
    assert float(rows["learnt back from 6"][0]) >= 2 / 3  # its 3 val photos, mostly found
    missing = compare("--data", tiny_dogs_dev, "--learn-back", "n02099601")
    assert missing.returncode == 2 and "no training photos of n02099601" in missing.stderr
