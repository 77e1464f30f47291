"""model.training.promotion: atomic swaps of the served model file, a history, rollbacks."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from model.artifact import Artifact, BreedLabel, load_artifact, save_artifact
from model.files import TEMPORARY_PREFIX
from model.training.promotion import (
    PromotionError,
    history_dir,
    promote,
    promotions,
    rollback,
    sweep_killed_writes,
)


def artifact(seed: int) -> Artifact:
    rng = np.random.default_rng(seed)
    head = {"classifier": {"kernel": rng.normal(size=(1280, 2)).astype(np.float32),
                           "bias": rng.normal(size=2).astype(np.float32)}}
    return Artifact("lite2", [BreedLabel("n02088364", "beagle"), BreedLabel("jindo", "Jindo")],
                    {"hidden": 0, "dropout": 0.2}, head, created_at="2026-11-30T10:00:00")


def test_promotions_stack_up_and_roll_back_one_by_one(tmp_path: Path) -> None:
    served = tmp_path / "model.whatbreed"
    first, second = artifact(1), artifact(2)
    promote(first, served, "efficientnet-lite2-imagenet", {"after": 0.8})
    assert load_artifact(served).version == first.version
    promote(second, served, first.version, {"after": 0.9})
    assert load_artifact(served).version == second.version
    assert [(e["action"], e["from"], e["to"]) for e in promotions(served)] == [
        ("promote", "efficientnet-lite2-imagenet", first.version),
        ("promote", first.version, second.version)]
    assert promotions(served)[1]["figures"] == {"after": 0.9}
    assert sorted(p.name for p in history_dir(served).glob("*.whatbreed")) == sorted(
        [f"{first.version}.whatbreed", f"{second.version}.whatbreed"])

    assert rollback(served) == first.version
    assert load_artifact(served).version == first.version
    assert rollback(served) == "efficientnet-lite2-imagenet"
    assert not served.exists()  # without a file the bot serves the zero-training model
    with pytest.raises(PromotionError, match="nothing to roll back"):
        rollback(served)
    assert [e["action"] for e in promotions(served)] == ["promote", "promote", "rollback",
                                                         "rollback"]


def test_a_model_not_promoted_here_is_not_rolled_back(tmp_path: Path) -> None:
    served = tmp_path / "model.whatbreed"
    save_artifact(artifact(3), served)  # trained and copied by hand, not promoted
    with pytest.raises(PromotionError, match="was not promoted by retrain"):
        rollback(served)
    assert load_artifact(served).version == artifact(3).version


def test_a_served_file_that_changed_during_the_round_is_not_replaced(tmp_path: Path) -> None:
    served = tmp_path / "model.whatbreed"
    promote(artifact(1), served, "efficientnet-lite2-imagenet", {})
    save_artifact(artifact(4), served)  # someone copied another model in meanwhile
    with pytest.raises(PromotionError, match="changed while the candidate trained"):
        promote(artifact(5), served, artifact(1).version, {})
    assert load_artifact(served).version == artifact(4).version


def test_a_rollback_survives_a_power_cut(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    """The file rolled back to reaches the disk before it is renamed into place, and the
    folder after (as ``save_artifact`` does): a power cut leaves one model or the other."""
    served = tmp_path / "model.whatbreed"
    promote(artifact(1), served, "efficientnet-lite2-imagenet", {})
    promote(artifact(2), served, artifact(1).version, {})
    synced, fsync = [], os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(os.fstat(fd).st_ino), fsync(fd)))
    rollback(served)
    assert synced.index(served.stat().st_ino) < synced.index(tmp_path.stat().st_ino)
    synced.clear()
    rollback(served)  # to the zero-training model: the file's removal is made durable too
    assert not served.exists() and tmp_path.stat().st_ino in synced


def test_what_killed_writes_left_beside_the_model_is_swept(tmp_path: Path) -> None:
    """A promotion or a state write killed mid-way leaves a hidden temporary file beside the
    served model or in its history; the next round removes those an hour old, not a write
    that may still be going on, nor the files themselves."""
    served = tmp_path / "model.whatbreed"
    promote(artifact(1), served, "efficientnet-lite2-imagenet", {"after": 0.8})
    killed = [folder / f"{TEMPORARY_PREFIX}killed" for folder in (tmp_path, history_dir(served))]
    going_on = tmp_path / f"{TEMPORARY_PREFIX}writing"
    for leftover in [*killed, going_on]:
        leftover.write_bytes(b"half a model")
    for leftover in killed:
        os.utime(leftover, (leftover.stat().st_atime, leftover.stat().st_mtime - 7200))
    kept = sorted(p for p in tmp_path.rglob("*") if p not in killed)
    assert sweep_killed_writes(served) == 2
    assert sorted(tmp_path.rglob("*")) == kept
    assert sweep_killed_writes(tmp_path / "nowhere" / "model.whatbreed") == 0
