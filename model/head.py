"""The trained part: a small Flax head on the frozen backbone's pooled features, and where its
rows start: ImageNet's own rows for the breeds ImageNet knows, imprinted rows for new ones."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

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


# ImageNet's classifier reads dog-pooled features (``model.localize.dog_pooled``) with about
# twice the confidence it has on the plain mean it was fitted on; its logits divided by this,
# Lite2's answers are about as often "a mix", and as often right when sure, as before (README,
# "Looking closer").
TEMPERATURE = {"mean": 1.0, "dog": 2.0}


def imagenet_rows(labels: Sequence[str], backbone_params: dict, pooling: str
                  ) -> dict[str, np.ndarray]:
    """The backbone's ImageNet classifier restricted to ``labels`` (WordNet ids it knows), for
    features pooled as ``pooling`` says: {"kernel": (1280, L), "bias": (L,)}. Over ImageNet's
    breeds this is the zero-training model."""
    index = {c.wnid: c.index for c in imagenet_classes()}
    columns = [index[label] for label in labels]
    imagenet = backbone_params["params"]["classifier"]
    return {"kernel": np.asarray(imagenet["kernel"])[:, columns] / TEMPERATURE[pooling],
            "bias": np.asarray(imagenet["bias"])[columns] / TEMPERATURE[pooling]}


def prototype(features: np.ndarray) -> np.ndarray:
    """(N, 1280) features of one breed -> (1280,) unit mean of the unit feature vectors."""
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    mean = unit.mean(0)
    return mean / np.linalg.norm(mean)


def init_rows(params: dict, labels: Sequence[str], known: Mapping[str, np.ndarray],
              prototypes: Mapping[str, np.ndarray]) -> dict:
    """Start a linear head's classifier from rows it already has and imprint the new breeds.

    ``known`` maps labels to their (1281,) row (kernel column, then bias), e.g. ImageNet's
    (training then begins at the zero-training model, not at chance). A new breed's row is its
    feature ``prototype`` (imprinted weights, Qi et al. 2018) scaled to the known rows' mean
    norm (weight aligning, Zhao et al. 2020), with their mean bias, so it competes with them on
    equal terms from the first step. Heads with a hidden layer keep their random start.
    """
    if "hidden" in params or not known:
        return params
    kernel = np.array(params["classifier"]["kernel"])  # (1280, num_breeds)
    bias = np.array(params["classifier"]["bias"])
    rows = np.stack(list(known.values()))  # (K, 1281)
    norm, mean_bias = np.linalg.norm(rows[:, :-1], axis=1).mean(), rows[:, -1].mean()
    for column, label in enumerate(labels):
        if label in known:
            kernel[:, column], bias[column] = known[label][:-1], known[label][-1]
        elif label in prototypes:
            kernel[:, column], bias[column] = prototypes[label] * norm, mean_bias
    return params | {"classifier": {"kernel": kernel, "bias": bias}}


def rows_by_label(classifier: Mapping[str, np.ndarray], labels: Sequence[str]
                  ) -> dict[str, np.ndarray]:
    """{"kernel": (1280, L), "bias": (L,)} -> label -> (1281,) row, for ``init_rows``."""
    stacked = np.concatenate([np.asarray(classifier["kernel"]),
                              np.asarray(classifier["bias"])[None]])  # (1281, L)
    return {label: stacked[:, i] for i, label in enumerate(labels)}
