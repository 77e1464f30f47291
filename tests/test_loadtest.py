"""The load test in a tiny configuration, for its correctness, not its timings: two bots starting
at once on one empty compilation cache both answer (JAX locks the cache's entries), and under
load every user gets exactly one answer per photo, nothing dropped."""

import asyncio
from pathlib import Path

import pytest

from bot.loadtest import Load, format_runs, read_photos, run_load, start_once

MODEL = "lite0"  # the quickest to compile


@pytest.fixture(scope="module")
def compile_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Empty for the first test here; the next ones start warm from what it compiled."""
    return tmp_path_factory.mktemp("jax-cache")


async def test_two_bots_starting_at_once_share_an_empty_compilation_cache(
        shared_datasets: Path, compile_cache: Path) -> None:
    assert not any(compile_cache.iterdir())
    photo = read_photos(shared_datasets / "wiki-dogs-dev", 1)[0]
    starts = await asyncio.gather(*(start_once(photo, MODEL, compile_cache, f"bot {i}")
                                    for i in range(2)))  # each raises unless it answers
    assert [s.cache_errors for s in starts] == [0, 0]
    assert list(compile_cache.glob("jit__forward_fn-*-cache"))
    assert (compile_cache / ".lockfile").exists()  # entries were read and written under the lock


async def test_every_photo_is_answered_exactly_once(shared_datasets: Path,
                                                    compile_cache: Path) -> None:
    load = Load(users=5, rate=2, duration=2, model=MODEL, photos=shared_datasets / "wiki-dogs-dev")
    run = await run_load(load, max_batch=4, compile_cache=compile_cache)
    assert [(p.name, p.sent) for p in run.phases] == [("burst", 5), ("sustained", 4)]
    assert run.correct, format_runs(load, [run])
    assert 0 < run.memory.start <= run.memory.peak
