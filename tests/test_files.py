"""Files that survive a crash or a power cut."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from model.files import TEMPORARY_PREFIX, replace_durably, sweep_leftovers


def test_a_file_is_replaced_whole_and_synced_before_its_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "models" / "model.whatbreed"
    replace_durably(path, b"old")
    synced, fsync = [], os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(os.fstat(fd).st_ino), fsync(fd)))
    replace_durably(path, b"new")
    assert path.read_bytes() == b"new" and os.listdir(path.parent) == ["model.whatbreed"]
    # The new bytes reach the disk before the rename that shows them, the rename after it.
    assert synced == [path.stat().st_ino, path.parent.stat().st_ino]


@pytest.mark.parametrize("failing", ["fchmod", "fsync", "replace"])
def test_a_failed_write_keeps_the_old_file_and_leaves_nothing_beside_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str) -> None:
    path = tmp_path / "model.whatbreed"
    replace_durably(path, b"old")

    def refused(*args: object) -> None:
        raise OSError(28, "No space left on device")

    open_files = len(os.listdir("/proc/self/fd"))
    monkeypatch.setattr(os, failing, refused)
    with pytest.raises(OSError, match="No space left"):
        replace_durably(path, b"new")
    monkeypatch.undo()
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["model.whatbreed"]
    assert len(os.listdir("/proc/self/fd")) == open_files  # the temporary file was closed


def test_files_get_the_permissions_asked_for(tmp_path: Path) -> None:
    replace_durably(tmp_path / "model.whatbreed", b"weights")  # readable by other accounts
    replace_durably(tmp_path / "photo.jpg", b"someone's dog", mode=0o600)  # the owner's only
    assert (tmp_path / "model.whatbreed").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "photo.jpg").stat().st_mode & 0o777 == 0o600


def test_leftovers_of_killed_writes_are_swept_but_not_writes_going_on(tmp_path: Path) -> None:
    old, young = tmp_path / f"{TEMPORARY_PREFIX}killed", tmp_path / f"{TEMPORARY_PREFIX}writing"
    kept = tmp_path / "photo.jpg"
    for path in (old, young, kept):
        path.write_bytes(b"part of a photo")
    os.utime(old, (time.time() - 7200,) * 2)  # two hours ago: its writer is long gone
    os.utime(kept, (time.time() - 7200,) * 2)
    assert sweep_leftovers(tmp_path) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([young.name, kept.name])
