"""Retraining from people's corrections: a candidate that extends the served model, measured
against it on photos neither has trained on, and promoted only when it is better.

1. The decided corrections (``model.data.corrections``) are split by their photo's sha256, so
   a photo is in the same split on every run, and its corrected dogs with it: 30% are held out
   for the comparison and never trained on, 20% are val (early stopping, calibration), the
   rest train.
2. The candidate extends the served model (its breeds, rows and answers are the ``Base``; new
   breeds get rows), trained on cached features like ``scripts/train.py``.
3. Both answer the held-out corrected photos and every check set (photos of other breeds that
   must not be forgotten) from the same cached features. The candidate is promoted when it is
   better on the corrected breeds and no check set drops by more than the tolerance.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from model import POOLING
from model.artifact import Artifact, ArtifactError, load_artifact
from model.data.dataset import Example
from model.efficientnet import from_pretrained, served_matmul
from model.files import replace_durably
from model.training.calibration import expected_calibration_error
from model.training.features import cached_features
from model.training.train import (
    Base,
    TrainConfig,
    imagenet_base,
    label_table,
    make_artifact,
    make_split,
    train_head,
)

log = logging.getLogger(__name__)

HELD_OUT_PERCENT, VAL_PERCENT = 30, 20


class RetrainError(ValueError):
    """Retraining cannot run (too few photos, a model it cannot extend); one line says why."""


def corrections_split(sha256: str) -> str:
    """"test" (held out), "val" or "train": fixed by the photo, the same on every run."""
    bucket = int(sha256[:8], 16) % 100
    return ("test" if bucket < HELD_OUT_PERCENT
            else "val" if bucket < HELD_OUT_PERCENT + VAL_PERCENT else "train")


@dataclass(frozen=True)
class ServedModel:
    version: str
    variant: str
    base: Base  # its breeds and linear rows: what a candidate extends and is compared with
    # The features its rows read: a candidate extends it and is compared with it on those, so
    # a file from before Lite2 pooled over the dog goes on with the mean (``POOLINGS``), and
    # one fitted on float32 features with those (``served_matmul``): as the bot serves it.
    pooling: str
    matmul: str


def served_model(model_path: Path, variant: str, matmul: str = "auto") -> ServedModel:
    """The model the bot serves, with ``matmul`` products (``MATMUL_SETTINGS``):
    ``model_path`` if it exists, else zero-training ``variant``."""
    if not model_path.exists():
        _, backbone_params = from_pretrained(variant)
        return ServedModel(f"efficientnet-{variant}-imagenet", variant,
                           imagenet_base(backbone_params, POOLING[variant]), POOLING[variant],
                           served_matmul(matmul))
    artifact = load_artifact(model_path)
    if artifact.head_config.get("hidden"):
        raise ArtifactError(f"{model_path} has a hidden layer: retraining extends linear heads")
    return ServedModel(artifact.version, artifact.variant,
                       Base(tuple(artifact.labels), artifact.head_params["classifier"]),
                       artifact.pooling, served_matmul(matmul, artifact.matmul))


@dataclass(frozen=True)
class Score:
    count: int
    top1: float
    ece: float
    per_breed: dict[str, tuple[int, int]]  # label -> (right, photos)


def score(base: Base, examples: list[Example], features: dict[str, np.ndarray],
          among: set[str] | None = None) -> Score:
    """Top-1 over all of ``base``'s breeds, or only those ``among`` (restricted top-1), on
    the clean view; a breed it does not know is wrong."""
    photos = [e for e in examples if e.key in features]
    if not photos:
        return Score(0, float("nan"), float("nan"), {})
    index = {b.label: i for i, b in enumerate(base.labels)}
    x = np.stack([features[e.key][0] for e in photos]).astype(np.float32)  # (N, 1280)
    logits = x @ np.asarray(base.classifier["kernel"]) + np.asarray(base.classifier["bias"])
    if among is not None:  # the other breeds cannot win
        logits = np.where([b.label in among for b in base.labels], logits, -np.inf)
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    truth = np.array([index.get(e.label, -1) for e in photos])
    right = probs.argmax(1) == truth
    labels = np.array([e.label for e in photos])
    per_breed = {label: (int(right[labels == label].sum()), int((labels == label).sum()))
                 for label in sorted(set(labels))}
    return Score(len(photos), float(right.mean()),
                 expected_calibration_error(probs.max(1), right), per_breed)


@dataclass(frozen=True)
class Comparison:
    name: str  # "corrected breeds (held out)" or a check set's name
    before: Score
    after: Score

    def row(self) -> dict:
        return {"name": self.name, "count": self.after.count, "before": self.before.top1,
                "after": self.after.top1, "ece_before": self.before.ece,
                "ece_after": self.after.ece}


@dataclass
class Candidate:
    artifact: Artifact
    comparisons: list[Comparison]  # the corrected breeds first, then each check set
    promote: bool
    why: str

    def figures(self) -> dict:
        return {"comparisons": [c.row() for c in self.comparisons], "why": self.why}


def train_candidate(config: TrainConfig, served: ServedModel, examples: list[Example],
                    checks: dict[str, list[Example]], cache_root: Path, logs: Path,
                    tolerance: float) -> Candidate:
    """Train a candidate on the corrected photos and compare it with the served model, on
    the features the bot serves it with (its pooling and products, which ``config`` records)."""
    config = replace(config, matmul=served.matmul)
    splits = {name: [e for e in examples if corrections_split(e.sha256) == name]
              for name in ("train", "val", "test")}
    if not splits["train"] or not splits["val"] or not splits["test"]:
        raise RetrainError(f"too few corrected photos to train and compare: {len(examples)} "
                           f"({', '.join(f'{k} {len(v)}' for k, v in splits.items())})")
    labels = label_table(examples, served.base.labels)
    index = {b.label: i for i, b in enumerate(labels)}
    features = cached_features(served.variant, config.seed, config.views, splits["train"],
                               {"held-out": splits["val"] + splits["test"], **checks},
                               cache_root, served.pooling, matmul=config.matmul)
    data = {name: make_split(photos, features, index, config.views if name == "train" else 0)
            for name, photos in splits.items()}
    _, backbone_params = from_pretrained(served.variant)
    state, metrics = train_head(config, labels, data, served.base, backbone_params, logs)
    artifact = make_artifact(config, labels, state, metrics, examples, served.pooling,
                             config.matmul)
    after = Base(tuple(labels), artifact.head_params["classifier"])
    comparisons = [Comparison(name, score(served.base, photos, features),
                              score(after, photos, features))
                   for name, photos in [("corrected breeds (held out)", splits["test"]),
                                        *checks.items()]]
    promote, why = judge(comparisons, tolerance)
    return Candidate(artifact, comparisons, promote, why)


def judge(comparisons: list[Comparison], tolerance: float) -> tuple[bool, str]:
    """Better on the corrected breeds, and no check set worse by more than ``tolerance``."""
    corrected, *checks = comparisons
    if not corrected.after.top1 > corrected.before.top1:
        return False, (f"not better on the corrected breeds ({corrected.after.top1:.3f} vs "
                       f"{corrected.before.top1:.3f} on {corrected.after.count} held-out photos)")
    for check in checks:
        if check.after.count and check.after.top1 < check.before.top1 - tolerance:
            return False, (f"worse on {check.name}: {check.after.top1:.3f} vs "
                           f"{check.before.top1:.3f} (tolerance {tolerance:.3f})")
    return True, (f"better on the corrected breeds ({corrected.before.top1:.3f} -> "
                  f"{corrected.after.top1:.3f} on {corrected.after.count} held-out photos), "
                  f"no check set worse by more than {tolerance:.3f}")


def promotion_record(candidate: Candidate, served: ServedModel, at: str) -> dict:
    """What the promoted file carries for /about and /stats (``Artifact.metrics["promotion"]``)."""
    corrected = candidate.comparisons[0]
    names = {b.label: b.name for b in candidate.artifact.labels}
    return {"at": at, "previous": served.version,
            "corrected_breeds": [names[label] for label in corrected.after.per_breed],
            "before": corrected.before.top1, "after": corrected.after.top1,
            "held_out": corrected.after.count}


def read_state(path: Path) -> dict:
    """The last round's state; unreadable (a crash while it was written long ago) counts as
    none, so the next round simply runs."""
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def write_state(path: Path, state: dict) -> None:
    replace_durably(path, (json.dumps(state) + "\n").encode())  # never half a file
