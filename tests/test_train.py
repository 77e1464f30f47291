"""Training the head: one step on fake data, a short fit, resume, data parallelism, export."""

import hashlib
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import serialization

from model.answers import Box, imagenet_breeds
from model.artifact import (
    MAGIC,
    Artifact,
    ArtifactError,
    BreedLabel,
    load_artifact,
    save_artifact,
)
from model.data.dataset import Example, load_examples
from model.efficientnet import fastest_matmul
from model.head import BreedHead, init_rows, prototype, rows_by_label
from model.predictor import Predictor
from model.training.augment import random_views
from model.training.features import FeatureCache, _augmentation_id
from model.training.train import (
    Split,
    TrainConfig,
    calibrate,
    create_state,
    distillation_loss,
    eval_logits,
    evaluate,
    fit,
    label_table,
    split_logits,
    train_and_export,
    train_step,
)

REPO = Path(__file__).resolve().parents[1]
HEAD = BreedHead(3)
FAST = TrainConfig(views=1, epochs=6, batch_size=32, warmup_epochs=1, patience=3,
                   learning_rate=1e-2)


def fake_split(rng: np.random.Generator, per_class: int, classes: int = 3) -> Split:
    """Each class a fixed random direction plus as much noise: learnable, not trivial."""
    centres = np.random.default_rng(42).normal(0, 1, (classes, 1280))
    labels = np.repeat(np.arange(classes), per_class).astype(np.int32)
    features = centres[labels] + rng.normal(0, 3, (len(labels), 1280))
    return Split(features.astype(np.float32), labels)


def test_one_train_step_on_fake_data() -> None:
    train = fake_split(np.random.default_rng(0), 8)
    state = create_state(FAST, HEAD, train.features[:1], steps=10,
                         weights=np.ones(3, np.float32), init_params=lambda p: p)
    batch = {"features": train.features[:16], "label": train.labels[:16],
             "mask": np.ones(16, np.float32)}
    new_state, metrics = jax.jit(train_step)(state, batch)
    assert int(new_state.step) == 1 and np.isfinite(float(metrics["loss"]))
    changed = jax.tree_util.tree_map(lambda a, b: bool((a != b).any()), state.params,
                                     new_state.params)
    assert all(jax.tree_util.tree_leaves(changed))


def test_fit_learns_writes_curves_and_resumes(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    train, val = fake_split(rng, 40), fake_split(rng, 10)
    state, history = fit(FAST, HEAD, train, val, tmp_path)
    assert history[-1]["val_top1"] >= 0.9
    assert (tmp_path / "curves.csv").read_text().startswith("epoch,train_loss")
    assert list(tmp_path.glob("events.out.tfevents.*"))

    resumed, resumed_history = fit(FAST, HEAD, train, val, tmp_path)  # from the checkpoint
    assert resumed_history == history
    np.testing.assert_allclose(resumed.params["classifier"]["kernel"],
                               state.params["classifier"]["kernel"])


def test_calibration_folds_a_temperature_into_the_classifier(tmp_path: Path) -> None:
    # The temperature is fitted to val, not to how sure the head happened to be: a head made
    # 4× too sure gets a 4× temperature and ends up with the same probabilities. Rankings stay.
    rng = np.random.default_rng(3)
    train, val = fake_split(rng, 40), fake_split(rng, 40)
    state, _ = fit(FAST, HEAD, train, val, tmp_path)
    wrong = rng.random(len(val.labels)) < 0.2  # mislabelled photos: no head can be sure
    val = Split(val.features, np.where(wrong, (val.labels + 1) % 3, val.labels))
    too_sure = state.replace(params={"classifier": jax.tree_util.tree_map(
        lambda w: 4 * w, state.params["classifier"])})
    eval_fn = jax.jit(eval_logits)
    calibrated, temperature = calibrate(state, val, eval_fn, FAST.batch_size)
    recalibrated, too_sure_temperature = calibrate(too_sure, val, eval_fn, FAST.batch_size)
    before, after, again = (split_logits(s, val, eval_fn, FAST.batch_size)
                            for s in (state, calibrated, recalibrated))
    np.testing.assert_allclose(after, before / temperature, rtol=1e-4, atol=1e-4)
    assert too_sure_temperature == pytest.approx(4 * temperature, rel=0.025)
    np.testing.assert_allclose(again, after, rtol=0.03, atol=0.03)
    assert (after.argmax(1) == before.argmax(1)).all()
    ece = {name: evaluate(s, val, eval_fn, FAST.batch_size)["ece"]
           for name, s in (("too sure", too_sure), ("recalibrated", recalibrated))}
    assert ece["recalibrated"] < ece["too sure"]


def test_class_weights_balance_a_rare_class(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    common, rare = fake_split(rng, 60, 2), fake_split(rng, 4, 3)
    keep = rare.labels == 2
    train = Split(np.concatenate([common.features, rare.features[keep]]),
                  np.concatenate([common.labels, rare.labels[keep]]))
    val = fake_split(rng, 10)
    _, history = fit(replace(FAST, epochs=8), HEAD, train, val, tmp_path)
    assert history[-1]["val_top1"] > 0.8  # the rare class is learnt too


DATA_PARALLEL = """
import json, numpy as np, jax
from model.training.train import fit, TrainConfig
from tests.test_train import FAST, HEAD, fake_split
rng = np.random.default_rng(1)
train, val = fake_split(rng, 40), fake_split(rng, 10)
state, history = fit(FAST, HEAD, train, val, __import__("pathlib").Path("{logs}"))
print(json.dumps({{"devices": len(jax.devices()), "val_top1": history[-1]["val_top1"],
                  "kernel_sum": float(np.asarray(state.params["classifier"]["kernel"]).sum())}}))
"""


@pytest.mark.parametrize("devices", [1, 2])
def test_data_parallel_over_host_devices(tmp_path: Path, devices: int) -> None:
    env = {"XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
           "PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    result = subprocess.run([sys.executable, "-c", DATA_PARALLEL.format(logs=tmp_path)],
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.splitlines()[-1])
    assert outcome["devices"] == devices and outcome["val_top1"] >= 0.9
    (tmp_path.parent / f"kernel_sum_{devices}").write_text(str(outcome["kernel_sum"]))
    if devices == 2:  # the same run on one device gives the same head, up to float noise
        single = float((tmp_path.parent / "kernel_sum_1").read_text())
        assert outcome["kernel_sum"] == pytest.approx(single, rel=1e-3, abs=1e-3)


def test_random_views_are_reproducible_and_varied() -> None:
    source = np.random.default_rng(0).integers(0, 256, (2, 40, 40, 3), dtype=np.uint8)
    keys = jax.random.split(jax.random.key(0), 2)
    views = np.asarray(random_views(keys, source, 32))
    assert views.shape == (2, 32, 32, 3) and views.min() >= 0 and views.max() <= 255
    np.testing.assert_array_equal(views, np.asarray(random_views(keys, source, 32)))
    other = np.asarray(random_views(jax.random.split(jax.random.key(1), 2), source, 32))
    assert np.abs(views - other).mean() > 5


def test_the_dogs_of_one_photo_are_augmented_apart() -> None:
    photo = Example(Path("p.jpg"), "ab12cd34" * 8, "n02088364", "beagle", "correction", "", "")
    dogs = [replace(photo, box=Box(x, 0.1, x + 0.4, 0.9)) for x in (0.05, 0.55)]
    assert _augmentation_id(photo) == 0xab12cd3  # whole photos as before: cached views stay valid
    assert len({_augmentation_id(example) for example in [photo, *dogs]}) == 3


def test_feature_cache_serves_as_many_views_as_stored(tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path, "lite0")
    cache.put("ab" * 32, np.ones((3, 1280), np.float32))
    assert cache.get("ab" * 32, 2).shape == (3, 1280)
    assert cache.get("ab" * 32, 0).shape == (1, 1280)
    assert cache.get("ab" * 32, 3) is None and cache.get("cd" * 32, 0) is None


def small_artifact() -> Artifact:
    return Artifact(variant="lite0", labels=[BreedLabel("jindo", "Jindo"),
                                             BreedLabel("n02099601", "golden retriever")],
                    head_config={"hidden": 0, "dropout": 0.2},
                    head_params={"classifier": {"kernel": np.zeros((1280, 2), np.float32),
                                                "bias": np.zeros(2, np.float32)}},
                    metrics={"val": {"top1": 0.5, "count": 2}}, created_at="2026-11-25T10:00")


def test_artifact_round_trip_and_refusals(tmp_path: Path) -> None:
    path = tmp_path / "m.whatbreed"
    save_artifact(small_artifact(), path)
    loaded = load_artifact(path)
    assert [b.name for b in loaded.labels] == ["Jindo", "golden retriever"]
    assert loaded.head_params["classifier"]["kernel"].shape == (1280, 2)
    assert loaded.version.startswith("lite0-head-20261125-")

    data = path.read_bytes()
    (tmp_path / "flipped").write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    (tmp_path / "other").write_bytes(b"GIF89a...")
    for name, message in [("flipped", "damaged"), ("other", "not a WhatBreed model"),
                          ("missing", "cannot read")]:
        with pytest.raises(ArtifactError, match=message):
            load_artifact(tmp_path / name)
    save_artifact(replace(small_artifact(), preprocess_version=0), tmp_path / "old")
    with pytest.raises(ArtifactError, match="preprocessing version 0.*train it again"):
        load_artifact(tmp_path / "old")


def test_model_files_say_how_their_features_were_pooled_and_computed(tmp_path: Path) -> None:
    """A new file keeps its pooling and products; one from before they were recorded read the
    mean of exact features, and is served so; one that names a pooling or products this code
    does not make is refused. Features of other products are cached apart."""
    save_artifact(replace(small_artifact(), pooling="dog", matmul="bfloat16"), tmp_path / "new")
    loaded = load_artifact(tmp_path / "new")
    assert (loaded.pooling, loaded.matmul) == ("dog", "bfloat16")
    # A format-1 file, written by hand: this code always writes both.
    payload = serialization.msgpack_restore((tmp_path / "new").read_bytes()[len(MAGIC) + 32:])
    meta = json.loads(payload["meta"])
    del meta["pooling"], meta["matmul"]
    written = serialization.msgpack_serialize(
        {**payload, "meta": json.dumps(meta | {"format_version": 1})})
    (tmp_path / "old").write_bytes(MAGIC + hashlib.sha256(written).digest() + written)
    old = load_artifact(tmp_path / "old")
    assert (old.pooling, old.matmul) == ("mean", "float32")
    save_artifact(replace(small_artifact(), pooling="max"), tmp_path / "odd")
    with pytest.raises(ArtifactError, match="pooled as 'max'"):
        load_artifact(tmp_path / "odd")
    save_artifact(replace(small_artifact(), matmul="float16"), tmp_path / "odd")
    with pytest.raises(ArtifactError, match="features of 'float16' products"):
        load_artifact(tmp_path / "odd")
    assert FeatureCache(tmp_path, "lite2").folder.name == "lite2-p1-dog-s0"  # not the mean's
    assert FeatureCache(tmp_path, "lite0").folder.name == "lite0-p1-s0"
    assert FeatureCache(tmp_path, "lite2", matmul="bfloat16").folder.name == "lite2-p1-dog-bf16-s0"


def test_train_export_and_classify_real_photos(tmp_path: Path, tiny_dogs_dev: Path) -> None:
    """A tiny real run: 3 breeds of dogs-dev, then the artifact serves predictions."""
    root = tiny_dogs_dev
    examples = load_examples(root)
    assert [b.name for b in label_table(examples)] == ["Shih-Tzu", "beagle", "Samoyed"]
    out, cache = tmp_path / "dev.whatbreed", tmp_path / "cache"
    artifact = train_and_export(FAST, examples, out, cache)
    assert artifact.metrics["val"]["top1"] >= 2 / 3
    assert set(artifact.metrics["zero_training"]) == {"train", "val"}
    # It extends the zero-training model: every one of ImageNet's 121 breeds, in its order.
    assert [b.label for b in artifact.labels] == [b.label for b in imagenet_breeds()]
    cached = sorted(p.stat().st_mtime_ns for p in cache.rglob("*.npy"))
    assert len(cached) == 27
    # "auto": fitted on the products the bot serves it with here, and served with them.
    assert artifact.matmul == fastest_matmul()
    assert [p.name for p in cache.iterdir()] == [
        FeatureCache(cache, "lite2", matmul=artifact.matmul).folder.name]

    again = train_and_export(FAST, examples, tmp_path / "again.whatbreed", cache)
    assert sorted(p.stat().st_mtime_ns for p in cache.rglob("*.npy")) == cached  # reused
    assert again.metrics["val"] == pytest.approx(artifact.metrics["val"], rel=1e-3)
    only = train_and_export(replace(FAST, extend=False), examples,
                            tmp_path / "only.whatbreed", cache)
    assert [b.name for b in only.labels] == ["Shih-Tzu", "beagle", "Samoyed"]

    predictor = Predictor(str(out), warm_up=False)
    samoyed = (root / "Images" / "n02111889-Samoyed").iterdir().__next__().read_bytes()
    [answer] = predictor.classify([samoyed])
    assert answer.predictions[0].label == "n02111889" and len(answer.predictions) == 5
    assert (predictor.version, predictor.matmul) == (artifact.version, artifact.matmul)


def test_the_train_and_classify_commands(tmp_path: Path, tiny_dogs_dev: Path) -> None:
    def run(script: str, *args: object) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(REPO / "scripts" / script), *map(str, args)],
                              cwd=REPO, capture_output=True, text=True, timeout=300)

    out = tmp_path / "dev.whatbreed"
    trained = run("train.py", "--data", tiny_dogs_dev, "--out", out, "--cache",
                  tmp_path / "cache", "--views", 1, "--epochs", 4, "--batch-size", 32,
                  "--matmul", "float32")
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert f"wrote {out} (121 breeds" in trained.stdout
    assert "fitted on features of float32 1×1 products)" in trained.stdout
    assert "calibrated: temperature" in trained.stdout
    assert json.loads(trained.stdout.splitlines()[-1])["val"]["top1"] >= 2 / 3

    samoyed = next((tiny_dogs_dev / "Images" / "n02111889-Samoyed").iterdir())
    classified = run("classify.py", "--model", out, "--json", samoyed)
    assert classified.returncode == 0, classified.stderr[-2000:]
    assert json.loads(classified.stdout)["predictions"][0]["name"] == "Samoyed"

    missing = run("train.py", "--data", tmp_path / "nowhere", "--out", tmp_path / "x.whatbreed")
    assert missing.returncode == 2 and missing.stderr.startswith("error:")
    assert "Traceback" not in missing.stderr


def test_baseline_cnn_trains_on_pixels(tmp_path: Path, shared_datasets: Path) -> None:
    """--baseline-cnn: the same fit on 96-pixel photos; metrics land beside the output."""
    from model.training.train import train_baseline

    examples = [e for e in load_examples(shared_datasets / "dogs-dev")
                if e.label in ("n02088364", "n02111889")]
    examples = examples[::40]  # ~2 breeds × a dozen photos: enough to run, not to learn
    metrics = train_baseline(replace(FAST, epochs=2), examples, tmp_path / "m.whatbreed")
    assert set(metrics) >= {"train", "val", "epochs"} and 0 <= metrics["val"]["top1"] <= 1
    assert json.loads((tmp_path / "m.whatbreed.baseline.json").read_text()) == metrics


def base_teacher() -> dict:
    """A linear head that knows fake classes 0-2 (their centres, scaled), unsure of itself."""
    centres = np.random.default_rng(42).normal(0, 1, (3, 1280))  # those of fake_split
    return {"kernel": (centres.T * 0.001).astype(np.float32), "bias": np.zeros(3, np.float32)}


def extend_fit(tmp_path: Path) -> dict[int, np.ndarray]:
    """A head over base classes 0-2 and new class 3, trained on photos of 0 and 3 only;
    its logits on fresh photos of each class."""
    rng = np.random.default_rng(5)
    data = fake_split(rng, 40, classes=4)
    seen = np.isin(data.labels, [0, 3])
    train = Split(data.features[seen], data.labels[seen])
    teacher, labels = base_teacher(), ["a", "b", "c", "new"]
    new_rows = {"new": prototype(train.features[train.labels == 3])}
    config = replace(FAST, learning_rate=1e-3)
    state, _ = fit(config, BreedHead(4), train, train, tmp_path,
                   lambda p: init_rows(p, labels, rows_by_label(teacher, labels[:3]), new_rows),
                   teacher)
    fresh = fake_split(rng, 20, classes=4)
    by_class = {c: Split(fresh.features[fresh.labels == c], fresh.labels[fresh.labels == c])
                for c in range(4)}
    return {c: split_logits(state, s, jax.jit(eval_logits), 32) for c, s in by_class.items()}


def test_extending_learns_the_new_breed_and_keeps_the_old_ones(tmp_path: Path) -> None:
    logits = extend_fit(tmp_path)
    assert all((logits[c].argmax(1) == c).mean() >= 0.9 for c in range(4))  # 1, 2: no photos


def test_distillation_is_at_its_minimum_when_the_student_answers_like_the_teacher() -> None:
    rng = np.random.default_rng(0)
    features = rng.normal(size=(4, 1280)).astype(np.float32)
    teacher = {"kernel": rng.normal(0, 0.05, (1280, 3)).astype(np.float32),
               "bias": np.zeros(3, np.float32)}
    same = features @ teacher["kernel"]
    labels = np.array([0, 1, 2, 3])  # 3: a new breed, beyond the teacher's breeds

    def loss(student_old: jax.Array, label) -> jax.Array:
        student = jnp.concatenate([student_old, jnp.zeros((4, 1))], 1)  # (4, 4)
        return distillation_loss(student, features, teacher, 2.0, label).sum()

    for label in (None, labels):
        assert float(loss(jnp.asarray(same), label)) == pytest.approx(0, abs=1e-5)
        np.testing.assert_allclose(jax.grad(loss)(jnp.asarray(same), label), 0, atol=1e-6)
    # Non-target: the photo's own breed is the label's to decide, so it feels no pull...
    grad = jax.grad(loss)(jnp.asarray(same + rng.normal(size=same.shape)), labels)
    np.testing.assert_allclose(grad[np.arange(3), labels[:3]], 0, atol=1e-9)
    # ...while the full answer is pulled on every breed, the own one included.
    full = jax.grad(loss)(jnp.asarray(same + rng.normal(size=same.shape)), None)
    assert (np.abs(full[np.arange(3), labels[:3]]) > 1e-4).all()


def test_imprinted_rows_match_the_known_rows_scale() -> None:
    params = {"classifier": {"kernel": np.zeros((1280, 3), np.float32),
                             "bias": np.zeros(3, np.float32)}}
    known = {"a": np.r_[np.full(1280, 0.1), 1.0], "b": np.r_[np.full(1280, -0.3), 3.0]}
    features = np.random.default_rng(0).normal(1, 1, (5, 1280))
    rows = init_rows(params, ["a", "new", "b"], known, {"new": prototype(features)})
    kernel, bias = rows["classifier"]["kernel"], rows["classifier"]["bias"]
    np.testing.assert_allclose(kernel[:, 0], 0.1)
    np.testing.assert_allclose(bias[[0, 2]], [1.0, 3.0])
    mean_norm = (np.linalg.norm(known["a"][:-1]) + np.linalg.norm(known["b"][:-1])) / 2
    assert np.linalg.norm(kernel[:, 1]) == pytest.approx(mean_norm, rel=1e-5)
    assert bias[1] == pytest.approx(2.0)
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    assert np.corrcoef(kernel[:, 1], unit.mean(0))[0, 1] > 0.999  # points at the breed


def test_label_table_puts_the_base_first() -> None:
    base = (BreedLabel("n02111889", "Samoyed"), BreedLabel("n02088364", "beagle"))
    examples = [Example(Path(f"{label}.jpg"), label, label, name, "folder", "", "train")
                for label, name in (("jindo", "Korean Jindo"), ("n02088364", "beagle"),
                                    ("akita", "Akita"))]
    assert [b.label for b in label_table(examples, base)] == ["n02111889", "n02088364", "akita",
                                                             "jindo"]


@pytest.mark.parametrize("epochs", [1, 2])
def test_runs_as_short_as_the_warm_up_still_train(tmp_path: Path, epochs: int) -> None:
    rng = np.random.default_rng(4)
    train, val = fake_split(rng, 40), fake_split(rng, 10)
    _, history = fit(replace(FAST, epochs=epochs, warmup_epochs=2), HEAD, train, val, tmp_path)
    assert len(history) == epochs and history[-1]["val_top1"] > 0.5


def test_a_temperature_floor_of_one_never_sharpens(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    train, val = fake_split(rng, 40), fake_split(rng, 40)
    state, _ = fit(FAST, HEAD, train, val, tmp_path)
    unsure = state.replace(params={"classifier": jax.tree_util.tree_map(
        lambda w: w / 4, state.params["classifier"])})  # 4x too unsure: fitted T < 1
    eval_fn = jax.jit(eval_logits)
    _, fitted = calibrate(unsure, val, eval_fn, FAST.batch_size)
    kept, floored = calibrate(unsure, val, eval_fn, FAST.batch_size, floor=1.0)
    assert fitted < 1 and floored == 1.0
    np.testing.assert_allclose(split_logits(kept, val, eval_fn, 32),
                               split_logits(unsure, val, eval_fn, 32), rtol=1e-6)
