"""The bot under load, and its start-up: the real bot (``python -m bot``, in its own process)
against the Bot API stand-in, driven by simulated users sending real photos, timed from each
update to the bot's reply. ``scripts/loadtest.py`` prints the figures (README, Speed: "The bot
under load" and "Start-up")."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bot.config import COMPILE_CACHE, DEFAULT_MAX_BATCH
from bot.fake_telegram import ChatSpec, FakeTelegram, UserSpec
from model import DEFAULT_VARIANT
from model.photo_sources import PHOTO_SUFFIXES

REPOSITORY = Path(__file__).resolve().parents[1]
DATASETS = REPOSITORY.parent / "shared" / "datasets"
ANSWER_MARKS = ("🐕", "🤔")  # how every answer to a photo begins (bot/replies.py: answer_text)
PHOTOS_A_MINUTE = 10  # per simulated user, under the bot's flood limit of 12
START_TIMEOUT_S = 600.0  # a cold start compiles every batch shape
GRACE_S = 1.0  # waited after the last answer, for a second answer to any photo to show
WARMED_UP = re.compile(r"compiled for looking in ([\d.]+) s")  # bot/inference.py

Key = tuple[int, int]  # (chat id, message id) of a photo a user sent


class LoadTestError(Exception):
    """Something that stops a load test (no photos, a bot that does not start); says what."""


@dataclass(frozen=True)
class Load:
    """What the simulated users do: ``users`` send a photo each at once (the burst), then
    others send ``rate`` photos a second for ``duration`` seconds (none: burst only)."""

    users: int = 100
    rate: float = 5.0
    duration: float = 60.0
    model: str = DEFAULT_VARIANT
    photos: Path = DATASETS / "wiki-dogs-dev"


@dataclass
class Phase:
    """The photos of one phase and the bot's replies to them."""

    name: str
    sent: int
    latencies: list[float]  # seconds from the update to the bot's first reply, answered photos
    repeated: int  # photos answered more than once
    not_answers: list[str]  # replies that are not an answer naming breeds (or no dog)
    seconds: float  # first photo sent to last reply
    rss_mb: float = 0.0  # the bot's resident memory once the phase was answered

    @property
    def answered(self) -> int:
        return len(self.latencies)

    @property
    def correct(self) -> bool:
        """Every photo answered exactly once, with an answer."""
        return self.answered == self.sent and not self.repeated and not self.not_answers

    @property
    def photos_per_s(self) -> float:
        return self.answered / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) if self.latencies else math.nan


@dataclass
class Memory:
    """The bot process's resident memory (MB) while serving: when the load began and ended,
    the highest sampled in between, and the highest in its life (warm-up included)."""

    start: float = 0.0
    end: float = 0.0
    lifetime_peak: float = 0.0
    samples: list[float] = field(default_factory=list)  # every quarter second under load

    @property
    def peak(self) -> float:
        return max(self.samples, default=0.0)

    def quarters(self) -> list[float]:
        """The samples at 0, 25, 50, 75 and 100% of the load: flat, or growing?"""
        last = len(self.samples) - 1
        return [self.samples[round(last * q / 4)] for q in range(5)] if self.samples else []


@dataclass
class Run:
    """One bot process under the whole load."""

    max_batch: int
    startup_s: float  # ``python -m bot`` to its first answer
    phases: list[Phase]
    memory: Memory
    errors_logged: int  # ERROR lines in the bot's log

    @property
    def correct(self) -> bool:
        return all(phase.correct for phase in self.phases) and not self.errors_logged


# ------------------------------------------------------------ photos


def read_photos(folder: Path, count: int) -> list[bytes]:
    """``count`` photos from ``folder`` (recursively, sorted, repeated when it has fewer)."""
    if not folder.is_dir():
        raise LoadTestError(f"{folder} is absent: the load test sends real photos; pass "
                            "--photos with a folder of JPEGs")
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in PHOTO_SUFFIXES)
    if not paths:
        raise LoadTestError(f"no photos ({', '.join(sorted(PHOTO_SUFFIXES))}) in {folder}")
    return [paths[i % len(paths)].read_bytes() for i in range(count)]


# ------------------------------------------------------------ the users' side


class Chats:
    """Photos sent to the bot through the stand-in, and the bot's replies to them, timed."""

    def __init__(self, fake: FakeTelegram) -> None:
        self.fake = fake
        self.sent: dict[Key, float] = {}
        self.replies: dict[Key, list[tuple[float, str]]] = {}  # (when, text), in order
        self._seen: dict[int, int] = {}  # chat id -> bot message versions read

    def send(self, user_id: int, sizes: list[dict[str, Any]]) -> Key:
        """User ``user_id`` sends a stored photo in their private chat."""
        user = UserSpec(user_id, f"User {user_id}")
        message = self.fake.send_stored_photo(ChatSpec(user_id), user, sizes)
        key = (user_id, message["message_id"])
        self.sent[key] = time.monotonic()
        return key

    async def watch(self) -> None:
        """Time the bot's replies as they come (until cancelled)."""
        await self.fake.state.signal.wait_until(self._collect, timeout=86_400.0)

    def _collect(self) -> bool:
        """Take the bot's new replies to the photos, timed now; False, to wait on."""
        now = time.monotonic()
        for chat_id, chat in self.fake.state.chats.items():
            history = chat.history
            for _version, message in history[self._seen.get(chat_id, 0):]:
                original = message.get("reply_to_message", {}).get("message_id")
                if "edit_date" not in message and (chat_id, original) in self.sent:
                    self.replies.setdefault((chat_id, original), []).append(
                        (now, message.get("text") or message.get("caption", "")))
            self._seen[chat_id] = len(history)
        return False

    async def wait(self, keys: Sequence[Key], timeout: float) -> None:
        """Until each photo in ``keys`` has a reply, or ``timeout`` seconds."""
        await self.fake.state.signal.wait_until(
            lambda: self._collect() or all(key in self.replies for key in keys), timeout)

    def phase(self, name: str, keys: Sequence[Key]) -> Phase:
        self._collect()
        replies = [self.replies.get(key, []) for key in keys]
        first_sent = min(self.sent[key] for key in keys)
        last_reply = max((r[0][0] for r in replies if r), default=first_sent)
        return Phase(
            name, len(keys),
            latencies=[r[0][0] - self.sent[key] for key, r in zip(keys, replies, strict=True)
                       if r],
            repeated=sum(len(r) > 1 for r in replies),
            not_answers=[text for r in replies for _, text in r
                         if not text.startswith(ANSWER_MARKS)],
            seconds=last_reply - first_sent)


# ------------------------------------------------------------ the bot's process


class BotProcess:
    """``python -m bot`` with the stand-in's token and URL, its data in ``data_dir`` and its
    log in ``data_dir/bot.log``."""

    def __init__(self, fake: FakeTelegram, data_dir: Path, *, model: str, max_batch: int,
                 compile_cache: Path) -> None:
        self.log_path = data_dir / "bot.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "WEBHOOK_"))}
        env |= {"TELEGRAM_BOT_TOKEN": fake.token, "TELEGRAM_API_URL": fake.url,
                "WHATBREED_DATA": str(data_dir), "WHATBREED_MODEL": model,
                "WHATBREED_MAX_BATCH": str(max_batch), "WHATBREED_LOG_LEVEL": "INFO",
                "WHATBREED_COMPILE_CACHE": str(compile_cache.resolve())}
        with self.log_path.open("w") as log:
            self.started = time.monotonic()
            self.process = subprocess.Popen([sys.executable, "-m", "bot"], cwd=REPOSITORY,
                                            env=env, stdout=log, stderr=subprocess.STDOUT)

    def memory_mb(self, field_name: str = "VmRSS") -> float:
        """A memory figure of the process from /proc (Linux), in MB; 0 once it has ended."""
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith(field_name + ":"):
                    return int(line.split()[1]) / 1024
        return 0.0

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def check_running(self) -> None:
        if self.process.poll() is not None:
            raise LoadTestError(f"the bot exited ({self.process.returncode}); its log:\n"
                                f"{self.log[-3000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextlib.asynccontextmanager
async def bot_against_stand_in(data_dir: Path, *, model: str, max_batch: int = DEFAULT_MAX_BATCH,
                               compile_cache: Path = COMPILE_CACHE
                               ) -> AsyncIterator[tuple[BotProcess, Chats]]:
    """A stand-in on 127.0.0.1 and the bot process polling it; stopped on exit."""
    async with FakeTelegram() as fake:
        bot = BotProcess(fake, data_dir, model=model, max_batch=max_batch,
                         compile_cache=compile_cache)
        chats = Chats(fake)
        watching = asyncio.create_task(chats.watch())
        try:
            yield bot, chats
        finally:
            watching.cancel()
            await asyncio.to_thread(bot.stop)


async def first_answer(bot: BotProcess, chats: Chats, photo: bytes) -> float:
    """Seconds from the bot's start to its answer to ``photo``, sent as it starts."""
    key = chats.send(1, chats.fake.state.store_photo(photo))
    deadline = time.monotonic() + START_TIMEOUT_S
    while key not in chats.replies:
        bot.check_running()
        if time.monotonic() > deadline:
            raise LoadTestError(f"no answer {START_TIMEOUT_S:.0f} s after the start; the bot's "
                                f"log:\n{bot.log[-3000:]}")
        await chats.wait([key], timeout=1.0)
    answered_at, text = chats.replies[key][0]
    if not text.startswith(ANSWER_MARKS):
        raise LoadTestError(f"the bot's first reply is not an answer: {text!r}; its log:\n"
                            f"{bot.log[-3000:]}")
    return answered_at - bot.started


def warm_up_seconds(log: str) -> float:
    """How long the bot's warm-up (compiling what it runs) took, from its log."""
    found = WARMED_UP.search(log)
    return float(found.group(1)) if found else math.nan


def cache_errors(log: str) -> int:
    """JAX's warnings of a compilation cache entry it could not read or write."""
    return log.count("persistent compilation cache entry")


# ------------------------------------------------------------ the load


async def burst(chats: Chats, stored: list[list[dict[str, Any]]], users: int) -> Phase:
    """``users`` users send a photo each, at once."""
    keys = [chats.send(1000 + i, stored[i % len(stored)]) for i in range(users)]
    return await _answered(chats, "burst", keys, timeout=60 + users)


async def sustained(chats: Chats, stored: list[list[dict[str, Any]]], rate: float,
                    duration: float) -> Phase:
    """Photos at ``rate`` a second for ``duration`` seconds, spread over enough users that
    none sends more than ``PHOTOS_A_MINUTE``."""
    count = round(rate * duration)
    users = max(1, math.ceil(rate * 60 / PHOTOS_A_MINUTE))
    loop = asyncio.get_running_loop()
    start, keys = loop.time(), []
    for i in range(count):
        await asyncio.sleep(max(0.0, start + i / rate - loop.time()))
        keys.append(chats.send(100_000 + i % users, stored[i % len(stored)]))
    return await _answered(chats, "sustained", keys, timeout=120)


async def _answered(chats: Chats, name: str, keys: list[Key], timeout: float) -> Phase:
    await chats.wait(keys, timeout)
    await asyncio.sleep(GRACE_S)
    return chats.phase(name, keys)


async def run_load(load: Load, max_batch: int, compile_cache: Path = COMPILE_CACHE) -> Run:
    """One fresh bot process (micro-batching up to ``max_batch`` photos) under ``load``."""
    photos = read_photos(load.photos, max(load.users, 1) + 1)
    with tempfile.TemporaryDirectory(prefix="whatbreed-load-") as data:
        async with bot_against_stand_in(Path(data), model=load.model, max_batch=max_batch,
                                        compile_cache=compile_cache) as (bot, chats):
            startup = await first_answer(bot, chats, photos[0])
            stored = [chats.fake.state.store_photo(p) for p in photos[1:]]
            memory = Memory(start=bot.memory_mb())
            async with _sampling(bot, memory):
                phases = [await burst(chats, stored, load.users)]
                phases[-1].rss_mb = bot.memory_mb()
                if load.rate and load.duration:
                    phases.append(await sustained(chats, stored, load.rate, load.duration))
                    phases[-1].rss_mb = bot.memory_mb()
            memory.end, memory.lifetime_peak = bot.memory_mb(), bot.memory_mb("VmHWM")
            errors = bot.log.count(" ERROR ")
    return Run(max_batch, startup, phases, memory, errors)


@contextlib.asynccontextmanager
async def _sampling(bot: BotProcess, memory: Memory, every_s: float = 0.25
                    ) -> AsyncIterator[None]:
    """Sample the bot's memory into ``memory.samples`` while the block runs."""

    async def sample() -> None:
        while True:
            memory.samples.append(bot.memory_mb())
            await asyncio.sleep(every_s)

    task = asyncio.create_task(sample())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


# ------------------------------------------------------------ start-up


@dataclass
class Start:
    """One start of the bot: to its first answer, and the warm-up's part of it (seconds)."""

    label: str
    first_answer_s: float
    warm_up_s: float
    cache_errors: int


async def start_once(photo: bytes, model: str, compile_cache: Path, label: str) -> Start:
    with tempfile.TemporaryDirectory(prefix="whatbreed-start-") as data:
        async with bot_against_stand_in(Path(data), model=model,
                                        compile_cache=compile_cache) as (bot, chats):
            seconds = await first_answer(bot, chats, photo)
            return Start(label, seconds, warm_up_seconds(bot.log), cache_errors(bot.log))


async def measure_startup(photo: bytes, model: str = DEFAULT_VARIANT,
                          together: int = 2) -> list[Start]:
    """A cold start (empty compilation cache), a warm one (the cache it left), and
    ``together`` bots starting at once on another empty cache, which must all answer."""
    with tempfile.TemporaryDirectory(prefix="whatbreed-cache-") as caches:
        cache, shared = Path(caches) / "alone", Path(caches) / "shared"
        starts = [await start_once(photo, model, cache, "cold (empty cache)"),
                  await start_once(photo, model, cache, "warm (cache filled)")]
        starts += await asyncio.gather(*(
            start_once(photo, model, shared, f"{together} at once, empty cache: #{i + 1}")
            for i in range(together)))
    return starts


# ------------------------------------------------------------ what the script prints


def format_runs(load: Load, runs: list[Run]) -> str:
    """The runs side by side, one column each."""
    head = (f"The bot under load ({load.model}, photos from {load.photos.name}, "
            f"{os.cpu_count()} CPUs): {load.users} users at once, then "
            f"{load.rate:g} photos/s for {load.duration:g} s")
    columns = [f"max batch {r.max_batch}" + (" (no batching)" if r.max_batch == 1 else "")
               for r in runs]
    rows: list[tuple[str, list[str]]] = [("", columns)]
    for i, phase in enumerate(runs[0].phases):
        ps = [r.phases[i] for r in runs]
        rows += [
            (f"{phase.name}: answered / sent", [f"{p.answered} / {p.sent}" for p in ps]),
            (f"{phase.name}: answered twice, not answers",
             [f"{p.repeated}, {len(p.not_answers)}" for p in ps]),
            (f"{phase.name}: answered photos/s", [f"{p.photos_per_s:.1f}" for p in ps]),
            (f"{phase.name}: p50 / p95 / p99 (s)",
             [" / ".join(f"{p.percentile(q):.2f}" for q in (50, 95, 99)) for p in ps]),
            (f"{phase.name}: bot RSS MB after", [f"{p.rss_mb:.0f}" for p in ps]),
        ]
    rows += [
        ("bot RSS MB: start / end / peak",
         [f"{r.memory.start:.0f} / {r.memory.end:.0f} / {r.memory.peak:.0f}" for r in runs]),
        ("bot RSS MB: 0/25/50/75/100% of the load",
         ["/".join(f"{m:.0f}" for m in r.memory.quarters()) for r in runs]),
        ("bot RSS MB: peak in its life", [f"{r.memory.lifetime_peak:.0f}" for r in runs]),
        ("ERROR lines in the bot's log", [str(r.errors_logged) for r in runs]),
        ("start to first answer (s)", [f"{r.startup_s:.1f}" for r in runs]),
        ("every photo answered exactly once", ["yes" if r.correct else "NO" for r in runs]),
    ]
    width = max(len(label) for label, _ in rows) + 2
    lines = [head] + [f"  {label:<{width}}" + "".join(f"{c:>28}" for c in cells)
                      for label, cells in rows]
    return "\n".join(lines)


def format_starts(model: str, starts: list[Start]) -> str:
    lines = [f"Start-up of python -m bot ({model}, {os.cpu_count()} CPUs): "
             "start to first answer, of which warm-up (compiling)"]
    lines += [f"  {s.label:<34}{s.first_answer_s:>8.1f} s{s.warm_up_s:>8.1f} s"
              + (f"  ({s.cache_errors} cache entries unreadable)" if s.cache_errors else "")
              for s in starts]
    return "\n".join(lines)

