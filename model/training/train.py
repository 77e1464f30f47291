"""Training the breed head on cached backbone features, data-parallel over local devices.

A trained model extends the one it starts from, never shrinks it: by default it answers over
every breed of the zero-training model (ImageNet's 121) plus every new breed in the data. The
old rows start from ImageNet's and keep its answers on every training photo by distillation
(Learning without Forgetting, Li & Hoiem 2016); new rows start imprinted from their photos.

Reads top to bottom: the config, the batches, one jitted train step, evaluation, the loop
(early stopping, checkpoints, curves), and ``train_and_export`` that ties them together.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import serialization, struct
from flax.training import train_state
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from tensorboardX import SummaryWriter
from tqdm import tqdm

from model import DEFAULT_VARIANT, POOLING
from model.artifact import Artifact, BreedLabel, code_version, save_artifact
from model.data.dataset import Example
from model.efficientnet import from_pretrained, served_matmul
from model.head import BreedHead, imagenet_rows, init_rows, prototype, rows_by_label
from model.labels import BREED_CLASSES, imagenet_classes
from model.training.baseline import SmallCNN, load_pixels
from model.training.calibration import expected_calibration_error, fit_temperature
from model.training.features import cached_features

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    variant: str = DEFAULT_VARIANT
    views: int = 2  # augmented views per training photo, besides the clean one
    hidden: int = 0  # 0: a linear head (initialised from ImageNet's classifier)
    dropout: float = 0.2
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    label_smoothing: float = 0.1
    batch_size: int = 256
    epochs: int = 40
    warmup_epochs: int = 2
    patience: int = 6  # epochs without a better val top-1 before stopping
    balance: bool = True  # weight classes inversely to their photo counts
    seed: int = 0
    extend: bool = True  # answer over the base model's breeds too, not the data's alone
    distill_weight: float = 10.0  # how strongly the base breeds keep the base model's answers
    distill_temperature: float = 2.0  # softens both answers, so the runners-up count too
    distill_non_target: bool = False  # distil only the other breeds: learns more, forgets more
    # The backbone's 1×1 products for the features (MATMUL_SETTINGS); "auto": those the bot
    # will serve the head with on this machine (``served_matmul``).
    matmul: str = "auto"


# Data


@dataclass
class Split:
    features: np.ndarray  # (N, 1280) float32; for the baseline CNN, (N, 96, 96, 3) uint8
    labels: np.ndarray  # (N,) int32


@dataclass(frozen=True)
class Base:
    """The model a trained head extends: its breeds, and their linear rows, which training keeps
    answering as before (the distillation teacher)."""

    labels: tuple[BreedLabel, ...]
    classifier: dict  # {"kernel": (1280, L), "bias": (L,)}


def imagenet_base(backbone_params: dict, pooling: str, exclude: tuple[str, ...] = ()) -> Base:
    """The zero-training model: ImageNet's dog breeds (less ``exclude``) and their rows, for
    features pooled as ``pooling`` says."""
    classes = imagenet_classes()
    labels = tuple(BreedLabel(classes[i].wnid, classes[i].name, classes[i].names[1:])
                   for i in BREED_CLASSES if classes[i].wnid not in exclude)
    return Base(labels, imagenet_rows([b.label for b in labels], backbone_params, pooling))


def label_table(examples: list[Example], base: tuple[BreedLabel, ...] = ()) -> list[BreedLabel]:
    """The base's labels first (the teacher's columns), then the data's others, sorted;
    ImageNet's synonyms become aliases."""
    names = {e.label: e.name for e in examples}
    synonyms = {c.wnid: c.names[1:] for c in imagenet_classes()}
    known = {b.label for b in base}
    return [*base, *(BreedLabel(label, names[label], tuple(synonyms.get(label, ())))
                     for label in sorted(names) if label not in known)]


def make_split(examples: list[Example], features: dict[str, np.ndarray],
               index: dict[str, int], views: int) -> Split:
    """Stack the cached views of each readable example: clean view first, then augmented."""
    rows, labels = [], []
    for example in examples:
        if example.key in features:
            stacked = features[example.key][: 1 + views]
            rows.append(stacked)
            labels += [index[example.label]] * len(stacked)
    return Split(np.concatenate(rows).astype(np.float32), np.array(labels, np.int32))


def class_weights(labels: np.ndarray, num_classes: int, balance: bool) -> np.ndarray:
    counts = np.bincount(labels, minlength=num_classes).astype(np.float32)
    if not balance:
        return np.ones(num_classes, np.float32)
    return np.where(counts > 0, counts.sum() / (num_classes * np.maximum(counts, 1)), 0)


def batches(split: Split, batch_size: int, rng: np.random.Generator | None):
    """Fixed-size batches (the last one padded with weight 0), shuffled when rng is given."""
    order = rng.permutation(len(split.labels)) if rng is not None else np.arange(len(split.labels))
    for start in range(0, len(order), batch_size):
        chosen = order[start : start + batch_size]
        pad = batch_size - len(chosen)
        features = split.features[chosen]
        yield {"features": np.pad(features, [(0, pad)] + [(0, 0)] * (features.ndim - 1)),
               "label": np.pad(split.labels[chosen], (0, pad)),
               "mask": np.pad(np.ones(len(chosen), np.float32), (0, pad))}


# The step


class TrainState(train_state.TrainState):
    dropout_key: jax.Array  # a raw uint32 key, so checkpoints serialise it
    class_weights: jax.Array  # (num_breeds,)
    teacher: dict | None = None  # the base's rows, {"kernel": (1280, L), "bias": (L,)}; frozen
    label_smoothing: float = struct.field(pytree_node=False, default=0.0)
    distill_weight: float = struct.field(pytree_node=False, default=0.0)
    distill_temperature: float = struct.field(pytree_node=False, default=1.0)
    distill_non_target: bool = struct.field(pytree_node=False, default=False)


def distillation_loss(logits: jax.Array, features: jax.Array, teacher: dict,
                      temperature: float, label: jax.Array | None = None) -> jax.Array:
    """(B,) KL divergence from the teacher's softened answer on the same features to the first
    L logits', times T² so its gradients keep their scale (Hinton et al. 2015); 0 when the
    student answers as the teacher does.

    With ``label``, both answers leave the photo's own breed out (non-target distillation,
    as in Zhao et al. 2022): the label decides that breed, and the teacher keeps how the
    others rank, so a correction can overrule the teacher without the rest being forgotten.
    """
    old = logits[:, : teacher["bias"].shape[0]]  # (B, L): the base's breeds come first
    taught = features @ teacher["kernel"] + teacher["bias"]  # (B, L)
    if label is not None:
        own = jax.nn.one_hot(label, old.shape[-1], dtype=bool)  # all False for a new breed
        old, taught = jnp.where(own, -1e9, old), jnp.where(own, -1e9, taught)
    target = jax.nn.log_softmax(taught / temperature)
    kl = optax.losses.kl_divergence_with_log_targets(jax.nn.log_softmax(old / temperature),
                                                      target)
    return kl * temperature**2


def train_step(state: TrainState, batch: dict) -> tuple[TrainState, dict]:
    """One AdamW step on a batch of features; returns the new state and batch metrics."""
    dropout_key = jax.random.fold_in(state.dropout_key, state.step)

    def loss_fn(params):
        logits = state.apply_fn({"params": params}, batch["features"], train=True,
                                rngs={"dropout": dropout_key})  # (B, num_breeds)
        targets = optax.smooth_labels(jax.nn.one_hot(batch["label"], logits.shape[-1]),
                                      state.label_smoothing)
        weights = batch["mask"] * state.class_weights[batch["label"]]
        loss = (optax.softmax_cross_entropy(logits, targets) * weights).sum() / weights.sum()
        if state.teacher is not None:
            kept = distillation_loss(logits, batch["features"], state.teacher,
                                     state.distill_temperature,
                                     batch["label"] if state.distill_non_target else None)
            loss += state.distill_weight * (kept * batch["mask"]).sum() / batch["mask"].sum()
        return loss, logits

    (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    correct = (logits.argmax(-1) == batch["label"]) * batch["mask"]
    return state.apply_gradients(grads=grads), {"loss": loss,
                                                "accuracy": correct.sum() / batch["mask"].sum()}


def eval_logits(state: TrainState, features: jax.Array) -> jax.Array:
    return state.apply_fn({"params": state.params}, features, train=False)


EvalFn = Callable[[TrainState, jax.Array], jax.Array]  # eval_logits, jitted


# Evaluation


def split_logits(state: TrainState, split: Split, eval_fn: EvalFn,
                 batch_size: int) -> np.ndarray:
    """(N, num_breeds) logits of the model on a split's (clean) inputs."""
    return np.concatenate([np.asarray(eval_fn(state, b["features"]))[: int(b["mask"].sum())]
                           for b in batches(split, batch_size, None)])


def evaluate(state: TrainState, split: Split, eval_fn: EvalFn,
             batch_size: int) -> dict[str, float]:
    """Top-1, top-5, loss and expected calibration error on a split's (clean) inputs."""
    logits = split_logits(state, split, eval_fn, batch_size)
    top5 = np.argsort(-logits, 1)[:, :5]
    log_probs = np.asarray(jax.nn.log_softmax(logits))
    return {"top1": float((top5[:, 0] == split.labels).mean()),
            "top5": float((top5 == split.labels[:, None]).any(1).mean()),
            "loss": float(-np.take_along_axis(log_probs, split.labels[:, None], 1).mean()),
            "ece": expected_calibration_error(np.exp(log_probs.max(1)),
                                              top5[:, 0] == split.labels),
            "count": len(split.labels)}


def calibrate(state: TrainState, val: Split, eval_fn: EvalFn, batch_size: int,
              floor: float = 0.0) -> tuple[TrainState, float]:
    """Fold the temperature fitted on val into the classifier (logits / T); rankings stay.

    ``floor`` bounds T from below: 1 never sharpens, for a head whose val photos show only
    some of its breeds (fitted there, T < 1 would make it surer of every breed, the ones
    without photos too, where it is no more often right than before).
    """
    fitted = fit_temperature(split_logits(state, val, eval_fn, batch_size), val.labels)
    temperature = max(fitted, floor)
    classifier = {name: value / temperature
                  for name, value in state.params["classifier"].items()}
    return state.replace(params={**state.params, "classifier": classifier}), temperature


# The loop


def create_state(config: TrainConfig, model: nn.Module, sample: np.ndarray, steps: int,
                 weights: np.ndarray, init_params, teacher: dict | None = None) -> TrainState:
    """Params of ``model`` (the head, or the baseline CNN) with AdamW on a warm-up + cosine."""
    key = jax.random.key(config.seed)
    params = model.init(key, jnp.asarray(sample))["params"]
    warmup = max(1, steps * config.warmup_epochs // config.epochs)
    # The schedule's length includes the warm-up and must outlast it, even for --epochs 1.
    schedule = optax.warmup_cosine_decay_schedule(config.learning_rate / 10, config.learning_rate,
                                                  warmup, max(steps, warmup + 1))
    return TrainState.create(apply_fn=model.apply, params=init_params(params),
                             tx=optax.adamw(schedule, weight_decay=config.weight_decay),
                             dropout_key=jax.random.PRNGKey(config.seed + 1),
                             class_weights=jnp.asarray(weights),
                             teacher=jax.tree_util.tree_map(jnp.asarray, teacher),
                             label_smoothing=config.label_smoothing,
                             distill_weight=config.distill_weight,
                             distill_temperature=config.distill_temperature,
                             distill_non_target=config.distill_non_target)


def fit(config: TrainConfig, model: nn.Module, train: Split, val: Split, logs: Path,
        init_params=lambda p: p, teacher: dict | None = None) -> tuple[TrainState, list[dict]]:
    """Train ``model`` (inputs ``Split.features``, outputs ``model.num_breeds`` logits) with
    early stopping on val top-1, distilling ``teacher``'s answers into the first logits when
    given; resumes from ``logs/checkpoint.msgpack``."""
    mesh = Mesh(np.array(jax.devices()), ("data",))
    data_sharding = NamedSharding(mesh, PartitionSpec("data"))
    replicated = NamedSharding(mesh, PartitionSpec())
    if config.batch_size % len(jax.devices()):
        raise ValueError(f"batch size {config.batch_size} must divide over "
                         f"{len(jax.devices())} devices")
    steps_per_epoch = -(-len(train.labels) // config.batch_size)
    num_breeds = model.num_breeds
    weights = class_weights(train.labels, num_breeds, config.balance)
    state = create_state(config, model, train.features[:1], steps_per_epoch * config.epochs,
                         weights, init_params, teacher)
    best, history, start_epoch = state.params, [], 0
    checkpoint = logs / "checkpoint.msgpack"
    fingerprint = train.labels.tobytes() + val.labels.tobytes() + train.features[:, :4].tobytes()
    data_digest = hashlib.sha256(fingerprint).hexdigest()
    run_id = json.dumps([dataclasses.asdict(config), num_breeds, data_digest])
    saved = serialization.msgpack_restore(checkpoint.read_bytes()) if checkpoint.exists() else {}
    if saved.get("run") != run_id and saved:
        log.info("%s is from another configuration or data: starting afresh", checkpoint)
    elif saved:
        state = serialization.from_state_dict(state, saved["state"])
        best = serialization.from_state_dict(state.params, saved["best"])
        history, start_epoch = saved["history"], len(saved["history"])
        log.info("resuming from epoch %d (%s)", start_epoch, checkpoint)
    state = jax.device_put(state, replicated)
    step = jax.jit(train_step, donate_argnums=0)
    eval_fn = jax.jit(eval_logits)
    writer = SummaryWriter(str(logs))
    rng = np.random.default_rng(config.seed)
    for _ in range(start_epoch):  # replay the shuffles, so a resumed run matches a straight one
        rng.permutation(len(train.labels))
    for epoch in range(start_epoch, config.epochs):
        if _stale(history, config.patience):
            break
        metrics = []
        for batch in tqdm(batches(train, config.batch_size, rng), total=steps_per_epoch,
                          desc=f"epoch {epoch + 1}/{config.epochs}", leave=False):
            state, batch_metrics = step(state, jax.device_put(batch, data_sharding))
            metrics.append(batch_metrics)
        row = {"epoch": epoch + 1,
               "train_loss": float(np.mean([m["loss"] for m in metrics])),
               "train_top1": float(np.mean([m["accuracy"] for m in metrics])),
               **{f"val_{k}": v for k, v in evaluate(state, val, eval_fn,
                                                      config.batch_size).items()}}
        if not history or row["val_top1"] > max(h["val_top1"] for h in history):
            best = jax.device_get(state.params)  # a host copy: the step donates its buffers
        history.append(row)
        _log_epoch(writer, row)
        partial = checkpoint.with_suffix(".tmp")  # an interrupted write must not spoil resuming
        partial.write_bytes(serialization.msgpack_serialize({
            "state": serialization.to_state_dict(jax.device_get(state)),
            "best": serialization.to_state_dict(best), "history": history, "run": run_id}))
        partial.replace(checkpoint)
    writer.close()
    _write_curves(history, logs / "curves.csv")
    return state.replace(params=best), history


def _stale(history: list[dict], patience: int) -> bool:
    if len(history) <= patience:
        return False
    best_epoch = max(range(len(history)), key=lambda i: history[i]["val_top1"])
    return len(history) - 1 - best_epoch >= patience


def _log_epoch(writer: SummaryWriter, row: dict) -> None:
    for key, value in row.items():
        if key not in ("epoch", "val_count"):
            writer.add_scalar(key.replace("_", "/", 1), value, row["epoch"])
    writer.flush()
    log.info("epoch %d: train loss %.3f top-1 %.3f | val loss %.3f top-1 %.3f top-5 %.3f",
             row["epoch"], row["train_loss"], row["train_top1"], row["val_loss"],
             row["val_top1"], row["val_top5"])


def _write_curves(history: list[dict], path: Path) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, list(history[0]) if history else ["epoch"])
        writer.writeheader()
        writer.writerows(history)


# Tying it together


def zero_training_top1(data: dict[str, Split], labels: list[str],
                       backbone_params: dict) -> dict[str, float]:
    """The ImageNet head restricted to the trained breeds it knows, on the same photos.

    Its classifier is one Dense layer on the pooled features, so cached features suffice.
    Photos of breeds ImageNet lacks count as wrong.
    """
    imagenet = backbone_params["params"]["classifier"]
    index = {c.wnid: c.index for c in imagenet_classes()}
    known = [i for i, label in enumerate(labels) if label in index]
    if not known:  # only new breeds: the ImageNet head knows none of them
        return dict.fromkeys(data, 0.0)
    columns = [index[labels[i]] for i in known]
    scores = {}
    for name, split in data.items():
        logits = split.features @ np.asarray(imagenet["kernel"])[:, columns] \
            + np.asarray(imagenet["bias"])[columns]
        scores[name] = float((np.array(known)[logits.argmax(1)] == split.labels).mean())
    return scores


def manifest_digest(examples: list[Example]) -> str:
    """A hash of what the model was trained on: every photo's (or dog's) key, label and
    split."""
    lines = sorted(f"{e.key} {e.label} {e.split}" for e in examples)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def split_examples(examples: list[Example]) -> dict[str, list[Example]]:
    splits = {name: [e for e in examples if e.split == name] for name in ("train", "val", "test")}
    if not splits["train"] or not splits["val"]:
        counts = Counter(e.split or "(none)" for e in examples)
        raise ValueError(f"need train and val photos, found {dict(counts)}: "
                         "run scripts/build_dataset.py to split the data")
    return splits


def train_head(config: TrainConfig, labels: list[BreedLabel], data: dict[str, Split],
               base: Base | None, backbone_params: dict, logs: Path
               ) -> tuple[TrainState, dict]:
    """Fit a head over ``labels`` on cached features, calibrate it, and measure every split.

    With a ``base``, its labels are the first ``labels``, its rows their start and its answers
    the distillation teacher. Without one, the breeds ImageNet knows start from its rows.
    """
    names = [b.label for b in labels]
    if base is None:
        imagenet = {c.wnid for c in imagenet_classes()}
        base_names = [label for label in names if label in imagenet]
        rows = imagenet_rows(base_names, backbone_params, POOLING[config.variant])
        known = rows_by_label(rows, base_names)
    else:
        known = rows_by_label(base.classifier, [b.label for b in base.labels])
    train = data["train"]
    prototypes = {label: prototype(train.features[train.labels == i])
                  for i, label in enumerate(names)
                  if label not in known and (train.labels == i).any()}
    head = BreedHead(len(labels), config.hidden, config.dropout)
    state, history = fit(config, head, train, data["val"], logs,
                         lambda p: init_rows(p, names, known, prototypes),
                         base.classifier if base else None)
    eval_fn = jax.jit(eval_logits)
    uncalibrated_ece = evaluate(state, data["val"], eval_fn, config.batch_size)["ece"]
    state, temperature = calibrate(state, data["val"], eval_fn, config.batch_size,
                                   floor=1.0 if base else 0.0)
    log.info("temperature %.2f: val ECE %.3f before calibration", temperature, uncalibrated_ece)
    metrics = {name: evaluate(state, split, eval_fn, config.batch_size)
               for name, split in data.items()}
    metrics["calibration"] = {"temperature": temperature, "val_ece_before": uncalibrated_ece}
    return state, metrics | {"epochs": len(history)}


def train_base(config: TrainConfig, base: Base | None, train: list[Example],
               val: list[Example], features: dict[str, np.ndarray], backbone_params: dict,
               logs: Path) -> Base:
    """A linear head trained on cached ``features`` (extending ``base`` when given), as a
    ``Base``: its breeds and rows, for measuring or extending further."""
    labels = label_table(train + val, base.labels if base else ())
    index = {b.label: i for i, b in enumerate(labels)}
    data = {"train": make_split(train, features, index, config.views),
            "val": make_split(val, features, index, 0)}
    state, _ = train_head(config, labels, data, base, backbone_params, logs)
    classifier = {name: np.asarray(value) for name, value in state.params["classifier"].items()}
    return Base(tuple(labels), classifier)


def train_and_export(config: TrainConfig, examples: list[Example], out: Path,
                     cache_root: Path) -> Artifact:
    """Extract (or reuse) features, train the head, evaluate it, and write the artifact.

    With ``config.extend`` the head extends the zero-training model; otherwise it answers
    over the data's breeds alone.
    """
    splits = split_examples(examples)
    _, backbone_params = from_pretrained(config.variant)
    base = imagenet_base(backbone_params, POOLING[config.variant]) if config.extend else None
    labels = label_table(examples, base.labels if base else ())
    index = {b.label: i for i, b in enumerate(labels)}
    started = time.perf_counter()
    matmul = served_matmul(config.matmul)  # what the bot will serve the head with
    features = cached_features(config.variant, config.seed, config.views, splits["train"],
                               {name: splits[name] for name in ("val", "test")}, cache_root,
                               matmul=matmul)
    extraction_s = time.perf_counter() - started
    data = {name: make_split(split, features, index, config.views if name == "train" else 0)
            for name, split in splits.items() if split}

    logs = out.with_name(out.name + ".logs")
    logs.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    state, metrics = train_head(config, labels, data, base, backbone_params, logs)
    metrics["zero_training"] = zero_training_top1(data, list(index), backbone_params)
    metrics |= {"extraction_s": round(extraction_s, 1),
                "training_s": round(time.perf_counter() - started, 1)}
    artifact = make_artifact(config, labels, state, metrics, examples, POOLING[config.variant],
                             matmul)
    save_artifact(artifact, out)
    return artifact


def make_artifact(config: TrainConfig, labels: list[BreedLabel], state: TrainState,
                  metrics: dict, examples: list[Example], pooling: str, matmul: str
                  ) -> Artifact:
    """The model file's content: the trained head, its labels, how the features it was fitted
    on were pooled and computed (``matmul`` products), metrics and provenance."""
    return Artifact(
        variant=config.variant, labels=labels,
        head_config={"hidden": config.hidden, "dropout": config.dropout},
        head_params=jax.tree_util.tree_map(np.asarray, jax.device_get(state.params)),
        metrics=metrics | {"config": dataclasses.asdict(config)},
        manifest_sha256=manifest_digest(examples), code_version=code_version(),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"), pooling=pooling,
        matmul=matmul)


def train_baseline(config: TrainConfig, examples: list[Example], out: Path) -> dict:
    """Train the small from-scratch CNN on the same splits; metrics go to <out>.baseline.json."""
    splits = split_examples(examples)
    labels = label_table(examples)
    index = {b.label: i for i, b in enumerate(labels)}
    data = {name: Split(*load_pixels(split, index)) for name, split in splits.items() if split}
    logs = out.with_name(out.name + ".baseline-logs")
    logs.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    state, history = fit(config, SmallCNN(len(labels)), data["train"], data["val"], logs)
    eval_fn = jax.jit(eval_logits)
    metrics = {name: evaluate(state, split, eval_fn, config.batch_size)
               for name, split in data.items()}
    metrics |= {"epochs": len(history), "training_s": round(time.perf_counter() - started, 1)}
    out.with_name(out.name + ".baseline.json").write_text(json.dumps(metrics, indent=2))
    return metrics
