"""The load test in a tiny configuration, for its correctness, not its timings: every user gets
exactly one answer per photo, nothing is dropped; and two bots starting at once on one empty
compilation cache both answer (JAX locks the cache's entries)."""

import asyncio
from pathlib import Path

from bot.loadtest import Load, format_runs, read_photos, run_load, start_once

MODEL = "lite0"  # the quickest to compile


async def test_every_photo_is_answered_exactly_once(shared_datasets: Path,
                                                    tmp_path: Path) -> None:
    load = Load(users=5, rate=2, duration=2, model=MODEL, photos=shared_datasets / "wiki-dogs-dev")
    run = await run_load(load, max_batch=4, compile_cache=tmp_path / "cache")
    assert [(p.name, p.sent) for p in run.phases] == [("burst", 5), ("sustained", 4)]
    assert run.correct, format_runs(load, [run])
    assert 0 < run.memory.start <= run.memory.peak <= run.memory.lifetime_peak


async def test_two_bots_starting_at_once_share_an_empty_compilation_cache(
        shared_datasets: Path, tmp_path: Path) -> None:
    photo = read_photos(shared_datasets / "wiki-dogs-dev", 1)[0]
    cache = tmp_path / "cache"
    starts = await asyncio.gather(*(start_once(photo, MODEL, cache, f"bot {i}")
                                    for i in range(2)))  # each raises unless it answers
    assert [s.cache_errors for s in starts] == [0, 0]
    assert list(cache.glob("jit__forward_fn-*-cache"))
