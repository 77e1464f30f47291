"""``FakeTelegram``: the users' side of the fake plus the aiohttp server that answers the bot
(``BotApi``) and the playground page (``ControlApi``), and the delivery to the bot's webhook
(``WebhookDelivery``); every route is wired here."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiohttp import web

from bot.fake_telegram.bot_api import BotApi
from bot.fake_telegram.control import ControlApi
from bot.fake_telegram.state import BotAccount, State
from bot.fake_telegram.users import Users
from bot.fake_telegram.webhook import WebhookDelivery

logger = logging.getLogger(__name__)

MAX_REQUEST_SIZE = 52 * 1024 * 1024  # bots may upload 50 MB; a little room for the form


class FakeTelegram(Users):
    """An in-memory Telegram Bot API server plus a web playground; see the package docstring.

    Tests act as users through the ``Users`` methods (``send_photo``, ``press_button``,
    ``wait_for`` ...); ``group_privacy`` is explained on ``BotAccount``.
    """

    def __init__(
        self,
        token: str = "123456:playground",
        bot_username: str = "WhatBreedBot",
        bot_name: str = "WhatBreed",
        *,
        group_privacy: bool = False,
    ) -> None:
        super().__init__(State(BotAccount(token, bot_username, bot_name, group_privacy)))
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._delivery: asyncio.Task | None = None

    @property
    def token(self) -> str:
        return self.state.bot.token

    @property
    def base_url(self) -> str:
        """For ``ApplicationBuilder().base_url(...)``: PTB appends the token."""
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        """For ``ApplicationBuilder().base_file_url(...)``: PTB appends the token."""
        return f"{self.url}/file/bot"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Serve on ``host:port``; port 0 picks a free port (read it from ``url``)."""
        self.state.closing = False
        self._runner = web.AppRunner(self._make_app(), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        bound_port = self._runner.addresses[0][1]
        self.url = f"http://{host}:{bound_port}"
        self._delivery = asyncio.create_task(WebhookDelivery(self.state).run())
        logger.info("fake Telegram serving on %s (playground at %s/)", self.url, self.url)

    async def stop(self) -> None:
        """Release waiting long polls, stop delivering and stop serving."""
        self.state.closing = True
        self.state.signal.notify()
        if self._delivery is not None:
            self._delivery.cancel()  # it may be waiting on the bot's webhook
            with contextlib.suppress(asyncio.CancelledError):
                await self._delivery
            self._delivery = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        logger.info("fake Telegram stopped")

    async def __aenter__(self) -> FakeTelegram:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def _make_app(self) -> web.Application:
        bot_api, control = BotApi(self.state), ControlApi(self)
        app = web.Application(client_max_size=MAX_REQUEST_SIZE)
        app.router.add_route("*", "/bot{token}/{method}", bot_api.handle)
        app.router.add_get("/file/bot{token}/{file_path:.+}", bot_api.download)
        app.router.add_get("/", control.page)
        app.router.add_get("/api/me", control.me)
        app.router.add_post("/api/send", control.send)
        app.router.add_post("/api/press", control.press)
        app.router.add_get("/api/messages", control.messages)
        app.router.add_get("/api/commands", control.commands)
        app.router.add_get("/files/{file_id}", control.file)
        return app
