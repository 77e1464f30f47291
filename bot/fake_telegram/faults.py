"""Telegram's hiccups on demand, for tests of how the bot copes: the next calls of a Bot API
method answer 429 with ``retry_after``, answer 500 or 502, lose the connection before doing
anything, or do the work and answer too late (after the client gave up: the delivered message
whose reply timed out, which a blind retry would send twice)."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, deque
from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.fake_telegram.errors import ApiError

logger = logging.getLogger(__name__)

KINDS = ("429", "500", "502", "drop", "late")
LATE_SECONDS = 6.0  # past python-telegram-bot's 5 s read timeout


class Faults:
    """Queued faults per Bot API method (case-insensitive), each taken by one call."""

    def __init__(self) -> None:
        self._queued: dict[str, deque[str]] = {}
        self.applied: Counter[str] = Counter()  # "method kind" -> how many calls got it

    def add(self, method: str, kind: str, times: int = 1) -> None:
        if kind not in KINDS:
            raise ValueError(f"fault must be one of {KINDS}, not {kind!r}")
        self._queued.setdefault(method.lower(), deque()).extend([kind] * times)

    def take(self, method: str) -> str | None:
        queue = self._queued.get(method.lower())
        if not queue:
            return None
        kind = queue.popleft()
        self.applied[f"{method} {kind}"] += 1
        logger.info("%s: injected fault %s", method, kind)
        return kind

    async def answer(self, kind: str, request: web.Request,
                     run: Callable[[], Awaitable[web.Response]]) -> web.StreamResponse:
        """The reply to a call that got fault ``kind``; ``run`` performs the call."""
        if kind == "429":
            return web.json_response({"ok": False, "error_code": 429,
                                      "description": "Too Many Requests: retry after 1",
                                      "parameters": {"retry_after": 1}}, status=429)
        if kind in ("500", "502"):
            return ApiError("Internal Server Error" if kind == "500" else "Bad Gateway",
                            int(kind)).response()
        if kind == "drop":
            request.transport.close()  # the client sees the connection end without a reply
            return web.Response()
        response = await run()  # "late": done, then answered after the client gave up
        await asyncio.sleep(LATE_SECONDS)
        return response
