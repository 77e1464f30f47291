"""Measuring ways of training on cached features: which keeps every breed, and how a new breed
is learnt. Top-1 on each photo's clean view (scripts/evaluate.py gives the served figures,
with the mirror image)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np

from model import POOLING
from model.data.dataset import Example
from model.training.retrain import score
from model.training.train import Base, TrainConfig, imagenet_base, train_base

SETTINGS = {  # a row's name (scripts/train.py's flags for it): the config changes they make
    "default (extend, distill 10, T 2)": {},
    "--distill-non-target": {"distill_non_target": True},
    "--distill-weight 3": {"distill_weight": 3.0},
    "--distill-weight 0 (plain)": {"distill_weight": 0.0},
    "--label-smoothing 0": {"label_smoothing": 0.0},
    "--only-data-breeds": {"extend": False},
}


def trained(config: TrainConfig, base: Base | None, train: list[Example], val: list[Example],
            features: dict[str, np.ndarray], backbone_params: dict) -> Base:
    with tempfile.TemporaryDirectory() as logs:
        return train_base(config, base, train, val, features, backbone_params, Path(logs))


def compare_settings(config: TrainConfig, splits: dict[str, list[Example]],
                     sets: dict[str, list[Example]], features: dict[str, np.ndarray],
                     backbone_params: dict) -> Iterator[tuple[str, dict[str, tuple]]]:
    """(row name, {set: (top-1, restricted top-1 or None)}) for the zero-training model, then
    a head trained on ``splits`` with each of ``SETTINGS``. Restricted top-1 (the best of the
    data's breeds) is given for sets whose breeds are all in the data."""
    data_breeds = {e.label for e in splits["train"]}
    zero = imagenet_base(backbone_params, POOLING[config.variant])

    def row(model: Base) -> dict[str, tuple]:
        return {name: (score(model, photos, features).top1,
                       score(model, photos, features, data_breeds).top1
                       if {e.label for e in photos} <= data_breeds else None)
                for name, photos in sets.items()}

    yield "zero-training", row(zero)
    for name, changes in SETTINGS.items():
        setting = replace(config, **changes)
        yield name, row(trained(setting, zero if setting.extend else None, splits["train"],
                                splits["val"], features, backbone_params))


def learn_back(config: TrainConfig, splits: dict[str, list[Example]], breed: str,
               counts: list[int], features: dict[str, np.ndarray], backbone_params: dict
               ) -> Iterator[tuple[str, float, float]]:
    """(row name, the breed's recall on val, top-1 on the other breeds' val photos): the
    zero-training model, the base without ``breed``'s row, the usual training knowing it, and
    the breed learnt back as a new one from each of ``counts`` photos."""
    zero = imagenet_base(backbone_params, POOLING[config.variant])
    base = imagenet_base(backbone_params, POOLING[config.variant], (breed,))
    val_breed = [e for e in splits["val"] if e.label == breed]
    val_others = [e for e in splits["val"] if e.label != breed]
    photos = [e for e in splits["train"] if e.label == breed]
    others = [e for e in splits["train"] if e.label != breed]

    def measured(name: str, model: Base) -> tuple[str, float, float]:
        return (name, score(model, val_breed, features).top1,
                score(model, val_others, features).top1)

    yield measured("zero-training, knowing it", zero)
    yield measured("base without it", base)
    yield measured(f"trained, knowing it, all {len(photos)}",
                   trained(config, zero, splits["train"], splits["val"], features,
                           backbone_params))
    for count in counts:
        yield measured(f"learnt back from {min(count, len(photos))}",
                       trained(config, base, others + photos[:count], splits["val"], features,
                               backbone_params))
