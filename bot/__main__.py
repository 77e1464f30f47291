"""python -m bot: the Telegram bot with $TELEGRAM_BOT_TOKEN, else the local playground."""

import argparse
import asyncio
import errno
import logging
import os
import sys

from telegram.error import TelegramError

from bot.app import ModelFile, build_application, make_services, serve
from bot.config import Settings
from bot.handlers import Services
from model.artifact import ArtifactError

log = logging.getLogger("bot")


class StartupError(Exception):
    """Something the user can fix before the bot can start; str(error) says what."""


class RedactToken(logging.Filter):
    """Keep the bot token out of every log line (httpx logs request URLs, which contain it)."""

    def __init__(self, token: str):
        super().__init__()
        self.token = token

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.token in message:
            record.msg, record.args = message.replace(self.token, "<token>"), None
        if record.exc_info:  # exception texts quote URLs and tokens too
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = text.replace(self.token, "<token>")
        return True


def redact_in_logs(token: str) -> None:
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactToken(token))


async def run(settings: Settings, port: int) -> None:
    # Looked at before the model loads: a file promoted meanwhile is loaded once the bot runs.
    model_file = ModelFile(path) if (path := settings.model.watched) else None
    services = make_services(settings)
    try:
        if settings.token:
            api = settings.api_url
            application = build_application(settings.token, services, api and f"{api}/bot",
                                            api and f"{api}/file/bot")
            await serve(application, asyncio.Event(), model_file)
        else:
            await run_playground(services, port, model_file)
    finally:
        services.classifier.close()
        services.store.close()


async def run_playground(services: Services, port: int, model_file: ModelFile | None) -> None:
    """The real bot against a local stand-in of the Bot API, with its chat page."""
    from bot.fake_telegram import FakeTelegram  # here: with a token, the stand-in is never loaded

    fake = FakeTelegram()
    redact_in_logs(fake.token)
    try:
        await fake.start(port=port)
    except OSError as error:
        await fake.stop()
        why = "it is in use" if error.errno == errno.EADDRINUSE else str(error)
        raise StartupError(f"cannot serve the playground on port {port}: {why}; "
                           "pass --port or set PORT") from error
    print(f"No TELEGRAM_BOT_TOKEN: playground at {fake.url} (Ctrl-C stops)", flush=True)
    try:
        await serve(build_application(fake.token, services, fake.base_url, fake.base_file_url),
                    asyncio.Event(), model_file)
    finally:
        await fake.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bot", description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", 8080)),
                        help="playground port on 127.0.0.1 (without a token)")
    args = parser.parse_args()
    settings = Settings.from_env()
    level = os.environ.get("WHATBREED_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if level != "DEBUG":  # httpx logs every request URL; only debugging needs that
        logging.getLogger("httpx").setLevel(logging.WARNING)
    if settings.token:
        redact_in_logs(settings.token)
    try:
        asyncio.run(run(settings, args.port))
    except (ArtifactError, StartupError) as error:  # e.g. a bad WHATBREED_MODEL, a busy port
        sys.exit(f"error: {error}")
    except TelegramError as error:  # e.g. a revoked token; PTB's message quotes the token
        message = str(error).replace(settings.token or "\0", "<token>")
        sys.exit(f"error: cannot start the bot: {message}")


if __name__ == "__main__":
    main()
