"""All the wiring in one place: services, handlers, commands, and the two ways to run."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from telegram import BotCommand
from telegram.error import Conflict, TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    filters,
)

from bot import handlers
from bot.breeds import BreedIndex
from bot.config import Settings, Webhook
from bot.handlers import Services
from bot.inference import BatchingClassifier, serving_predictor
from bot.ratelimit import RateLimiter
from bot.retry import RetryingRateLimiter
from bot.storage import Store
from model.compile_cache import use_compilation_cache

log = logging.getLogger(__name__)

COMMANDS = [
    ("start", "what I do"),
    ("help", "how to use me"),
    ("correct", "reply to my answer: /correct breed"),
    ("breeds", "the breeds I know: /breeds [filter]"),
    ("about", "the model and its accuracy"),
    ("forget", "delete your photos and corrections"),
    ("event", "host an adoption event: /event name"),
    ("stats", "numbers for your event"),
    ("export", "a CSV of your event"),
]

NEWCOMER_S = 30.0  # see second_poller
ALLOWED_UPDATES = ["message", "callback_query"]  # what the handlers take, polled or POSTed
PHOTO = filters.PHOTO | filters.Document.IMAGE
NOT_A_PHOTO = (filters.Document.ALL | filters.Sticker.ALL | filters.VIDEO | filters.ANIMATION
               | filters.VIDEO_NOTE) & ~filters.Document.IMAGE


def make_services(settings: Settings) -> Services:
    store = Store(settings.database_url, settings.photo_dir, settings.user_salt,
                  settings.feature_cache)
    use_compilation_cache(settings.compile_cache)
    classifier = BatchingClassifier(
        lambda: serving_predictor(settings.model.to_load(), settings.max_batch,
                                  settings.matmul),
        max_batch=settings.max_batch)
    breeds = BreedIndex.build(classifier.predictor.breeds, store.known_new_breeds())
    return Services(store, classifier, breeds, RateLimiter())


def build_application(token: str, services: Services, base_url: str | None = None,
                      base_file_url: str | None = None) -> Application:
    """The bot: python-telegram-bot Application with every handler registered."""
    builder = (ApplicationBuilder().token(token).rate_limiter(RetryingRateLimiter())
               .concurrent_updates(True))
    if base_url:
        builder = builder.base_url(base_url).base_file_url(base_file_url or base_url)
    application = builder.build()
    application.bot_data["services"] = services
    for name, callback in [("start", handlers.start), ("help", handlers.help_command),
                           ("correct", handlers.correct), ("breeds", handlers.breeds_command),
                           ("about", handlers.about), ("forget", handlers.forget),
                           ("event", handlers.event), ("stats", handlers.stats),
                           ("export", handlers.export)]:
        application.add_handler(CommandHandler(name, callback))
    application.add_handler(MessageHandler(PHOTO, handlers.photo))
    application.add_handler(MessageHandler(NOT_A_PHOTO, handlers.not_a_photo))
    application.add_handler(MessageHandler(
        filters.TEXT & ~filters.COMMAND & filters.ChatType.PRIVATE, handlers.text_message))
    application.add_handler(CallbackQueryHandler(handlers.button))
    application.add_error_handler(handlers.error)
    return application


@contextlib.asynccontextmanager
async def running(application: Application, webhook: Webhook | None = None,
                  **polling) -> AsyncIterator[Application]:
    """Register the command menu and take updates: long polling, or at ``webhook``; stop
    cleanly on exit, or when they cannot be taken (a refused webhook, a busy port)."""
    async with application:
        await application.bot.set_my_commands([BotCommand(c, d) for c, d in COMMANDS])
        await application.start()
        try:
            await receive_updates(application, webhook, **polling)
            yield application
        finally:
            if application.updater.running:
                await application.updater.stop()
            await application.stop()


async def receive_updates(application: Application, webhook: Webhook | None, **polling) -> None:
    if webhook is None:
        await application.updater.start_polling(allowed_updates=ALLOWED_UPDATES, **polling)
        return
    # PTB calls setWebhook, then serves the path on listen:port and answers 403 to a request
    # without the secret in X-Telegram-Bot-Api-Secret-Token. It reads the path as a regular
    # expression, hence re.escape.
    await application.updater.start_webhook(
        listen=webhook.listen, port=webhook.port, url_path=re.escape(webhook.path),
        webhook_url=webhook.url, secret_token=webhook.secret, allowed_updates=ALLOWED_UPDATES)
    log.info("webhook %s: serving %s on %s:%d", webhook.url, webhook.path, webhook.listen,
             webhook.port)


async def reload_model(services: Services) -> None:
    """Load the model again off the event loop, then refresh the breed names it knows."""
    try:
        await asyncio.to_thread(services.classifier.reload)
    except Exception:  # a broken new file must not take the running bot down
        log.exception("model reload failed; still serving %s", services.classifier.version)
        return
    await services.refresh_breeds()


class ModelFile:
    """A model file the bot watches. Made before the model is loaded, so that a file replaced
    while the bot starts still counts as new."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen = self._stamp()

    def _stamp(self) -> tuple[int, int, int] | None:
        # os.replace gives the path another inode; mtime and size catch a rewrite in place.
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return None
        return stat.st_ino, stat.st_mtime_ns, stat.st_size

    def changed(self) -> str | None:
        """"new" when the file appeared or changed since the last look, "gone" when it was
        removed, else None."""
        stamp, seen = self._stamp(), self._seen
        self._seen = stamp
        if stamp == seen:
            return None
        return "gone" if stamp is None else "new"


async def watch_model_file(model_file: ModelFile, services: Services,
                           every_s: float = 5.0) -> None:
    """Reload when the model file appears, is replaced (atomically, by training or a
    promotion), or is removed (a rollback of the first promotion): the reload loads what the
    settings say now, the zero-training model where the file was only preferred, and keeps
    serving the old model where the file was required."""
    while True:
        await asyncio.sleep(every_s)
        if change := model_file.changed():
            log.info("%s is %s: reloading the model", model_file.path, change)
            await reload_model(services)


async def serve(application: Application, stop: asyncio.Event,
                model_file: ModelFile | None = None, webhook: Webhook | None = None) -> None:
    """Run until ``stop`` is set or SIGINT/SIGTERM, polling or at ``webhook``. The model
    reloads without a restart on SIGHUP, and whenever ``model_file`` is new. Started while
    another process polls with the same token, it raises telegram.error.Conflict."""
    loop = asyncio.get_running_loop()
    services = application.bot_data["services"]
    tasks: set[asyncio.Task] = set()  # keep references: the loop holds tasks only weakly

    def spawn(coroutine) -> None:
        task = loop.create_task(coroutine)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    loop.add_signal_handler(signal.SIGHUP, lambda: spawn(reload_model(services)))
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if model_file is not None:
        spawn(watch_model_file(model_file, services))
    refused: list[Conflict] = []
    polling = {} if webhook else {"error_callback": second_poller(refused, stop)}
    async with running(application, webhook, **polling):
        log.info("bot @%s is running", application.bot.username)
        await stop.wait()
    for task in list(tasks):
        task.cancel()
    if refused:
        raise refused[0]


def second_poller(refused: list[Conflict], stop: asyncio.Event
                  ) -> Callable[[TelegramError], None]:
    """PTB's polling error callback. Telegram serves one poller a token and ends the older
    request with 409 Conflict. Met within NEWCOMER_S of starting, that means another process
    was polling first: this one records it in ``refused`` and stops. An older poller logs the
    conflict and polls on (the newcomer leaves, and its last request also ends ours). Made as
    polling starts."""
    loop = asyncio.get_running_loop()
    started = loop.time()

    def polling_failed(error: TelegramError) -> None:
        if isinstance(error, Conflict) and loop.time() - started < NEWCOMER_S:
            refused.append(error)
            stop.set()
        else:  # PTB tries again
            log.error("polling for updates failed: %s", error)

    return polling_failed
