"""Backbone features cached on disk, one file a photo (or a dog in it), and their deletion.

Light on purpose (no JAX): the bot deletes a forgotten photo's features with it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from model import MATMULS, POOLING
from model.preprocess import PREPROCESS_VERSION


class FeatureCache:
    """``<root>/<variant>-p<preprocess>[-dog][-bf16]-s<seed>/<key[:2]>/<key>.npy``: (1 + views,
    1280) float16, by ``Example.key`` (a photo's sha256, or a dog's key beside it).

    The seed is in the key because it picks the augmented views.
    """

    def __init__(self, root: Path, variant: str, seed: int = 0, pooling: str | None = None,
                 matmul: str = "float32"):
        """``pooling``: how the features were pooled, None: as ``variant``'s are now;
        ``matmul``: the backbone's 1×1 products that computed them (``MATMULS``)."""
        if matmul not in MATMULS:
            raise ValueError(f"matmul must be one of {MATMULS}, not {matmul!r}")
        pooled = "-dog" if (pooling or POOLING.get(variant)) == "dog" else ""
        rounded = "-bf16" if matmul == "bfloat16" else ""
        self.folder = root / f"{variant}-p{PREPROCESS_VERSION}{pooled}{rounded}-s{seed}"

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.npy"

    def get(self, key: str, views: int) -> np.ndarray | None:
        path = self._path(key)
        if not path.exists():
            return None
        features = np.load(path)
        return features[: 1 + views] if len(features) > views else None

    def put(self, key: str, features: np.ndarray) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp.npy")
        np.save(temporary, features.astype(np.float16))
        temporary.replace(path)  # atomic: an interrupted run never leaves half a file


def forget_features(root: Path, sha256s: Iterable[str]) -> int:
    """Delete every cached feature of these photos under ``root``: the photo's own and its
    dogs', for any variant, pooling, products, seed and preprocessing. Returns how many files
    went."""
    files = [path for sha256 in sha256s
             for path in root.glob(f"*/{sha256[:2]}/{sha256}*.npy")]
    for path in files:
        path.unlink(missing_ok=True)
    return len(files)
