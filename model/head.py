"""The trained part: a small Flax head on the frozen backbone's pooled features."""

from __future__ import annotations

import flax.linen as nn
import jax
import numpy as np

from model.labels import imagenet_classes


class BreedHead(nn.Module):
    """(B, 1280) features -> (B, num_breeds) logits; an optional hidden layer, dropout."""

    num_breeds: int
    hidden: int = 0
    dropout: float = 0.2

    @nn.compact
    def __call__(self, features: jax.Array, train: bool = False) -> jax.Array:
        x = nn.Dropout(self.dropout, deterministic=not train)(features)
        if self.hidden:
            x = nn.relu(nn.Dense(self.hidden, name="hidden")(x))
            x = nn.Dropout(self.dropout, deterministic=not train)(x)
        return nn.Dense(self.num_breeds, name="classifier")(x)


def init_from_imagenet(params: dict, labels: list[str], backbone_params: dict) -> dict:
    """Start each breed ImageNet knows from the backbone's own classifier row for it.

    Only for heads without a hidden layer, where the classifier sees the same features as
    ImageNet's: training then begins at the zero-training model's accuracy, not at chance.
    """
    if "hidden" in params:
        return params
    index = {c.wnid: c.index for c in imagenet_classes()}
    imagenet = backbone_params["params"]["classifier"]
    kernel = np.array(params["classifier"]["kernel"])  # (1280, num_breeds)
    bias = np.array(params["classifier"]["bias"])
    for column, label in enumerate(labels):
        if label in index:
            kernel[:, column] = np.asarray(imagenet["kernel"])[:, index[label]]
            bias[column] = np.asarray(imagenet["bias"])[index[label]]
    return params | {"classifier": {"kernel": kernel, "bias": bias}}
