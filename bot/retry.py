"""Bot API calls that fail in passing are tried again.

Telegram's 429 is retried after the ``retry_after`` it asks for (PTB's ``AIORateLimiter``);
a 5xx or a lost connection after a backoff of 0.5, 1 and 2 s. A call that timed out is
retried only where doing it twice is harmless: a message whose reply timed out may well have
been delivered, and sending it again would answer twice.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from telegram.error import BadRequest, NetworkError, TimedOut
from telegram.ext import AIORateLimiter

log = logging.getLogger(__name__)

BACKOFF_S = (0.5, 1.0, 2.0)
RETRIES_AFTER_429 = 3
# Not messages, so outside Telegram's 30 messages a second: in a rush of 100 photos, their 100
# "typing…" would otherwise take the budget's first 2.3 s and the answers queue behind them
# (README, "The bot under load"). A refused one costs only the "typing…".
NOT_RATE_LIMITED = frozenset({"sendChatAction"})
# Methods whose second call changes nothing the user sees.
SAFE_TO_REPEAT = frozenset({"getMe", "getFile", "sendChatAction", "setMyCommands", "setWebhook",
                            "deleteWebhook"})


def worth_retrying(error: NetworkError, endpoint: str) -> bool:
    """A passing failure (5xx, lost connection), and one whose retry cannot answer twice."""
    if isinstance(error, BadRequest):  # PTB's BadRequest is a NetworkError too: our mistake
        return False
    return not isinstance(error, TimedOut) or endpoint in SAFE_TO_REPEAT


class RetryingRateLimiter(AIORateLimiter):
    """Telegram's rate limits (PTB's limiter, ``limits`` its arguments) for all but chat
    actions, and retries of calls that failed in passing."""

    def __init__(self, backoff_s: tuple[float, ...] = BACKOFF_S, **limits: float) -> None:
        super().__init__(max_retries=RETRIES_AFTER_429, **limits)
        self.backoff_s = backoff_s

    async def process_request(self, callback: Callable[..., Coroutine[Any, Any, Any]],
                              args: Any, kwargs: dict[str, Any], endpoint: str,
                              data: dict[str, Any], rate_limit_args: Any) -> Any:
        once = (functools.partial(callback, *args, **kwargs) if endpoint in NOT_RATE_LIMITED
                else functools.partial(super().process_request, callback, args, kwargs,
                                       endpoint, data, rate_limit_args))
        for delay in self.backoff_s:
            try:
                return await once()
            except NetworkError as error:
                if not worth_retrying(error, endpoint):
                    raise
                log.warning("%s failed (%s): again in %.1f s", endpoint, error, delay)
                await asyncio.sleep(delay)
        return await once()
