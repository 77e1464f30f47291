"""Everything the fake remembers, in memory: the bot's account, the chats and their messages,
stored files, pending updates, the webhook and command menus; and the signal that wakes whoever
waits for a change (the bot's long poll or webhook delivery, the page's, a test's ``wait_for``)."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import mimetypes
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.fake_telegram.errors import bad_request
from bot.fake_telegram.faults import Faults
from bot.fake_telegram.media import photo_variants

MAX_LONG_POLL_SECONDS = 120.0  # the bot's getUpdates and the page's /api/messages alike
_FILE_ID_PREFIXES = {"photo": "AgAC", "document": "BQAC", "sticker": "CAAC", "video": "BAAC"}
_FILE_FOLDERS = {"photo": "photos", "document": "documents", "sticker": "stickers",
                 "video": "videos"}


@dataclass(frozen=True)
class BotAccount:
    """The bot as Telegram knows it.

    ``group_privacy=True`` is Telegram's privacy mode (its default for new bots): in groups the
    bot gets only commands, replies to its own messages and messages naming it. Off, it gets
    every message, as when privacy mode is off or the bot is an admin. Only the fake's own test
    turns it on; it stays because it is Telegram's default, under which photos posted in a
    group never reach the bot, and a test of the bot in groups must be able to say so.
    """

    token: str
    username: str
    name: str
    group_privacy: bool = False

    @property
    def id(self) -> int:
        head = self.token.split(":", 1)[0]
        return int(head) if head.isdigit() else 123456

    def user(self, *, full: bool = False) -> dict[str, Any]:
        """The Bot API ``User``; ``full`` adds the fields only ``getMe`` returns."""
        user: dict[str, Any] = {
            "id": self.id, "is_bot": True, "first_name": self.name, "username": self.username,
        }
        if full:
            user.update(
                can_join_groups=True,
                can_read_all_group_messages=not self.group_privacy,
                supports_inline_queries=False,
                can_connect_to_business=False,
                has_main_web_app=False,
            )
        return user


@dataclass(frozen=True)
class Webhook:
    """The bot's webhook as setWebhook set it: while there is one, pending updates are POSTed
    to ``url`` and getUpdates is refused, as in Telegram."""

    url: str
    secret_token: str | None  # sent in the X-Telegram-Bot-Api-Secret-Token header
    allowed_updates: list[str] | None


@dataclass
class StoredFile:
    kind: str  # photo | document | sticker | video
    file_id: str
    file_unique_id: str
    data: bytes
    mime_type: str
    file_path: str  # what getFile answers and /file/bot<token>/<file_path> serves
    file_name: str | None = None


@dataclass
class Message:
    data: dict[str, Any]  # exactly the Bot API Message
    from_bot: bool
    version: int = 0  # State.version when it last changed


@dataclass
class Chat:
    api: dict[str, Any]  # the Bot API Chat
    chat_instance: str
    messages: dict[int, Message] = field(default_factory=dict)
    next_message_id: int = 1
    changed: int = 0  # version of the last change of anything in this chat
    last_user_action: int = 0  # version when a user last sent or pressed something
    last_bot_message: int = 0  # version of the bot's last new message
    history: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # bot snapshots
    answers: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # callback answers
    action: tuple[str, float, int] | None = None  # (action, monotonic time, version)

    @property
    def id(self) -> int:
        return int(self.api["id"])


class Signal:
    """Wakes every waiter whenever the fake's state changes.

    Plays the part of an ``asyncio.Condition`` whose ``notify_all`` may be called from plain
    (non-async) code, which the test-facing helpers are: each waiter re-checks its own predicate.
    """

    def __init__(self) -> None:
        self._event: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def notify(self) -> None:
        """Wake all current waiters (safe from another thread too)."""
        event, self._event = self._event, None
        if event is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if self._loop is not None and running is not self._loop:
            self._loop.call_soon_threadsafe(event.set)
        else:
            event.set()

    async def wait_until(self, ready: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``ready()`` is true (True) or ``timeout`` seconds pass (False)."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # an Event belongs to the loop that first awaited it
            self._loop, self._event = loop, None
        deadline = loop.time() + max(timeout, 0.0)
        while not ready():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            if self._event is None:
                self._event = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event.wait(), remaining)
        return True


class State:
    """The fake's memory. Every change bumps ``version`` and wakes the ``signal``."""

    def __init__(self, bot: BotAccount) -> None:
        self.bot = bot
        self.chats: dict[int, Chat] = {}
        self.files: dict[str, StoredFile] = {}
        self.files_by_path: dict[str, StoredFile] = {}
        self.updates: list[dict[str, Any]] = []  # not yet acknowledged or delivered
        self.webhook: Webhook | None = None
        self.next_update_id = 1
        self.pending_queries: dict[str, int] = {}  # callback query id -> chat id, until answered
        self.command_sets: dict[tuple[str, str], list[dict[str, str]]] = {}  # (scope, language)
        self.commands: list[dict[str, str]] = []  # the list the bot set last
        self.chat_actions: list[tuple[int, str]] = []  # (chat id, action), every one sent
        self.callback_answers: dict[str, dict[str, Any]] = {}  # query id -> text, show_alert
        self.faults = Faults()  # what tests make the next calls of a method suffer
        self.version = 0
        self.closing = False  # set on stop: every waiter returns
        self.signal = Signal()

    def changed(self) -> int:
        """Count a change and wake the waiters; the new version."""
        self.version += 1
        self.signal.notify()
        return self.version

    def push_update(self, payload: dict[str, Any]) -> None:
        """Queue an update for the bot's getUpdates, or its webhook."""
        self.updates.append({"update_id": self.next_update_id, **payload})
        self.next_update_id += 1
        self.signal.notify()

    def add_message(
        self,
        chat: Chat,
        sender: dict[str, Any],
        content: dict[str, Any],
        reply: Message | None,
        markup: dict[str, Any] | None,
        *,
        from_bot: bool,
    ) -> Message:
        data: dict[str, Any] = {
            "message_id": chat.next_message_id,
            "from": sender,
            "chat": dict(chat.api),
            "date": int(time.time()),
            **content,
        }
        if reply is not None:
            data["reply_to_message"] = {
                k: copy.deepcopy(v) for k, v in reply.data.items() if k != "reply_to_message"
            }
        if markup is not None:
            data["reply_markup"] = markup
        chat.next_message_id += 1
        message = Message(data=data, from_bot=from_bot)
        chat.messages[data["message_id"]] = message
        self.record_change(chat, message)
        if from_bot:
            chat.last_bot_message = message.version
        return message

    def record_change(self, chat: Chat, message: Message | None = None) -> int:
        """Count a change in ``chat`` (to ``message``); keeps every version of the bot's."""
        version = self.changed()
        chat.changed = version
        if message is not None:
            message.version = version
            if message.from_bot:
                chat.history.append((version, export(message)))
        return version

    def store_file(
        self, kind: str, data: bytes, mime_type: str, file_name: str | None = None
    ) -> StoredFile:
        file_id = _FILE_ID_PREFIXES[kind] + secrets.token_urlsafe(48)
        unique_id = "AQAD" + secrets.token_urlsafe(9)
        extension = Path(file_name or "").suffix or mimetypes.guess_extension(mime_type) or ".bin"
        if kind == "photo":
            extension = ".jpg"
        path = f"{_FILE_FOLDERS[kind]}/file_{len(self.files)}{extension}"
        stored = StoredFile(kind, file_id, unique_id, data, mime_type, path, file_name)
        self.files[file_id] = stored
        self.files_by_path[path] = stored
        return stored

    def store_photo(self, data: bytes) -> list[dict[str, Any]]:
        """Keep a photo's sizes; the PhotoSize array, smallest first."""
        sizes = []
        for variant, width, height in photo_variants(data):
            stored = self.store_file("photo", variant, "image/jpeg")
            sizes.append(
                {
                    "file_id": stored.file_id,
                    "file_unique_id": stored.file_unique_id,
                    "width": width,
                    "height": height,
                    "file_size": len(variant),
                }
            )
        return sizes


def export(message: Message) -> dict[str, Any]:
    """A copy of the Message plus ``_version`` and, for media, ``_file_url`` (for the page)."""
    exported = copy.deepcopy(message.data)
    exported["_version"] = message.version
    url = _file_url(message.data)
    if url is not None:
        exported["_file_url"] = url
    return exported


def document_api(stored: StoredFile) -> dict[str, Any]:
    """The Bot API ``Document`` of a stored file."""
    document = {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id}
    if stored.file_name:
        document["file_name"] = stored.file_name
    return {**document, "mime_type": stored.mime_type, "file_size": len(stored.data)}


def scope_key(scope: Any) -> str:
    """A BotCommandScope as a key of ``State.command_sets``."""
    if not scope:
        scope = {"type": "default"}
    if not isinstance(scope, dict) or "type" not in scope:
        raise bad_request("can't parse BotCommandScope JSON object")
    scope = dict(scope)
    with contextlib.suppress(KeyError, TypeError, ValueError):
        scope["chat_id"] = int(scope["chat_id"])
    return json.dumps(scope, sort_keys=True)


def _file_url(message: dict[str, Any]) -> str | None:
    """Where the page can load a message's media (relative to the fake's URL)."""
    if "photo" in message:
        return f"/files/{message['photo'][-1]['file_id']}"
    for key in ("document", "sticker", "video"):
        if key in message:
            return f"/files/{message[key]['file_id']}"
    return None
