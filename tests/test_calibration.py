"""Calibration error by hand, and a temperature fit that recovers a known temperature."""

from __future__ import annotations

import numpy as np
import pytest

from model.training.calibration import calibration_bins, expected_calibration_error, fit_temperature


def test_ece_is_zero_when_confidence_matches_accuracy() -> None:
    # 8 of 10 photos right at confidence 0.8, 1 of 4 right at 0.25: perfectly calibrated.
    confidence = np.array([0.8] * 10 + [0.25] * 4)
    correct = np.array([True] * 8 + [False] * 2 + [True] + [False] * 3)
    assert expected_calibration_error(confidence, correct) == pytest.approx(0, abs=1e-9)


def test_ece_of_an_overconfident_model() -> None:
    # Sure at 0.95 but right half the time (gap 0.45), and at 0.6 but never right (gap 0.6):
    # ECE = 0.5 * 0.45 + 0.5 * 0.6.
    confidence = np.array([0.95] * 4 + [0.6] * 4)
    correct = np.array([True, False, True, False] + [False] * 4)
    assert expected_calibration_error(confidence, correct) == pytest.approx(0.525)


def test_calibration_bins_are_equal_width_and_hold_every_photo() -> None:
    confidence = np.array([0.01, 0.5, 1 / 15, 0.999, 1.0])
    bins = calibration_bins(confidence, np.ones(5, bool))
    assert len(bins) == 15 and bins[0]["lower"] == 0 and bins[-1]["upper"] == 1
    assert sum(b["count"] for b in bins) == 5
    assert bins[0]["count"] == 2  # (0, 1/15] holds 0.01 and 1/15 itself
    assert bins[-1]["count"] == 2 and bins[7]["count"] == 1


def test_fit_temperature_recovers_the_temperature_the_labels_were_drawn_at() -> None:
    # Labels drawn from softmax(logits / 2.5): the logits are 2.5× too sure, and the fit must
    # say so; the calibrated confidences then match accuracy.
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 4, (20000, 10))
    true_probs = np.exp(logits / 2.5)
    true_probs /= true_probs.sum(1, keepdims=True)
    labels = np.array([rng.choice(10, p=p) for p in true_probs])
    temperature = fit_temperature(logits, labels)
    assert temperature == pytest.approx(2.5, rel=0.05)

    def ece(t: float) -> float:
        probs = np.exp(logits / t - (logits / t).max(1, keepdims=True))
        probs /= probs.sum(1, keepdims=True)
        return expected_calibration_error(probs.max(1), probs.argmax(1) == labels)

    assert ece(temperature) < 0.02 < ece(1.0)
