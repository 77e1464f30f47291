"""Training-time views of a photo, in JAX: random resized crop, flip, small rotation, colour.

All geometric changes are one affine map per image, sampled once with bilinear
interpolation, so a view costs a single pass over the pixels.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

SOURCE_SCALE = 1.15  # photos are decoded a little larger than the model input, for crops
SCALE = (0.35, 1.0)  # fraction of the source area a random crop keeps
RATIO = (3 / 4, 4 / 3)
MAX_ROTATION_DEG = 12.0
JITTER = 0.25  # brightness, contrast and saturation vary by up to ±25%


def source_size(resolution: int) -> int:
    return round(resolution * SOURCE_SCALE)


def _affine(key: jax.Array, size: int) -> jax.Array:
    """A (2, 3) map from output pixel (y, x, 1) to source pixel coordinates."""
    k_area, k_ratio, k_pos, k_rot, k_flip = jax.random.split(key, 5)
    area = jax.random.uniform(k_area, (), minval=SCALE[0], maxval=SCALE[1])
    log_ratio = jax.random.uniform(k_ratio, (), minval=jnp.log(RATIO[0]),
                                   maxval=jnp.log(RATIO[1]))
    height = jnp.clip(jnp.sqrt(area / jnp.exp(log_ratio)), 0, 1)  # fractions of the source
    width = jnp.clip(jnp.sqrt(area * jnp.exp(log_ratio)), 0, 1)
    top, left = jax.random.uniform(k_pos, (2,)) * jnp.array([1 - height, 1 - width])
    angle = jnp.deg2rad(jax.random.uniform(k_rot, (), minval=-MAX_ROTATION_DEG,
                                           maxval=MAX_ROTATION_DEG))
    flip = jnp.where(jax.random.bernoulli(k_flip), -1.0, 1.0)
    cos, sin = jnp.cos(angle), jnp.sin(angle)
    # Output pixel -> centred unit square -> rotate, flip, scale -> crop centre in the source.
    scale = jnp.array([height, width]) * size
    linear = jnp.array([[cos, -sin], [sin, cos]]) @ jnp.diag(jnp.array([1.0, flip]))
    linear = jnp.diag(scale) @ linear / size
    centre = jnp.array([top + height / 2, left + width / 2]) * size
    offset = centre - linear @ jnp.array([size / 2, size / 2])
    return jnp.concatenate([linear, offset[:, None]], axis=1)


def _colour(key: jax.Array, image: jax.Array) -> jax.Array:
    """Brightness, contrast and saturation jitter on 0–255 RGB."""
    brightness, contrast, saturation = 1 + jax.random.uniform(
        key, (3,), minval=-JITTER, maxval=JITTER)
    grey = image.mean(-1, keepdims=True)
    image = grey + (image - grey) * saturation
    image = image.mean() + (image - image.mean()) * contrast
    return jnp.clip(image * brightness, 0, 255)


def random_view(key: jax.Array, source: jax.Array, resolution: int) -> jax.Array:
    """One augmented view: source (S', S', 3) uint8 -> (R, R, 3) float 0–255."""
    k_geometry, k_colour = jax.random.split(key)
    size = source.shape[0]
    affine = _affine(k_geometry, size)
    ys, xs = jnp.meshgrid(jnp.arange(resolution) * size / resolution,
                          jnp.arange(resolution) * size / resolution, indexing="ij")
    points = jnp.stack([ys.ravel(), xs.ravel(), jnp.ones(ys.size)])  # (3, R*R)
    coords = affine @ points  # (2, R*R) in source pixels
    channels = [jax.scipy.ndimage.map_coordinates(source[..., c].astype(jnp.float32), coords,
                                                  order=1, mode="nearest")
                for c in range(3)]
    image = jnp.stack(channels, -1).reshape(resolution, resolution, 3)
    return _colour(k_colour, image)


def random_views(keys: jax.Array, sources: jax.Array, resolution: int) -> jax.Array:
    """(B,) keys and (B, S', S', 3) uint8 -> (B, R, R, 3) float: a random view of each photo."""
    return jax.vmap(random_view, in_axes=(0, 0, None))(keys, sources, resolution)

