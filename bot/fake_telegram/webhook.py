"""Delivery to the bot's webhook. While one is set, the pending updates are POSTed to it as
JSON, one at a time and in order, with the ``X-Telegram-Bot-Api-Secret-Token`` header; an
answer other than 2xx (or none) is retried a few times, then the update is dropped, as
Telegram gives up "after a reasonable amount of attempts"."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp

from bot.fake_telegram.state import MAX_LONG_POLL_SECONDS, State, Webhook

logger = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# Seconds before each retry. The first attempt usually fails: python-telegram-bot calls
# setWebhook before its server listens.
RETRY_DELAYS = (0.1, 0.5, 1.0, 2.0, 5.0)
POST_TIMEOUT = aiohttp.ClientTimeout(total=10)


class WebhookDelivery:
    """POSTs the fake's pending updates to the webhook the bot set; ``run`` until it closes."""

    def __init__(self, state: State) -> None:
        self.state = state

    async def run(self) -> None:
        async with aiohttp.ClientSession(timeout=POST_TIMEOUT) as http:
            while True:
                await self.state.signal.wait_until(self._due, MAX_LONG_POLL_SECONDS)
                if self.state.closing:
                    return
                if self._due():
                    await self._deliver(http, self.state.updates[0])

    def _due(self) -> bool:
        state = self.state
        return state.closing or (state.webhook is not None and bool(state.updates))

    async def _deliver(self, http: aiohttp.ClientSession, update: dict[str, Any]) -> None:
        """POST ``update`` until the bot takes it, or drop it after the last retry. A webhook
        deleted meanwhile leaves it to getUpdates; one set again gets it at its new URL."""
        for delay in (0.0, *RETRY_DELAYS):
            await asyncio.sleep(delay)
            webhook = self.state.webhook
            if webhook is None or self.state.closing:
                return
            if await _post(http, webhook, update):
                break
        else:
            attempts = 1 + len(RETRY_DELAYS)
            logger.warning("webhook: gave up on update %s after %d attempts", update["update_id"],
                           attempts)
        self.state.updates[:] = [u for u in self.state.updates if u is not update]


async def _post(http: aiohttp.ClientSession, webhook: Webhook, update: dict[str, Any]) -> bool:
    """Whether the bot took ``update`` (answered 2xx). Redirects are not followed: Telegram
    counts them as failures."""
    headers = {SECRET_HEADER: webhook.secret_token} if webhook.secret_token else {}
    try:
        async with http.post(
            webhook.url, json=update, headers=headers, allow_redirects=False
        ) as response:
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as error:
        logger.info("webhook: update %s not delivered: %r", update["update_id"], error)
        return False
    if 200 <= status < 300:
        return True
    logger.info("webhook: update %s answered %s", update["update_id"], status)
    return False
