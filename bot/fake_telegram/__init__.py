"""A small stand-in for the Telegram Bot API: the local playground and end-to-end tests use it.

``FakeTelegram`` is an aiohttp server that keeps everything in memory. It serves three things:

* the Bot API under ``/bot<token>/<method>`` and file downloads under ``/file/bot<token>/<path>``,
  with the request and reply shapes of the real API, so the real python-telegram-bot
  ``Application`` talks to it unchanged (``ApplicationBuilder().base_url(fake.base_url)
  .base_file_url(fake.base_file_url)``);
* a control API under ``/api/`` through which the playground page (``GET /``) and tests in
  another process act as Telegram users: send text, photos and files, press inline buttons and
  read the chat transcript;
* the same user actions as Python methods (``send_text``, ``send_photo``, ``press_button``,
  ``wait_for`` ...) for in-process tests.

Like Telegram it trims message text, parses ``parse_mode=HTML`` into entities (and rejects
malformed markup with Telegram's errors), detects ``/commands`` and URLs, re-encodes photos as
JPEG (longest side 1280, plus a 90 px thumbnail), refuses ``getFile`` above 20 MB, drops an
inline keyboard when an edit does not repeat it, and answers a repeated or identical edit with
"message is not modified". While the bot has a webhook (``setWebhook``), its updates are POSTed
there with the secret-token header and retried a few times, and getUpdates answers 409. Only what
the bot uses is implemented: any other method answers 404 naming it, and another parse mode,
reply markup or a resend by file_id is refused by name.

One job per module, each importing only those above it:

* ``errors``   the Bot API's error reply
* ``entities`` message text: HTML markup to entities, trimming, /commands and URLs
* ``media``    photo re-encoding and thumbnails
* ``params``   request parameters (query string, JSON, form, multipart)
* ``faults``   Telegram's hiccups on demand: 429, 5xx, a dropped connection, a late answer
* ``state``    the bot's account, chats, messages, files, updates; the long-poll signal
* ``users``    users' actions and reading the chats (``ChatSpec``, ``UserSpec``)
* ``bot_api``  the Bot API methods, ``/bot<token>/<method>``
* ``webhook``  delivery of the updates to the bot's webhook, while it has one
* ``control``  the playground page and its ``/api/`` control API
* ``server``   ``FakeTelegram``: the users plus the server wiring both APIs and the delivery
* ``__main__`` ``python -m bot.fake_telegram --port 8081`` serves the playground on its own

The bot imports this package only when it runs without a token (``python -m bot``).
"""

from bot.fake_telegram.server import FakeTelegram
from bot.fake_telegram.users import ChatSpec, UserSpec

__all__ = ["ChatSpec", "FakeTelegram", "UserSpec"]
