"""Which model the bot serves: $WHATBREED_MODEL as given, else the promoted model file once
it exists, else the zero-training default."""

from __future__ import annotations

from pathlib import Path

from bot.config import PROMOTED_MODEL, ModelSource
from model import DEFAULT_VARIANT


def test_unset_serves_the_promoted_model_once_it_exists(tmp_path: Path) -> None:
    assert ModelSource.from_setting(None) == ModelSource.from_setting("") == ModelSource(
        str(PROMOTED_MODEL), DEFAULT_VARIANT)
    promoted = tmp_path / "model.whatbreed"
    source = ModelSource(str(promoted), DEFAULT_VARIANT)
    assert source.watched == promoted and source.to_load() == DEFAULT_VARIANT
    promoted.write_bytes(b"a model")
    assert source.to_load() == str(promoted)
    promoted.unlink()
    assert source.to_load() == DEFAULT_VARIANT


def test_a_variant_is_not_watched_and_a_named_file_must_exist(tmp_path: Path) -> None:
    variant = ModelSource.from_setting("lite0")
    assert variant.watched is None and variant.to_load() == "lite0"
    named = ModelSource.from_setting(str(tmp_path / "absent.whatbreed"))
    assert named.watched == tmp_path / "absent.whatbreed"
    assert named.to_load() == str(tmp_path / "absent.whatbreed")  # loading it says it is absent
