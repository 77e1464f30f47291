"""Grad-CAM: where in a photo a network found the evidence for a class (Selvaraju et al. 2017).

``model.predictor.Predictor.grad_cam`` applies it to the backbone's last feature map.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp


def grad_cam(feature_map: jax.Array, class_scores: Callable[[jax.Array], jax.Array],
             size: int) -> jax.Array:
    """Grad-CAM heatmaps (B, size, size) in [0, 1] from a (B, h, w, C) feature map.

    ``class_scores`` maps the feature map to each photo's (B,) score of its chosen class.
    Photos do not interact, so the gradient of the summed scores is each photo's own.
    """
    gradient = jax.grad(lambda fmap: class_scores(fmap).sum())(feature_map)
    weights = gradient.mean(axis=(1, 2))  # (B, C): how much each channel raises the score
    cam = jax.nn.relu(jnp.einsum("bhwc,bc->bhw", feature_map, weights))
    # Bilinear weights are non-negative, so the upsampled map stays >= 0.
    cam = jax.image.resize(cam, (cam.shape[0], size, size), "bilinear")
    peak = cam.max(axis=(1, 2), keepdims=True)
    # Only the shape of a map matters, not its scale: each is shown relative to its peak.
    return jnp.where(peak > 0, cam / jnp.where(peak > 0, peak, 1.0), 0.0)
