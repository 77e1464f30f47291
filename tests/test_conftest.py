"""The real-photo tests skip on a laptop without ../shared, and fail in CI, which has it."""

from pathlib import Path

import pytest

from tests.conftest import REQUIRE_DATASETS, datasets_folder


def test_a_missing_datasets_folder_skips_by_default(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REQUIRE_DATASETS, raising=False)
    with pytest.raises(pytest.skip.Exception, match="real photos are needed"):
        datasets_folder(tmp_path / "absent")


def test_a_missing_datasets_folder_fails_where_required(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REQUIRE_DATASETS, "1")
    with pytest.raises(pytest.fail.Exception, match="must be there"):
        datasets_folder(tmp_path / "absent")


def test_a_present_datasets_folder_is_used(tmp_path: Path) -> None:
    assert datasets_folder(tmp_path) == tmp_path
