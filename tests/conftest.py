"""Shared fixtures: where the real photos live (outside the repository) and how to read them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """``../shared/datasets`` beside the repository; tests needing real photos skip without it."""
    path = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
    if not path.is_dir():
        pytest.skip("../shared/datasets is absent: real photos are needed for this test")
    return path


@pytest.fixture(scope="session")
def read_photo(shared_datasets: Path) -> Callable[[str], bytes]:
    """The bytes of a photo, named relative to ``shared_datasets``."""

    def read(relative: str) -> bytes:
        return (shared_datasets / relative).read_bytes()

    return read
