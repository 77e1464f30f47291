"""python -m bot: the Telegram bot with $TELEGRAM_BOT_TOKEN, else the local playground."""

import argparse
import asyncio
import errno
import logging
import os
import sys
from typing import NoReturn
from urllib.parse import quote

from telegram.error import Conflict, TelegramError
from telegram.ext import Application

from bot.app import ModelFile, build_application, make_services, serve
from bot.config import ConfigError, Settings, Webhook
from bot.handlers import Services
from model.artifact import ArtifactError

log = logging.getLogger("bot")


class StartupError(Exception):
    """Something the user can fix before the bot can start; str(error) says what."""


class Redact(logging.Filter):
    """Keep a secret out of every log line: the bot token (httpx logs request URLs, which
    contain it, URL-encoded in file downloads) or the webhook secret (PTB logs setWebhook's
    parameters at DEBUG)."""

    def __init__(self, secret: str, placeholder: str):
        super().__init__()
        self.forms = {secret, quote(secret, safe="")}
        self.placeholder = placeholder

    def redact(self, text: str) -> str:
        for form in self.forms:
            text = text.replace(form, self.placeholder)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if (redacted := self.redact(message)) != message:
            record.msg, record.args = redacted, None
        if record.exc_info:  # exception texts quote URLs and tokens too
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
        return True


def redact_in_logs(secret: str, placeholder: str = "<token>") -> None:
    for handler in logging.getLogger().handlers:
        handler.addFilter(Redact(secret, placeholder))


def cannot_listen(what: str, error: OSError, hint: str) -> StartupError:
    why = "it is in use" if error.errno == errno.EADDRINUSE else str(error)
    return StartupError(f"cannot {what}: {why}; {hint}")


async def run(settings: Settings, port: int) -> None:
    # Looked at before the model loads: a file promoted meanwhile is loaded once the bot runs.
    model_file = ModelFile(path) if (path := settings.model.watched) else None
    services = make_services(settings)
    try:
        if settings.token:
            api = settings.api_url
            application = build_application(settings.token, services, api and f"{api}/bot",
                                            api and f"{api}/file/bot")
            await run_bot(application, model_file, settings.webhook)
        else:
            await run_playground(services, port, model_file, settings.webhook)
    finally:
        services.classifier.close()
        services.store.close()


async def run_bot(application: Application, model_file: ModelFile | None,
                  webhook: Webhook | None) -> None:
    """``serve``, with a webhook port that cannot be had as a StartupError."""
    try:
        await serve(application, asyncio.Event(), model_file, webhook)
    except OSError as error:  # only the webhook server binds a port
        if webhook is None:
            raise
        raise cannot_listen(f"serve the webhook on {webhook.listen}:{webhook.port}", error,
                            "set WEBHOOK_LISTEN or WEBHOOK_PORT") from error


async def run_playground(services: Services, port: int, model_file: ModelFile | None,
                         webhook: Webhook | None) -> None:
    """The real bot against a local stand-in of the Bot API, with its chat page."""
    from bot.fake_telegram import FakeTelegram  # here: with a token, the stand-in is never loaded

    fake = FakeTelegram()
    redact_in_logs(fake.token)
    try:
        await fake.start(port=port)
    except OSError as error:
        await fake.stop()
        raise cannot_listen(f"serve the playground on port {port}", error,
                            "pass --port or set PORT") from error
    print(f"No TELEGRAM_BOT_TOKEN: playground at {fake.url} (Ctrl-C stops)", flush=True)
    try:
        await run_bot(build_application(fake.token, services, fake.base_url,
                                        fake.base_file_url), model_file, webhook)
    finally:
        await fake.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bot", description=__doc__)
    # A string default goes through type=int like a command-line value, so a bad $PORT is
    # argparse's one-line error, not a traceback.
    parser.add_argument("--port", type=int, default=os.environ.get("PORT", "8080"),
                        help="playground port on 127.0.0.1 (without a token; default $PORT "
                             "or 8080)")
    args = parser.parse_args()
    try:
        settings = Settings.from_env()
    except ConfigError as error:  # exit 2, as argparse does for a bad command line
        exit_with(str(error), os.environ.get("TELEGRAM_BOT_TOKEN"), status=2)
    level = os.environ.get("WHATBREED_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if level != "DEBUG":  # httpx logs every request URL; only debugging needs that
        logging.getLogger("httpx").setLevel(logging.WARNING)
    if settings.token:
        redact_in_logs(settings.token)
    if settings.webhook:
        redact_in_logs(settings.webhook.secret, "<webhook secret>")
    try:
        asyncio.run(run(settings, args.port))
    except (ArtifactError, StartupError) as error:  # e.g. a bad WHATBREED_MODEL, a busy port
        exit_with(str(error), settings.token)
    except Conflict as error:  # Telegram serves one poller a token
        exit_with(f"another process is polling with this token ({error}); run one, or several "
                  "behind a webhook (WEBHOOK_URL)", settings.token)
    except TelegramError as error:  # e.g. a revoked token, a webhook Telegram refuses
        exit_with(f"cannot start the bot: {error}", settings.token)


def exit_with(message: str, token: str | None, status: int = 1) -> NoReturn:
    """One ``error:`` line on stderr, no traceback. Messages may quote URLs, hence the token
    redacted (PTB's quote it, and a WEBHOOK_URL may hold it)."""
    print(f"error: {Redact(token, '<token>').redact(message) if token else message}",
          file=sys.stderr)
    sys.exit(status)


if __name__ == "__main__":
    main()
