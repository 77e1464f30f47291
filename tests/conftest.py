"""Shared fixtures: where the real photos live (outside the repository) and how to read them."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import numpy as np
import pytest
from hypothesis import settings
from sqlalchemy import text

from bot.app import build_application, running
from bot.breeds import BreedIndex
from bot.config import Webhook
from bot.fake_telegram import ChatSpec, FakeTelegram, UserSpec
from bot.handlers import Services
from bot.inference import BatchingClassifier
from bot.ratelimit import RateLimiter
from bot.storage import Store
from model import DEFAULT_VARIANT, POOLING
from model.artifact import Artifact, BreedLabel, save_artifact
from model.labels import BREED_CLASSES
from model.predictor import Predictor
from tests.postgres import PostgresServer, Unavailable

DEFAULT_MODEL_VERSION = f"efficientnet-{DEFAULT_VARIANT}-imagenet"  # what Predictor() says

# Property-based tests: CI draws the same examples every run (a red CI run is reproducible);
# on a developer's machine they vary, and failures are remembered in .hypothesis/.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("dev")
settings.load_profile("ci" if os.environ.get("CI") else "dev")


# .ci/run sets this: CI always has the photos, so a missing folder there is a failure, not a
# quietly green run with the real-photo tests skipped.
REQUIRE_DATASETS = "WHATBREED_REQUIRE_DATASETS"
# .ci/run installs PostgreSQL and sets this, so the tests on PostgreSQL cannot quietly skip.
REQUIRE_POSTGRESQL = "WHATBREED_REQUIRE_POSTGRESQL"


def datasets_folder(path: Path) -> Path:
    """``path`` if it is a folder; else skip the test (fail, where $WHATBREED_REQUIRE_DATASETS
    is set)."""
    if not path.is_dir():
        reason = f"{path} is absent: real photos are needed for this test"
        if os.environ.get(REQUIRE_DATASETS):
            pytest.fail(f"{reason}, and ${REQUIRE_DATASETS} says they must be there")
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """``../shared/datasets`` beside the repository, where the real photos live."""
    return datasets_folder(Path(__file__).resolve().parents[1].parent / "shared" / "datasets")


@pytest.fixture
def tiny_dogs_dev(tmp_path: Path, shared_datasets: Path) -> Path:
    """dogs-dev's layout with 3 breeds of 9 photos: 6 train, 3 val each."""
    root = tmp_path / "data"
    lines = {"train": [], "val": []}
    for folder in ("n02088364-beagle", "n02111889-Samoyed", "n02086240-Shih-Tzu"):
        (root / "Images" / folder).mkdir(parents=True)
        photos = sorted((shared_datasets / "dogs-dev" / "Images" / folder).iterdir())[:9]
        for i, photo in enumerate(photos):
            (root / "Images" / folder / photo.name).symlink_to(photo)
            lines["val" if i >= 6 else "train"].append(f"{folder}/{photo.name}")
    (root / "splits").mkdir()
    for split, names in lines.items():
        (root / "splits" / f"{split}.txt").write_text("\n".join(names))
    return root


@pytest.fixture(scope="session")
def read_photo(shared_datasets: Path) -> Callable[[str], bytes]:
    """The bytes of a photo, named relative to ``shared_datasets``."""

    def read(relative: str) -> bytes:
        return (shared_datasets / relative).read_bytes()

    return read


@pytest.fixture(scope="session")
def classifier() -> Iterator[BatchingClassifier]:
    """One real predictor (the default variant) behind the micro-batcher, for the bot tests."""
    classifier = BatchingClassifier(lambda: Predictor(warm_up=False))
    yield classifier
    classifier.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server of the tests' own on 127.0.0.1; skips (fails, where
    $WHATBREED_REQUIRE_POSTGRESQL is set) where none can be started."""
    try:
        server = PostgresServer(free_port())
    except Unavailable as error:
        if os.environ.get(REQUIRE_POSTGRESQL):
            pytest.fail(f"{error}, and ${REQUIRE_POSTGRESQL} says it must be there")
        pytest.skip(str(error))
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new, empty database: a SQLite file in ``tmp_path``, or one on the PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'db' / 'whatbreed.db'}"
    return request.getfixturevalue("postgres").new_database()


@dataclass
class BotEnv:
    """The real bot Application polling a fake Bot API on 127.0.0.1 (or taking its updates at
    ``webhook``), with a fresh database."""

    fake: FakeTelegram
    services: Services
    photos: Path
    webhook: Webhook | None = None

    @property
    def db(self) -> Path:
        """The SQLite file, for a test that takes its lock from outside."""
        return Path(self.services.store.engine.url.database)

    def rows(self, sql: str) -> list[tuple]:
        """The rows ``sql`` returns; a statement that changes something is committed."""
        with self.services.store.engine.begin() as connection:
            result = connection.execute(text(sql))
            return [tuple(row) for row in result] if result.returns_rows else []

    async def download(self, message: dict) -> bytes:
        """A file the bot sent (a photo's largest size, or a document), over HTTP."""
        async with aiohttp.ClientSession() as http, \
                http.get(self.fake.url + message["_file_url"]) as response:
            return await response.read()

    async def ask(self, chat: ChatSpec, user: UserSpec, photo_bytes: bytes) -> dict:
        """Send a photo and wait for the bot's answer to it, and for the bot to have stored
        which message that answer is (it can only after sending it), as a person replying to
        the answer a moment later would."""
        sent = self.fake.send_photo(chat, user, photo_bytes)
        answer = await self.answer_to(chat.id, sent)
        # The prediction is stored before the answer is sent (none: the answer was no
        # prediction, e.g. a damaged file), and the answer's id just after.
        stored = ("SELECT reply_message_id FROM predictions WHERE photo_message_id = "
                  f"{int(sent['message_id'])} AND chat_hash = "
                  f"'{self.services.store.chat_hash(chat.id)}'")  # ids count per chat
        for _ in range(400):
            if self.rows(stored) != [(None,)]:
                return answer
            await asyncio.sleep(0.025)
        raise AssertionError(f"the bot never stored its answer {answer['message_id']}")

    async def answer_to(self, chat_id: int, sent: dict) -> dict:
        """The bot's reply to message ``sent``."""
        return await self.fake.wait_for(chat_id, lambda m: m["reply_to_message"]["message_id"]
                                        == sent["message_id"])


async def eventually(query, timeout: float = 5.0):
    """Poll ``query`` until it returns something truthy (a write the bot makes after replying)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not (result := query()) and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
    return result


@contextlib.asynccontextmanager
async def running_bot(tmp_path: Path, classifier: BatchingClassifier, photos_a_minute: int = 3,
                      webhook: Webhook | None = None,
                      database_url: str | None = None) -> AsyncIterator[BotEnv]:
    """The real bot with ``classifier``, ``database_url`` (else a fresh SQLite file in
    ``tmp_path``) and a photo folder in ``tmp_path``; each user may send ``photos_a_minute``
    (the flood limit). It polls, or runs ``webhook``."""
    store = Store(database_url or f"sqlite:///{tmp_path / 'bot.db'}", tmp_path / "photos",
                  "test-salt")
    services = Services(store, classifier, BreedIndex.build(),
                        RateLimiter(max_events=photos_a_minute))
    try:
        async with FakeTelegram() as fake:
            application = build_application(fake.token, services, fake.base_url,
                                            fake.base_file_url)
            async with running(application, webhook, timeout=2, poll_interval=0):
                yield BotEnv(fake, services, tmp_path / "photos", webhook)
    finally:
        store.close()


@pytest.fixture
async def bot_env(tmp_path: Path, classifier: BatchingClassifier,
                  database_url: str) -> AsyncIterator[BotEnv]:
    """The bot on SQLite, and again on PostgreSQL."""
    async with running_bot(tmp_path, classifier, database_url=database_url) as env:
        yield env


def breed_probs_on_the_mean(imagenet_probs: np.ndarray) -> np.ndarray:
    """(..., 1000) softmax -> (..., 121): the zero-training breeds' probabilities when the
    features are the mean of the frame, ImageNet's head restricted to breeds, renormalised."""
    breed_mass = imagenet_probs[..., list(BREED_CLASSES)]
    return breed_mass / breed_mass.sum(-1, keepdims=True)


def save_model_file(path: Path, labels: list[BreedLabel], classifier: dict[str, np.ndarray],
                    metrics: dict | None = None, created_at: str = "2026-11-30T10:00:00") -> str:
    """A linear head of the default variant, on its features, saved (atomically) at ``path``;
    its version."""
    artifact = Artifact(DEFAULT_VARIANT, labels, {"hidden": 0, "dropout": 0.2},
                        {"classifier": classifier}, metrics or {}, created_at=created_at,
                        pooling=POOLING[DEFAULT_VARIANT])
    save_artifact(artifact, path)
    return artifact.version
