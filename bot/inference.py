"""Micro-batching: photos from concurrent chats share one predictor call in a worker thread.

The event loop never runs JAX. Each request waits on an asyncio future; one thread takes
whatever has queued up (up to ``max_batch`` photos, waiting at most ``max_wait_s`` for
company), classifies them together and resolves the futures. ``max_batch=1`` turns
micro-batching off: one photo per call, as ``scripts/loadtest.py`` compares.
"""

from __future__ import annotations

import asyncio
import io
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image

from model.answers import Answer
from model.predictor import BATCH_SIZES, Predictor
from model.preprocess import ImageError

log = logging.getLogger(__name__)


@dataclass
class _Request:
    photo_bytes: bytes
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop


def infer(predictor: Predictor, photos: list[bytes]) -> list:
    """What the bot asks of the model for a batch of photos; the warm-up runs it too."""
    return predictor.classify(photos)


class BatchingClassifier:
    """``warm_up`` runs ``infer`` on blank photos at every batch shape the worker can form
    before a model serves, at start and on reload, so that no user waits for compilation."""

    def __init__(self, load: Callable[[], Predictor], max_batch: int = 8,
                 max_wait_s: float = 0.02, warm_up: bool = False):
        self._load = load
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.warm_up = warm_up
        self.predictor = self._loaded()
        self._queue: queue.Queue[_Request | None] = queue.Queue()
        self._worker = threading.Thread(target=self._serve, name="classifier", daemon=True)
        self._worker.start()

    @property
    def version(self) -> str:
        return self.predictor.version

    async def classify(self, photo_bytes: bytes) -> tuple[Answer | ImageError, str]:
        """The answer for one photo (or why it cannot be read), and the model version used."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.put(_Request(photo_bytes, future, loop))
        return await future

    def reload(self) -> None:
        """Load the model again (a new artifact) and swap it in; requests never wait on it."""
        predictor = self._loaded()
        self.predictor = predictor  # one reference swap: atomic for the worker thread
        log.info("model reloaded: %s", predictor.version)

    def _loaded(self) -> Predictor:
        predictor = self._load()
        if self.warm_up:
            started = time.perf_counter()
            # Batches of 1 to max_batch photos, padded up to the compiled sizes.
            for size in sorted({1, self.max_batch} | {s for s in BATCH_SIZES
                                                     if s < self.max_batch}):
                infer(predictor, [_BLANK_PHOTO] * size)
            log.info("warmed up %s in %.1f s", predictor.version, time.perf_counter() - started)
        return predictor

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
            log.debug("classifying a batch of %d photos", len(batch))
            try:
                results = infer(predictor, [r.photo_bytes for r in batch])
            except Exception as error:  # never leave a chat waiting forever
                log.exception("classification failed for a batch of %d", len(batch))
                results = [error] * len(batch)
            for request, result in zip(batch, results, strict=True):
                request.loop.call_soon_threadsafe(_resolve, request.future, result,
                                                  predictor.version)


def _blank_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (640, 480), "gray").save(buffer, "JPEG")
    return buffer.getvalue()


_BLANK_PHOTO = _blank_jpeg()


def _resolve(future: asyncio.Future, result: object, version: str) -> None:
    if future.done():  # the handler gave up (cancelled)
        return
    if isinstance(result, Exception) and not isinstance(result, ImageError):
        future.set_exception(result)
    else:
        future.set_result((result, version))
