"""Files that survive a crash or a power cut."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from model.files import replace_durably


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
