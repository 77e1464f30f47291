"""Micro-batching: photos from concurrent chats share one predictor call in a worker thread.

The event loop never runs JAX. Each request waits on an asyncio future; one thread takes
whatever has queued up (up to ``max_batch`` photos, waiting at most ``max_wait_s`` for
company), looks at them together (``Predictor.look``: the answer and where each dog is) and
resolves the futures. ``max_batch=1`` turns micro-batching off: one photo a call. The bot
batches up to 8 by default ($WHATBREED_MAX_BATCH; README, "The bot under load").
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from bot.config import DEFAULT_MAX_BATCH
from model.answers import PhotoAnswer
from model.predictor import Predictor
from model.preprocess import ImageError

log = logging.getLogger(__name__)


def serving_predictor(model: str, max_batch: int = DEFAULT_MAX_BATCH, matmul: str = "auto"
                      ) -> Predictor:
    """The predictor the bot serves ``model`` with (``matmul``: see ``Predictor``), compiled
    for what the bot runs (``look`` on up to ``max_batch`` photos) rather than for
    ``classify``, so that no chat waits for a compilation."""
    predictor = Predictor(model, warm_up=False, matmul=matmul)
    started = time.perf_counter()
    predictor.warm_up_look(photos=max_batch)
    log.info("predictor %s compiled for looking in %.1f s", predictor.version,
             time.perf_counter() - started)
    return predictor


@dataclass
class _Request:
    photo_bytes: bytes
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop


class BatchingClassifier:
    def __init__(self, load: Callable[[], Predictor], max_batch: int = DEFAULT_MAX_BATCH,
                 max_wait_s: float = 0.02):
        self._load = load
        self.predictor = load()
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self._queue: queue.Queue[_Request | None] = queue.Queue()
        self._worker = threading.Thread(target=self._serve, name="classifier", daemon=True)
        self._worker.start()

    @property
    def version(self) -> str:
        return self.predictor.version

    async def look(self, photo_bytes: bytes) -> tuple[PhotoAnswer | ImageError, str]:
        """The answer for one photo and each dog in it (or why it cannot be read), and the
        model version used."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.put(_Request(photo_bytes, future, loop))
        return await future

    def reload(self) -> None:
        """Load the model again (a new artifact) and swap it in; requests never wait on it."""
        predictor = self._load()
        self.predictor = predictor  # one reference swap: atomic for the worker thread
        log.info("model reloaded: %s", predictor.version)

    def close(self) -> None:
        self._queue.put(None)
        self._worker.join(timeout=5)

    def _next_batch(self) -> list[_Request] | None:
        first = self._queue.get()
        if first is None:
            return None
        batch = [first]
        deadline = time.monotonic() + self.max_wait_s
        while len(batch) < self.max_batch:
            try:
                request = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if request is None:
                self._queue.put(None)  # stop after this batch
                break
            batch.append(request)
        return batch

    def _serve(self) -> None:
        while (batch := self._next_batch()) is not None:
            predictor = self.predictor
            log.debug("looking at a batch of %d photos", len(batch))
            try:
                results = predictor.look([r.photo_bytes for r in batch])
            except Exception as error:  # never leave a chat waiting forever
                log.exception("looking failed for a batch of %d", len(batch))
                results = [error] * len(batch)
            for request, result in zip(batch, results, strict=True):
                request.loop.call_soon_threadsafe(_resolve, request.future, result,
                                                  predictor.version)


def _resolve(future: asyncio.Future, result: object, version: str) -> None:
    if future.done():  # the handler gave up (cancelled)
        return
    if isinstance(result, Exception) and not isinstance(result, ImageError):
        future.set_exception(result)
    else:
        future.set_result((result, version))
