"""model.gradcam.grad_cam on a hand-made feature map; the real model's heatmaps are tested with
``Predictor.grad_cam`` in test_predictor.py."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from model.gradcam import grad_cam


def test_grad_cam_points_at_what_raises_the_score() -> None:
    # Channel 0 is on at one place only; the score is that channel's mean minus channel 1's.
    fmap = np.zeros((2, 4, 4, 3), np.float32)
    fmap[:, 1, 2, 0] = 5.0
    fmap[:, :, :, 1] = 1.0  # everywhere, but it lowers the score: ReLU must drop it
    fmap[1] *= 0  # a photo with nothing that raises the score
    cam = np.asarray(grad_cam(jnp.asarray(fmap),
                              lambda m: m[..., 0].mean((1, 2)) - m[..., 1].mean((1, 2)), 32))
    assert cam.shape == (2, 32, 32)
    assert cam.min() >= 0 and cam.max() == pytest.approx(1)
    peak = np.unravel_index(cam[0].argmax(), cam[0].shape)
    assert (peak[0] // 8, peak[1] // 8) == (1, 2)  # the 4×4 cell that was on
    assert not cam[1].any()
