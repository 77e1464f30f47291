"""The perceptual-hash cache: survives crashes, reads seeds without writing them, hashes once."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from model.data.csv_log import CsvLog
from model.data.dataset import Example, perceptual_hash, sha256_of
from model.data.hash_cache import HashCache, read_hash_cache


def test_csv_log_cuts_off_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    log = CsvLog(path, ("a", "b"))
    log.append({"a": "1", "b": "x"})
    log.close()
    with open(path, "a") as f:
        f.write("2,half")
    log = CsvLog(path, ("a", "b"))
    log.append({"a": "3", "b": "y"})
    log.close()
    assert path.read_text() == "a,b\n1,x\n3,y\n"


def photo(path: Path, colour: tuple[int, int, int], stripes: bool = False) -> Example:
    image = Image.new("RGB", (96, 64), colour)
    if stripes:
        for x in range(0, 96, 12):
            image.paste((255, 255, 255), (x, 0, x + 6, 64))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    path.write_bytes(buffer.getvalue())
    return Example(path, sha256_of(path), "x", "X", "folder", "", "")


def test_hashes_each_photo_once_and_keeps_seeds_read_only(tmp_path: Path) -> None:
    plain = photo(tmp_path / "plain.png", (200, 40, 40))
    striped = photo(tmp_path / "striped.png", (40, 40, 200), stripes=True)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a photo")
    broken_example = Example(broken, sha256_of(broken), "x", "X", "folder", "", "")
    seed = tmp_path / "seed.csv"
    seed.write_text(f"sha256,phash\n{plain.sha256},{123:016x}\nnonsense,row\n"
                    f"{'e' * 64},not-hex-not-hex!\n")
    seed_before = seed.read_bytes()

    cache_path = tmp_path / "cache" / "phash_cache.csv"
    with HashCache(cache_path, seeds=[seed]) as cache:
        hashes = cache.hash_examples([plain, striped, broken_example, striped])
    # The seed's (deliberately wrong) hash is trusted, not recomputed; the broken file is None.
    assert hashes == [123, perceptual_hash(striped.path.read_bytes()), None, hashes[1]]
    assert seed.read_bytes() == seed_before
    assert read_hash_cache(cache_path) == {striped.sha256: hashes[1]}
    assert len(cache_path.read_text().splitlines()) == 2  # the header and one row: hashed once

    striped.path.unlink()  # a second run must not need the photo again
    with HashCache(cache_path) as cache:
        assert cache.hash_examples([striped]) == [hashes[1]]
