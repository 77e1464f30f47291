"""Numbers from predicted probabilities and true labels: accuracy, per-breed scores, confusions,
and the threshold sweeps of the zero-training model. Plain numpy in, plain numbers out.

``breed_probs`` is (M, N): M photos, N breeds of the model; ``truth`` and ``predicted`` are
(M,) indices into those breeds.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from model.labels import BREED_CLASSES, imagenet_classes

TOP_K = 5
MOST_CONFUSED = 10


# --- a breed model --------------------------------------------------------------------------

def accuracy(breed_probs: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """top-1 and top-5 over all the model's breeds; restricted top-1 over the data's breeds."""
    k = min(TOP_K, breed_probs.shape[1])
    top_k = np.argsort(-breed_probs, axis=1)[:, :k]
    present = np.unique(truth)
    restricted = present[breed_probs[:, present].argmax(1)]
    return {"top1": float((top_k[:, 0] == truth).mean()),
            "top5": float((top_k == truth[:, None]).any(1).mean()),
            "restricted_top1": float((restricted == truth).mean())}


def per_breed(truth: np.ndarray, predicted: np.ndarray, breeds: tuple) -> dict[str, dict]:
    """Precision, recall, F1 and support of each breed present in the data.

    A prediction of a breed absent from the data counts as a miss of the true breed but
    gives no absent breed a row: their precision would be 0 by construction.
    """
    present = np.unique(truth)
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predicted, labels=present, zero_division=0)
    return {breeds[b].label: {"name": breeds[b].name, "precision": float(p), "recall": float(r),
                              "f1": float(f), "support": int(s)}
            for b, p, r, f, s in zip(present, precision, recall, f1, support, strict=True)}


def restricted_confusion(breed_probs: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray,
                                                                              np.ndarray]:
    """Breeds present (sorted) and the confusion matrix over them (rows true, columns
    predicted), the prediction being the argmax over those breeds only."""
    present = np.unique(truth)
    restricted = present[breed_probs[:, present].argmax(1)]
    return present, confusion_matrix(truth, restricted, labels=present)


def most_confused(truth: np.ndarray, predicted: np.ndarray, breeds: tuple,
                  count: int = MOST_CONFUSED) -> list[dict]:
    """The largest off-diagonal counts (true breed -> predicted breed), ties by name."""
    pairs = Counter((int(t), int(p)) for t, p in zip(truth, predicted, strict=True) if t != p)
    ranked = sorted(pairs.items(), key=lambda item: (-item[1], breeds[item[0][0]].name,
                                                     breeds[item[0][1]].name))
    return [{"true_label": breeds[t].label, "true_name": breeds[t].name,
             "predicted_label": breeds[p].label, "predicted_name": breeds[p].name, "count": n}
            for (t, p), n in ranked[:count]]


# --- the backbone's ImageNet head -----------------------------------------------------------

def imagenet_accuracy(imagenet_probs: np.ndarray, wnids: list[str]) -> dict[str, float]:
    """Top-1 over all 1000 classes, and over the dog classes only (argmax among breeds)."""
    index = {c.wnid: c.index for c in imagenet_classes()}
    truth = np.array([index[w] for w in wnids])
    breeds = np.array(BREED_CLASSES)
    dog_top1 = breeds[imagenet_probs[:, breeds].argmax(1)]
    return {"count": len(wnids),
            "top1": float((imagenet_probs.argmax(1) == truth).mean()),
            "dog_top1": float((dog_top1 == truth).mean())}


def dog_threshold_sweep(dog_probs: np.ndarray, other_probs: np.ndarray,
                        thresholds: np.ndarray) -> list[dict[str, float]]:
    """For each threshold: share of dogs kept, share of non-dogs refused."""
    return [{"threshold": float(t),
             "dogs_kept": float((dog_probs >= t).mean()),
             "others_refused": float((other_probs < t).mean())} for t in thresholds]


def mix_threshold_sweep(breed_probs: np.ndarray, truth: np.ndarray,
                        thresholds: np.ndarray) -> list[dict[str, float]]:
    """For each threshold: share answered with one breed, and how often that breed is right;
    for the rest ("a mix"), how often the true breed is among the three named."""
    top1 = breed_probs.argmax(1)
    top3 = np.argsort(-breed_probs, 1)[:, :3]
    confident_p = breed_probs.max(1)
    rows = []
    for t in thresholds:
        sure = confident_p >= t
        rows.append({"threshold": float(t), "single_breed": float(sure.mean()),
                     "single_right": _mean(top1[sure] == truth[sure]),
                     "mix_has_truth": _mean((top3[~sure] == truth[~sure, None]).any(1))})
    return rows


def _mean(hits: np.ndarray) -> float:
    return float(hits.mean()) if hits.size else float("nan")
