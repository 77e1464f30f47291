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
"message is not modified". Only what the bot uses is implemented: any other method answers 404
naming it, and another parse mode, reply markup or a resend by file_id is refused by name.

Run ``python -m bot.fake_telegram`` to serve the playground on its own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import inspect
import io
import json
import logging
import mimetypes
import re
import secrets
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from aiohttp import web
from PIL import Image, ImageOps, UnidentifiedImageError

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
PLAYGROUND_PAGE = STATIC_DIR / "playground.html"

MAX_GET_FILE_SIZE = 20 * 1024 * 1024  # getFile refuses bigger files, as the real API does
MAX_REQUEST_SIZE = 52 * 1024 * 1024  # bots may upload 50 MB; a little room for the form
MAX_TEXT_LENGTH = 4096  # UTF-16 code units, after entity parsing
MAX_CAPTION_LENGTH = 1024
MAX_CALLBACK_DATA_BYTES = 64
THUMBNAIL_SIDE = 90
PHOTO_SIDE = 1280
JPEG_QUALITY = 87
TYPING_SECONDS = 5.0  # how long a client shows a chat action
MAX_LONG_POLL_SECONDS = 120.0
DEFAULT_USER_ID = 1001
CHAT_TYPES = frozenset({"private", "group", "supergroup"})
CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the "
    "same as a current content and reply markup of the message"
)
_COMMAND_RE = re.compile(r"[a-z0-9_]{1,32}")
_FILE_ID_PREFIXES = {"photo": "AgAC", "document": "BQAC", "sticker": "CAAC", "video": "BAAC"}
_FILE_FOLDERS = {
    "photo": "photos",
    "document": "documents",
    "sticker": "stickers",
    "video": "videos",
}
_MEDIA_KEYS = ("photo", "document", "sticker", "video")


@dataclass(frozen=True)
class ChatSpec:
    """A chat as the test or page names it; a private chat's id equals its user's id."""

    id: int
    type: str = "private"
    title: str | None = None


@dataclass(frozen=True)
class UserSpec:
    """A (human) Telegram user who sends messages and presses buttons."""

    id: int
    first_name: str = "Alex"
    username: str | None = None
    language_code: str = "en"

    def to_api(self) -> dict[str, Any]:
        """The Bot API ``User`` object."""
        user: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.username:
            user["username"] = self.username
        if self.language_code:
            user["language_code"] = self.language_code
        return user


class ApiError(Exception):
    """A Bot API error reply: ``{"ok": false, "error_code": code, "description": ...}``."""

    def __init__(self, description: str, code: int = 400) -> None:
        super().__init__(description)
        self.description = description
        self.code = code

    def response(self) -> web.Response:
        """The JSON reply Telegram would give."""
        body = {"ok": False, "error_code": self.code, "description": self.description}
        return web.json_response(body, status=self.code)


def _bad(detail: str) -> ApiError:
    return ApiError(f"Bad Request: {detail}")


class _Signal:
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


# ---------------------------------------------------------------- text, entities, parse modes


def _u16(text: str) -> int:
    """Length in UTF-16 code units, the unit of Telegram's entity offsets."""
    return len(text.encode("utf-16-le")) // 2


def _entity(kind: str, offset: int, length: int, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "offset": offset, "length": length, **extra}


def _entity_order(entity: dict[str, Any]) -> tuple[int, int]:
    return entity["offset"], -entity["length"]


_AUTO_ENTITY_RE = re.compile(
    r"(?P<bot_command>(?<![\w/])/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?(?![\w/@]))"
    r"|(?P<url>\bhttps?://[^\s<>\"]*[^\s<>\".,;:!?)\]'])"
)
_OPAQUE_ENTITIES = frozenset({"code", "pre", "text_link", "url", "bot_command"})


def _detect_entities(text: str, entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add the ``bot_command`` and ``url`` entities Telegram finds in any text by itself."""
    taken = [
        (e["offset"], e["offset"] + e["length"]) for e in entities if e["type"] in _OPAQUE_ENTITIES
    ]
    found = list(entities)
    for match in _AUTO_ENTITY_RE.finditer(text):
        offset, length = _u16(text[: match.start()]), _u16(match.group())
        if not any(offset < end and start < offset + length for start, end in taken):
            found.append(_entity(str(match.lastgroup), offset, length))
    return sorted(found, key=_entity_order)


def _trimmed(text: str, entities: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """Strip surrounding whitespace as Telegram does, keeping entities in place."""
    stripped = text.strip()
    shift = _u16(text[: len(text) - len(text.lstrip())])
    size = _u16(stripped)
    kept = []
    for entity in entities:
        start = max(entity["offset"] - shift, 0)
        end = min(entity["offset"] + entity["length"] - shift, size)
        if end > start:
            kept.append({**entity, "offset": start, "length": end - start})
    return stripped, kept


def format_text(raw: str, parse_mode: str | None = None) -> tuple[str, list[dict[str, Any]]]:
    """Telegram's processing of a message text: parse markup, trim, detect commands and URLs.

    HTML is the only parse mode: the one the bot sends (``ParseMode.HTML``). Any other is refused
    by name, so that a bot switching to MarkdownV2 fails in the tests rather than getting replies
    Telegram would format differently. Raises ``ApiError`` ("can't parse entities: ...") for
    malformed HTML.
    """
    if not parse_mode:
        text, found = raw, []
    elif parse_mode.lower() == "html":
        text, found = _HtmlEntityParser(raw).parse()
    else:
        raise _bad(f"parse_mode {parse_mode} is not implemented by the fake")
    text, found = _trimmed(text, found)
    return text, _detect_entities(text, found)


def _cannot_parse(detail: str) -> ApiError:
    return _bad(f"can't parse entities: {detail}")


@dataclass
class _OpenEntity:
    """An entity whose start was seen and whose end is still to come."""

    kind: str
    offset: int  # UTF-16 offset in the output text
    byte: int  # byte offset in the source, for error messages
    extra: dict[str, Any] = field(default_factory=dict)


class _TextBuilder:
    """Output text plus entities, as the markup parser finds them."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.parts: list[str] = []
        self.length = 0
        self.entities: list[dict[str, Any]] = []

    def emit(self, text: str) -> None:
        self.parts.append(text)
        self.length += _u16(text)

    def close(self, entity: _OpenEntity) -> None:
        length = self.length - entity.offset
        if length > 0:
            self.entities.append(_entity(entity.kind, entity.offset, length, **entity.extra))

    def byte(self, index: int) -> int:
        return len(self.source[:index].encode())

    def result(self) -> tuple[str, list[dict[str, Any]]]:
        return "".join(self.parts), sorted(self.entities, key=_entity_order)


_HTML_ENTITY_TYPES = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}


class _HtmlEntityParser(HTMLParser):
    """``parse_mode=HTML``: the tags Telegram supports become entities, others are errors."""

    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self._out = _TextBuilder(source)
        self._line_starts = [0] + [m.end() for m in re.finditer("\n", source)]
        self._open: list[tuple[str, _OpenEntity]] = []

    def parse(self) -> tuple[str, list[dict[str, Any]]]:
        self.feed(self._out.source)
        self.close()
        if self._open:
            tag = self._open[-1][0]
            raise _cannot_parse(f'Can\'t find end tag corresponding to start tag "{tag}"')
        return self._out.result()

    def _byte_offset(self) -> int:
        line, column = self.getpos()
        return self._out.byte(self._line_starts[line - 1] + column)

    def handle_data(self, data: str) -> None:
        self._out.emit(data)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag not in _HTML_ENTITY_TYPES or (
            tag == "span" and attributes.get("class") != "tg-spoiler"
        ):
            offset = self._byte_offset()
            raise _cannot_parse(f'Unsupported start tag "{tag}" at byte offset {offset}')
        entity = _OpenEntity(_HTML_ENTITY_TYPES[tag], self._out.length, self._byte_offset())
        self._html_extra(tag, attributes, entity)
        self._open.append((tag, entity))

    @staticmethod
    def _html_extra(tag: str, attributes: dict[str, str], entity: _OpenEntity) -> None:
        if tag == "a":
            entity.extra["url"] = attributes.get("href", "")
        elif tag == "blockquote" and "expandable" in attributes:
            entity.kind = "expandable_blockquote"
        elif tag == "tg-emoji":
            entity.extra["custom_emoji_id"] = attributes.get("emoji-id", "")
        elif tag == "code" and attributes.get("class", "").startswith("language-"):
            entity.extra["language"] = attributes["class"].removeprefix("language-")

    def handle_endtag(self, tag: str) -> None:
        if not self._open:
            raise _cannot_parse(f"Unexpected end tag at byte offset {self._byte_offset()}")
        open_tag, entity = self._open.pop()
        if open_tag != tag:
            raise _cannot_parse(
                f"Unmatched end tag at byte offset {self._byte_offset()}, "
                f'expected "</{open_tag}>", found "</{tag}>"'
            )
        language = entity.extra.pop("language", None)
        if tag == "code" and self._open and self._open[-1][0] == "pre" and language:
            self._open[-1][1].extra["language"] = language  # <pre><code class="language-x">
            return
        if entity.kind == "text_link" and not entity.extra["url"]:
            return
        self._out.close(entity)


# ---------------------------------------------------------------- images


def _open_image(data: bytes) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise ValueError("IMAGE_PROCESS_FAILED") from error
    width, height = image.size
    if width + height > 10000 or max(width, height) > 20 * min(width, height):
        raise ValueError("PHOTO_INVALID_DIMENSIONS")
    return image


def _jpeg(image: Image.Image, side: int) -> tuple[bytes, int, int]:
    """``image`` shrunk to fit ``side`` x ``side`` and encoded as JPEG."""
    image = image.copy()
    image.thumbnail((side, side), Image.Resampling.LANCZOS)
    if image.mode != "RGB":
        background = Image.new("RGB", image.size, "white")
        background.paste(image.convert("RGBA"), mask=image.convert("RGBA").getchannel("A"))
        image = background
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue(), image.width, image.height


def photo_variants(data: bytes) -> list[tuple[bytes, int, int]]:
    """The sizes Telegram keeps of a photo, smallest first: (JPEG bytes, width, height).

    A 90 px thumbnail (when the photo is bigger) and the photo itself, re-encoded as JPEG when
    it is larger than 1280 px, is not a JPEG or carries an EXIF rotation (clients apply it).
    Raises ``ValueError`` ("IMAGE_PROCESS_FAILED") for bytes Pillow cannot read.
    """
    image = _open_image(data)
    rotated = image.getexif().get(0x0112, 1) not in (0, 1)
    upright = ImageOps.exif_transpose(image) if rotated else image
    variants = []
    if max(upright.size) > THUMBNAIL_SIDE:
        variants.append(_jpeg(upright, THUMBNAIL_SIDE))
    if max(upright.size) > PHOTO_SIDE or image.format != "JPEG" or rotated:
        variants.append(_jpeg(upright, PHOTO_SIDE))
    else:
        variants.append((data, image.width, image.height))
    return variants


def _image_size(data: bytes, default: tuple[int, int]) -> tuple[int, int]:
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except (UnidentifiedImageError, OSError, ValueError):
        return default


# ---------------------------------------------------------------- request parameters


class _Params:
    """Request parameters from the query string and a JSON, urlencoded or multipart body.

    PTB sends every value as a string (objects JSON-encoded); JSON bodies carry typed values.
    """

    def __init__(self, values: dict[str, Any]) -> None:
        self._values = values

    @classmethod
    async def read(cls, request: web.Request) -> _Params:
        values: dict[str, Any] = dict(request.query)
        if request.body_exists:
            if request.content_type == "application/json":
                try:
                    body = await request.json()
                except ValueError as error:
                    raise _bad("can't parse JSON request body") from error
                if not isinstance(body, dict):
                    raise _bad("the JSON request body must be an object")
                values.update(body)
            else:
                values.update((await request.post()).items())
        return cls(values)

    def raw(self, name: str) -> Any:
        value = self._values.get(name)
        return None if value == "" else value

    def text(self, name: str) -> str | None:
        value = self.raw(name)
        if value is None:
            return None
        if isinstance(value, web.FileField):
            raise _bad(f"{name} must be a string, not a file")
        return value if isinstance(value, str) else str(value)

    def integer(self, name: str, *, required: bool = False) -> int | None:
        value = self.raw(name)
        if value is None:
            if required:
                raise _bad(f"{name} is empty")
            return None
        try:
            if isinstance(value, bool | web.FileField):
                raise TypeError
            return int(value)
        except (TypeError, ValueError) as error:
            raise _bad(f"invalid {name} specified") from error

    def number(self, name: str, default: float) -> float:
        value = self.raw(name)
        try:
            return default if value is None else float(value)
        except (TypeError, ValueError) as error:
            raise _bad(f"invalid {name} specified") from error

    def flag(self, name: str) -> bool:
        return self.raw(name) in (True, 1, "true", "True", "1")

    def obj(self, name: str) -> Any:
        """A parameter that is a JSON object or array (a JSON string in forms)."""
        value = self.raw(name)
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except ValueError as error:
            raise _bad(f"can't parse {name} JSON object") from error


# ---------------------------------------------------------------- state


@dataclass
class _StoredFile:
    kind: str  # photo | document | sticker | video
    file_id: str
    file_unique_id: str
    data: bytes
    mime_type: str
    file_path: str
    file_name: str | None = None


@dataclass
class _Message:
    data: dict[str, Any]  # exactly the Bot API Message
    from_bot: bool
    version: int = 0


@dataclass
class _Chat:
    api: dict[str, Any]
    chat_instance: str
    messages: dict[int, _Message] = field(default_factory=dict)
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


def _file_url(message: dict[str, Any]) -> str | None:
    """Where the page can load a message's media (relative to the fake's URL)."""
    if "photo" in message:
        return f"/files/{message['photo'][-1]['file_id']}"
    for key in ("document", "sticker", "video"):
        if key in message:
            return f"/files/{message[key]['file_id']}"
    return None


def _callback_data(message: dict[str, Any]) -> list[str]:
    rows = message.get("reply_markup", {}).get("inline_keyboard", [])
    return [button["callback_data"] for row in rows for button in row if "callback_data" in button]


def _upload(p: _Params, name: str) -> web.FileField:
    """A file the bot uploads. It never resends one by file_id or URL, so the fake takes none."""
    upload = p.raw(name)
    if isinstance(upload, web.FileField):
        return upload
    if upload is None:
        raise _bad(f"there is no {name} in the request")
    raise _bad(f"sending a {name} by file_id or URL is not implemented by the fake")


def _validated_button(button: Any) -> dict[str, Any]:
    if not isinstance(button, dict) or not button.get("text"):
        raise _bad(
            "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
        )
    if "callback_data" in button:
        data = button["callback_data"]
        if not isinstance(data, str) or not 1 <= len(data.encode()) <= MAX_CALLBACK_DATA_BYTES:
            raise _bad("BUTTON_DATA_INVALID")
    elif "url" in button:
        if not button["url"]:
            raise _bad("BUTTON_URL_INVALID")
    elif len(button) < 2:
        raise _bad(
            "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
        )
    return dict(button)


def _validated_inline_keyboard(markup: dict[str, Any]) -> dict[str, Any] | None:
    rows = markup["inline_keyboard"]
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise _bad(
            'can\'t parse inline keyboard: field "inline_keyboard" must be an Array of Arrays'
        )
    keyboard = [[_validated_button(button) for button in row] for row in rows]
    keyboard = [row for row in keyboard if row]
    return {"inline_keyboard": keyboard} if keyboard else None


def _scope_key(scope: Any) -> str:
    if not scope:
        scope = {"type": "default"}
    if not isinstance(scope, dict) or "type" not in scope:
        raise _bad("can't parse BotCommandScope JSON object")
    scope = dict(scope)
    with contextlib.suppress(KeyError, TypeError, ValueError):
        scope["chat_id"] = int(scope["chat_id"])
    return json.dumps(scope, sort_keys=True)


# ---------------------------------------------------------------- the fake


class FakeTelegram:
    """An in-memory Telegram Bot API server plus a web playground; see the module docstring.

    ``group_privacy=True`` makes group chats behave like Telegram's privacy mode: the bot only
    gets commands, replies to its own messages and messages mentioning it. By default it gets
    every message (as when privacy mode is off or the bot is an admin).
    """

    def __init__(
        self,
        token: str = "123456:playground",
        bot_username: str = "WhatBreedBot",
        bot_name: str = "WhatBreed",
        *,
        group_privacy: bool = False,
    ) -> None:
        self.token = token
        self.bot_username = bot_username
        self.bot_name = bot_name
        self.group_privacy = group_privacy
        self.url = ""
        self.chat_actions: list[tuple[int, str]] = []
        self.commands: list[dict[str, str]] = []
        self.callback_answers: dict[str, dict[str, Any]] = {}
        self._command_sets: dict[tuple[str, str], list[dict[str, str]]] = {}
        self._chats: dict[int, _Chat] = {}
        self._files: dict[str, _StoredFile] = {}
        self._files_by_path: dict[str, _StoredFile] = {}
        self._updates: list[dict[str, Any]] = []
        self._next_update_id = 1
        self._pending_queries: dict[str, int] = {}
        self._version = 0
        self._poll_generation = 0
        self._signal = _Signal()
        self._closing = False
        self._runner: web.AppRunner | None = None
        self._methods: dict[str, Callable[[_Params], Any]] = {
            "getme": self._m_get_me,
            "deletewebhook": self._m_delete_webhook,
            "setmycommands": self._m_set_my_commands,
            "getupdates": self._m_get_updates,
            "sendmessage": self._m_send_message,
            "editmessagetext": self._m_edit_message_text,
            "editmessagereplymarkup": self._m_edit_message_reply_markup,
            "answercallbackquery": self._m_answer_callback_query,
            "sendchataction": self._m_send_chat_action,
            "sendphoto": self._m_send_photo,
            "senddocument": self._m_send_document,
            "getfile": self._m_get_file,
        }

    # ------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        """For ``ApplicationBuilder().base_url(...)``: PTB appends the token."""
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        """For ``ApplicationBuilder().base_file_url(...)``: PTB appends the token."""
        return f"{self.url}/file/bot"

    @property
    def bot_id(self) -> int:
        head = self.token.split(":", 1)[0]
        return int(head) if head.isdigit() else 123456

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Serve on ``host:port``; port 0 picks a free port (read it from ``url``)."""
        self._closing = False
        self._runner = web.AppRunner(self._make_app(), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        bound_port = self._runner.addresses[0][1]
        self.url = f"http://{host}:{bound_port}"
        logger.info("fake Telegram serving on %s (playground at %s/)", self.url, self.url)

    async def stop(self) -> None:
        """Release waiting long polls and stop serving."""
        self._closing = True
        self._signal.notify()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        logger.info("fake Telegram stopped")

    async def __aenter__(self) -> FakeTelegram:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def expire_file(self, file_id: str) -> None:
        """Make ``getFile`` refuse ``file_id``, as Telegram does for ids it no longer serves."""
        stored = self._files.pop(file_id)
        self._files_by_path.pop(stored.file_path, None)

    def _make_app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_REQUEST_SIZE)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_bot_api)
        app.router.add_get("/file/bot{token}/{file_path:.+}", self._handle_file_download)
        app.router.add_get("/", self._handle_page)
        app.router.add_post("/api/send", self._handle_api_send)
        app.router.add_post("/api/press", self._handle_api_press)
        app.router.add_get("/api/messages", self._handle_api_messages)
        app.router.add_get("/api/commands", self._handle_api_commands)
        app.router.add_get("/api/me", self._handle_api_me)
        app.router.add_get("/files/{file_id}", self._handle_files)
        return app

    # ------------------------------------------------------------ acting as users

    def send_text(
        self, chat: ChatSpec, user: UserSpec, text: str, reply_to: int | None = None
    ) -> dict[str, Any]:
        """``user`` writes ``text`` in ``chat``; "/cmd args" gets a bot_command entity."""
        text, entities = format_text(text)
        if not text:
            raise ValueError("message text is empty")
        return self._user_send(
            chat, user, self._with_entities({"text": text}, "entities", entities), reply_to
        )

    def send_photo(
        self,
        chat: ChatSpec,
        user: UserSpec,
        photo_bytes: bytes,
        caption: str | None = None,
        reply_to: int | None = None,
    ) -> dict[str, Any]:
        """``user`` sends a photo (as Telegram clients do: compressed, thumbnail added)."""
        sizes = self._store_photo(photo_bytes)
        return self._user_send(
            chat, user, {"photo": sizes, **self._user_caption(caption)}, reply_to
        )

    def send_document(
        self,
        chat: ChatSpec,
        user: UserSpec,
        data: bytes,
        file_name: str,
        mime_type: str,
        caption: str | None = None,
        reply_to: int | None = None,
    ) -> dict[str, Any]:
        """``user`` sends a file as a document: bytes kept as they are."""
        stored = self._store_file("document", data, mime_type, file_name)
        content = {"document": self._document_api(stored), **self._user_caption(caption)}
        return self._user_send(chat, user, content, reply_to)

    def send_sticker(
        self, chat: ChatSpec, user: UserSpec, data: bytes, reply_to: int | None = None
    ) -> dict[str, Any]:
        """``user`` sends a (static, WebP) sticker."""
        stored = self._store_file("sticker", data, "image/webp")
        width, height = _image_size(data, (512, 512))
        sticker = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "type": "regular",
            "width": width,
            "height": height,
            "is_animated": False,
            "is_video": False,
            "emoji": "\U0001f436",
            "file_size": len(data),
        }
        return self._user_send(chat, user, {"sticker": sticker}, reply_to)

    def send_video(
        self, chat: ChatSpec, user: UserSpec, data: bytes, reply_to: int | None = None
    ) -> dict[str, Any]:
        """``user`` sends a video (shown as 640x360, 1 s: the fake does not decode video)."""
        stored = self._store_file("video", data, "video/mp4", "video.mp4")
        video = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "width": 640,
            "height": 360,
            "duration": 1,
            "file_name": "video.mp4",
            "mime_type": "video/mp4",
            "file_size": len(data),
        }
        return self._user_send(chat, user, {"video": video}, reply_to)

    def press_button(
        self, chat: ChatSpec, user: UserSpec, message_id: int, data: str, *, strict: bool = True
    ) -> str:
        """``user`` taps the inline button with ``data`` under the bot's message; the query id.

        ``strict=False`` lets a test send callback data that no button carries (a forged query).
        """
        state = self._ensure_chat(chat, user)
        message = state.messages.get(message_id)
        if message is None or not message.from_bot:
            raise ValueError(f"no bot message {message_id} in chat {state.id}")
        if strict and data not in _callback_data(message.data):
            raise ValueError(f"message {message_id} has no button with callback_data {data!r}")
        query_id = str(secrets.randbits(62))
        query = {
            "id": query_id,
            "from": user.to_api(),
            "message": copy.deepcopy(message.data),
            "chat_instance": state.chat_instance,
            "data": data,
        }
        self._pending_queries[query_id] = state.id
        state.last_user_action = self._version
        self._push_update({"callback_query": query})
        return query_id

    # ------------------------------------------------------------ reading the chats

    def messages(self, chat_id: int) -> list[dict[str, Any]]:
        """The transcript: user and bot messages in order, current versions.

        Each is the Bot API Message plus ``_version`` (the change counter when it last changed)
        and, for media, ``_file_url`` (a path on this server, e.g. ``/files/<file_id>``).
        """
        chat = self._chats.get(chat_id)
        return [self._export(message) for message in chat.messages.values()] if chat else []

    async def wait_for(
        self,
        chat_id: int,
        predicate: Callable[[dict[str, Any]], bool],
        timeout: float = 30,
        *,
        since: int | None = None,
    ) -> dict[str, Any]:
        """The first bot message (new or an edit of one) matching ``predicate``.

        Only versions after ``since`` count; by default, after the user's last action in the
        chat (their last message or button press), i.e. the bot's response to it. Every version
        of every bot message is kept, so a quickly replaced "Looking…" still matches. A predicate
        raising KeyError, IndexError, TypeError or AttributeError counts as no match.
        Raises ``TimeoutError`` with the transcript after ``timeout`` seconds.
        """
        if since is None:
            chat = self._chats.get(chat_id)
            since = chat.last_user_action if chat else 0
        found: list[dict[str, Any]] = []

        def ready() -> bool:
            match = self._find_bot_version(chat_id, predicate, since)
            if match is not None:
                found.append(match)
            return bool(found) or self._closing

        await self._signal.wait_until(ready, timeout)
        if found:
            return found[0]
        raise TimeoutError(
            f"no bot message in chat {chat_id} matched within {timeout} s "
            f"(versions after {since}); transcript:\n{self.transcript(chat_id)}"
        )

    def commands_for(
        self, chat_id: int | None = None, chat_type: str = "private", language_code: str = ""
    ) -> list[dict[str, str]]:
        """The command menu a client shows in a chat, following Telegram's scope order."""
        scopes: list[dict[str, Any]] = []
        if chat_id is not None:
            scopes.append({"type": "chat", "chat_id": chat_id})
        group = chat_type != "private"
        scopes.append({"type": "all_group_chats" if group else "all_private_chats"})
        scopes.append({"type": "default"})
        for scope in scopes:
            for language in dict.fromkeys([language_code, ""]):
                commands = self._command_sets.get((_scope_key(scope), language))
                if commands:
                    return copy.deepcopy(commands)
        return []

    def transcript(self, chat_id: int) -> str:
        """The chat as readable lines, for failure messages."""
        lines = [_describe(message) for message in self.messages(chat_id)]
        return "\n".join(lines) if lines else "(no messages)"

    def _find_bot_version(
        self, chat_id: int, predicate: Callable[[dict[str, Any]], bool], since: int
    ) -> dict[str, Any] | None:
        chat = self._chats.get(chat_id)
        for version, snapshot in chat.history if chat else []:
            if version <= since:
                continue
            try:
                matched = predicate(copy.deepcopy(snapshot))
            except (KeyError, IndexError, TypeError, AttributeError):
                matched = False
            if matched:
                return copy.deepcopy(snapshot)
        return None

    # ------------------------------------------------------------ state changes

    def _ensure_chat(self, chat: ChatSpec, user: UserSpec) -> _Chat:
        if chat.type not in CHAT_TYPES:
            raise ValueError(f"chat type must be one of {sorted(CHAT_TYPES)}, not {chat.type!r}")
        if chat.type == "private" and chat.id != user.id:
            raise ValueError("a private chat's id must equal its user's id")
        if chat.type != "private" and chat.id >= 0:
            raise ValueError("group chat ids are negative, as in Telegram")
        existing = self._chats.get(chat.id)
        if existing is not None:
            if existing.api["type"] != chat.type:
                raise ValueError(f"chat {chat.id} is a {existing.api['type']} chat")
            return existing
        api: dict[str, Any] = {"id": chat.id, "type": chat.type}
        if chat.type == "private":
            api["first_name"] = user.first_name
            if user.username:
                api["username"] = user.username
        else:
            api["title"] = chat.title or "Group chat"
        state = _Chat(api=api, chat_instance=str(-secrets.randbits(62)))
        self._chats[chat.id] = state
        return state

    def _user_send(
        self, chat: ChatSpec, user: UserSpec, content: dict[str, Any], reply_to: int | None
    ) -> dict[str, Any]:
        state = self._ensure_chat(chat, user)
        reply = None
        if reply_to is not None:
            reply = state.messages.get(reply_to)
            if reply is None:
                raise ValueError(f"no message {reply_to} in chat {state.id} to reply to")
        message = self._add_message(state, user.to_api(), content, reply, None, from_bot=False)
        state.last_user_action = message.version
        if self._delivered(state, message):
            self._push_update({"message": copy.deepcopy(message.data)})
        return self._export(message)

    def _delivered(self, chat: _Chat, message: _Message) -> bool:
        """Whether the bot gets this user message (see ``group_privacy``)."""
        if chat.api["type"] == "private" or not self.group_privacy:
            return True
        data = message.data
        entities = data.get("entities", []) + data.get("caption_entities", [])
        reply = data.get("reply_to_message", {})
        text = data.get("text", data.get("caption", ""))
        return (
            any(entity["type"] == "bot_command" for entity in entities)
            or reply.get("from", {}).get("id") == self.bot_id
            or f"@{self.bot_username}".lower() in text.lower()
        )

    def _push_update(self, payload: dict[str, Any]) -> None:
        self._updates.append({"update_id": self._next_update_id, **payload})
        self._next_update_id += 1
        self._signal.notify()

    def _add_message(
        self,
        chat: _Chat,
        sender: dict[str, Any],
        content: dict[str, Any],
        reply: _Message | None,
        markup: dict[str, Any] | None,
        *,
        from_bot: bool,
    ) -> _Message:
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
        message = _Message(data=data, from_bot=from_bot)
        chat.messages[data["message_id"]] = message
        self._record_change(chat, message)
        if from_bot:
            chat.last_bot_message = message.version
        return message

    def _record_change(self, chat: _Chat, message: _Message | None = None) -> int:
        self._version += 1
        chat.changed = self._version
        if message is not None:
            message.version = self._version
            if message.from_bot:
                chat.history.append((self._version, self._export(message)))
        self._signal.notify()
        return self._version

    def _export(self, message: _Message) -> dict[str, Any]:
        exported = copy.deepcopy(message.data)
        exported["_version"] = message.version
        url = _file_url(message.data)
        if url is not None:
            exported["_file_url"] = url
        return exported

    def _new_file_id(self, kind: str) -> tuple[str, str]:
        file_id = _FILE_ID_PREFIXES[kind] + secrets.token_urlsafe(48)
        return file_id, "AQAD" + secrets.token_urlsafe(9)

    def _store_file(
        self, kind: str, data: bytes, mime_type: str, file_name: str | None = None
    ) -> _StoredFile:
        file_id, unique_id = self._new_file_id(kind)
        extension = Path(file_name or "").suffix or mimetypes.guess_extension(mime_type) or ".bin"
        if kind == "photo":
            extension = ".jpg"
        path = f"{_FILE_FOLDERS[kind]}/file_{len(self._files)}{extension}"
        stored = _StoredFile(kind, file_id, unique_id, data, mime_type, path, file_name)
        self._files[file_id] = stored
        self._files_by_path[path] = stored
        return stored

    def _store_photo(self, data: bytes) -> list[dict[str, Any]]:
        """Keep a photo's sizes; the PhotoSize array, smallest first."""
        sizes: list[dict[str, Any]] = []
        for variant, width, height in photo_variants(data):
            stored = self._store_file("photo", variant, "image/jpeg")
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

    @staticmethod
    def _document_api(stored: _StoredFile) -> dict[str, Any]:
        document = {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id}
        if stored.file_name:
            document["file_name"] = stored.file_name
        return {**document, "mime_type": stored.mime_type, "file_size": len(stored.data)}

    @staticmethod
    def _with_entities(
        content: dict[str, Any], key: str, entities: list[dict[str, Any]]
    ) -> dict[str, Any]:
        return {**content, key: entities} if entities else content

    def _user_caption(self, caption: str | None) -> dict[str, Any]:
        text, entities = format_text(caption or "")
        return self._with_entities({"caption": text}, "caption_entities", entities) if text else {}

    # ------------------------------------------------------------ Bot API plumbing

    async def _handle_bot_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.match_info["token"] != self.token:
            return ApiError("Unauthorized", 401).response()
        handler = self._methods.get(method.lower())
        if handler is None:
            logger.warning("bot called %s, which the fake does not implement", method)
            description = f"Not Found: method {method} is not implemented by the fake"
            return ApiError(description, 404).response()
        try:
            params = await _Params.read(request)
            result = handler(params)
            if inspect.isawaitable(result):
                result = await result
        except ApiError as error:
            # A long poll superseded by the next one is routine: the bot's own shutdown makes one.
            level = logging.DEBUG if error.code == 409 else logging.INFO
            logger.log(level, "%s -> %s %s", method, error.code, error.description)
            return error.response()
        except web.HTTPRequestEntityTooLarge:
            return ApiError("Request Entity Too Large", 413).response()
        except Exception as error:  # a bug in the fake: tell the bot rather than drop the line
            logger.exception("%s failed inside the fake", method)
            return ApiError(f"Internal Server Error: {error!r}", 500).response()
        logger.debug("%s -> ok", method)
        return web.json_response({"ok": True, "result": result})

    async def _handle_file_download(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return ApiError("Unauthorized", 401).response()
        stored = self._files_by_path.get(request.match_info["file_path"])
        if stored is None:
            return ApiError("Not Found", 404).response()
        return web.Response(body=stored.data, content_type=stored.mime_type)

    def _chat_for(self, p: _Params) -> _Chat:
        value = p.raw("chat_id")
        if value is None:
            raise _bad("chat_id is empty")
        try:
            chat_id = int(value)
        except (TypeError, ValueError) as error:
            raise _bad("chat not found") from error
        chat = self._chats.get(chat_id)
        if chat is None:
            raise _bad("chat not found")
        return chat

    def _message_text(self, p: _Params) -> tuple[str, list[dict[str, Any]]]:
        text, entities = format_text(p.text("text") or "", p.text("parse_mode"))
        if not text:
            raise _bad("message text is empty")
        if _u16(text) > MAX_TEXT_LENGTH:
            raise _bad("message is too long")
        return text, entities

    def _caption(self, p: _Params) -> dict[str, Any]:
        text, entities = format_text(p.text("caption") or "", p.text("parse_mode"))
        if _u16(text) > MAX_CAPTION_LENGTH:
            raise _bad("message caption is too long")
        return self._with_entities({"caption": text}, "caption_entities", entities) if text else {}

    def _reply_target(self, chat: _Chat, p: _Params) -> _Message | None:
        parameters = p.obj("reply_parameters") or {}
        if not isinstance(parameters, dict):
            raise _bad("can't parse reply parameters JSON object")
        message_id = parameters.get("message_id", p.integer("reply_to_message_id"))
        if message_id is None:
            return None
        if not isinstance(message_id, int | str) or not str(message_id).lstrip("-").isdigit():
            raise _bad("invalid reply_parameters specified")
        allow = bool(parameters.get("allow_sending_without_reply")) or p.flag(
            "allow_sending_without_reply"
        )
        target = chat.messages.get(int(message_id))
        if target is None and not allow:
            raise _bad("message to be replied not found")
        return target

    def _inline_markup(self, p: _Params) -> dict[str, Any] | None:
        """A message's ``reply_markup``: an inline keyboard, the only markup the bot sends."""
        markup = p.obj("reply_markup")
        if markup is None:
            return None
        if not isinstance(markup, dict) or "inline_keyboard" not in markup:
            raise _bad("inline keyboard expected (the fake implements no other reply markup)")
        return _validated_inline_keyboard(markup)

    def _send_from_bot(self, chat: _Chat, p: _Params, content: dict[str, Any]) -> dict[str, Any]:
        reply = self._reply_target(chat, p)
        markup = self._inline_markup(p)
        bot = self._bot_user()
        message = self._add_message(chat, bot, content, reply, markup, from_bot=True)
        return copy.deepcopy(message.data)

    def _bot_user(self, *, full: bool = False) -> dict[str, Any]:
        user = {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.bot_name,
            "username": self.bot_username,
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

    def _edit_target(self, p: _Params) -> tuple[_Chat, _Message]:
        if p.raw("inline_message_id") is not None:
            raise _bad("inline messages are not supported by the fake")
        chat = self._chat_for(p)
        message_id = p.integer("message_id")
        if message_id is None:
            raise _bad("message identifier is not specified")
        message = chat.messages.get(message_id)
        if message is None:
            raise _bad("message to edit not found")
        if not message.from_bot:
            raise _bad("message can't be edited")
        return chat, message

    def _edit(
        self,
        chat: _Chat,
        message: _Message,
        changes: dict[str, Any],
        markup: dict[str, Any] | None,
    ) -> dict[str, Any]:
        """Apply ``changes`` (a falsy value removes the field) and the new inline keyboard."""
        dropped = set(changes) | {"reply_markup", "edit_date"}
        new = {k: v for k, v in message.data.items() if k not in dropped}
        new.update({k: v for k, v in changes.items() if v})
        if markup is not None:
            new["reply_markup"] = markup
        old = {k: v for k, v in message.data.items() if k != "edit_date"}
        if new == old:
            raise _bad(NOT_MODIFIED)
        new["edit_date"] = int(time.time())
        message.data = new
        self._record_change(chat, message)
        return copy.deepcopy(new)

    # ------------------------------------------------------------ Bot API methods

    def _m_get_me(self, p: _Params) -> dict[str, Any]:
        return self._bot_user(full=True)

    def _m_delete_webhook(self, p: _Params) -> bool:
        if p.flag("drop_pending_updates"):
            self._updates.clear()
        return True

    def _m_set_my_commands(self, p: _Params) -> bool:
        commands = p.obj("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise _bad("can't parse commands JSON object")
        cleaned = [self._validated_command(command) for command in commands]
        key = (_scope_key(p.obj("scope")), p.text("language_code") or "")
        self._command_sets[key] = cleaned
        self.commands = copy.deepcopy(cleaned)
        self._version += 1
        self._signal.notify()
        return True

    @staticmethod
    def _validated_command(command: Any) -> dict[str, str]:
        if not isinstance(command, dict):
            raise _bad("can't parse BotCommand JSON object")
        name, description = command.get("command"), command.get("description")
        if not isinstance(name, str) or not _COMMAND_RE.fullmatch(name):
            raise _bad("BOT_COMMAND_INVALID")
        if not isinstance(description, str) or not 1 <= len(description.strip()) <= 256:
            raise _bad("command description is empty")
        return {"command": name, "description": description}

    async def _m_get_updates(self, p: _Params) -> list[dict[str, Any]]:
        self._acknowledge(p.integer("offset"))
        limit = min(max(p.integer("limit") or 100, 1), 100)
        timeout = min(max(p.number("timeout", 0.0), 0.0), MAX_LONG_POLL_SECONDS)
        self._poll_generation += 1
        generation = self._poll_generation
        self._signal.notify()  # a waiting older getUpdates now ends with 409, as in Telegram

        def ready() -> bool:
            return bool(self._updates) or self._closing or generation != self._poll_generation

        await self._signal.wait_until(ready, timeout)
        if generation != self._poll_generation:
            raise ApiError(
                "Conflict: terminated by other getUpdates request; "
                "make sure that only one bot instance is running",
                409,
            )
        return copy.deepcopy(self._updates[:limit])

    def _acknowledge(self, offset: int | None) -> None:
        """Drop updates before ``offset``; a negative offset keeps only the last ``-offset``."""
        if offset is None or offset == 0:
            return
        if offset < 0:
            del self._updates[: max(len(self._updates) + offset, 0)]
        else:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]

    def _m_send_message(self, p: _Params) -> dict[str, Any]:
        chat = self._chat_for(p)
        text, entities = self._message_text(p)
        return self._send_from_bot(
            chat, p, self._with_entities({"text": text}, "entities", entities)
        )

    def _m_edit_message_text(self, p: _Params) -> dict[str, Any]:
        chat, message = self._edit_target(p)
        if "text" not in message.data:
            raise _bad("there is no text in the message to edit")
        text, entities = self._message_text(p)
        changes = {"text": text, "entities": entities}
        return self._edit(chat, message, changes, self._inline_markup(p))

    def _m_edit_message_reply_markup(self, p: _Params) -> dict[str, Any]:
        chat, message = self._edit_target(p)
        return self._edit(chat, message, {}, self._inline_markup(p))

    def _m_answer_callback_query(self, p: _Params) -> bool:
        query_id = p.text("callback_query_id") or ""
        chat_id = self._pending_queries.pop(query_id, None)
        if chat_id is None:
            raise _bad("query is too old and response timeout expired or query ID is invalid")
        answer = {"text": p.text("text"), "show_alert": p.flag("show_alert")}
        self.callback_answers[query_id] = answer
        chat = self._chats[chat_id]
        chat.answers.append((self._record_change(chat), {"id": query_id, **answer}))
        return True

    def _m_send_chat_action(self, p: _Params) -> bool:
        chat = self._chat_for(p)
        action = p.text("action")
        if action not in CHAT_ACTIONS:
            raise _bad("wrong parameter action in request")
        self.chat_actions.append((chat.id, action))
        chat.action = (action, time.monotonic(), self._record_change(chat))
        return True

    def _m_send_photo(self, p: _Params) -> dict[str, Any]:
        chat = self._chat_for(p)
        try:
            sizes = self._store_photo(_upload(p, "photo").file.read())
        except ValueError as error:
            raise _bad(str(error)) from error
        return self._send_from_bot(chat, p, {"photo": sizes, **self._caption(p)})

    def _m_send_document(self, p: _Params) -> dict[str, Any]:
        chat = self._chat_for(p)
        upload = _upload(p, "document")
        name = upload.filename or "document"
        mime = mimetypes.guess_type(name)[0] or upload.content_type or "application/octet-stream"
        stored = self._store_file("document", upload.file.read(), mime, name)
        return self._send_from_bot(
            chat, p, {"document": self._document_api(stored), **self._caption(p)}
        )

    def _m_get_file(self, p: _Params) -> dict[str, Any]:
        stored = self._files.get(p.text("file_id") or "")
        if stored is None:
            raise _bad("invalid file_id")
        if len(stored.data) > MAX_GET_FILE_SIZE:
            raise _bad("file is too big")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.data),
            "file_path": stored.file_path,
        }

    # ------------------------------------------------------------ control API (page, tests)

    async def _handle_page(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(PLAYGROUND_PAGE, headers={"Cache-Control": "no-store"})

    async def _handle_api_me(self, request: web.Request) -> web.Response:
        return web.json_response(self._bot_user(full=True))

    async def _handle_api_send(self, request: web.Request) -> web.Response:
        try:
            p = await _Params.read(request)
            chat, user = _specs(p)
            message = self._api_send(p, chat, user)
        except (ValueError, ApiError) as error:
            return web.json_response({"error": str(error)}, status=400)
        return web.json_response(message)

    def _api_send(self, p: _Params, chat: ChatSpec, user: UserSpec) -> dict[str, Any]:
        upload, text, reply_to = p.raw("file"), p.text("text"), p.integer("reply_to")
        if not isinstance(upload, web.FileField):
            if not text:
                raise ValueError("nothing to send: give text or a file")
            return self.send_text(chat, user, text, reply_to)
        data = upload.file.read()
        mime = upload.content_type or "application/octet-stream"
        kind = p.text("kind") or ("photo" if mime.startswith("image/") else "document")
        if kind == "photo":
            return self.send_photo(chat, user, data, text, reply_to)
        if kind == "document":
            name = upload.filename or "file"
            mime = mimetypes.guess_type(name)[0] or mime
            return self.send_document(chat, user, data, name, mime, text, reply_to)
        if kind == "video":
            return self.send_video(chat, user, data, reply_to)
        raise ValueError(f"kind must be photo, document or video, not {kind!r}")

    async def _handle_api_press(self, request: web.Request) -> web.Response:
        try:
            p = await _Params.read(request)
            chat, user = _specs(p)
            message_id = p.integer("message_id", required=True) or 0
            query_id = self.press_button(chat, user, message_id, p.text("data") or "")
        except (ValueError, ApiError) as error:
            return web.json_response({"error": str(error)}, status=400)
        return web.json_response({"id": query_id})

    async def _handle_api_messages(self, request: web.Request) -> web.Response:
        try:
            p = _Params(dict(request.query))
            chat_id = p.integer("chat_id", required=True) or 0
            since = p.integer("since") or 0
            wait = min(max(p.number("wait", 0.0), 0.0), MAX_LONG_POLL_SECONDS)
        except ApiError as error:
            return web.json_response({"error": error.description}, status=400)

        def ready() -> bool:
            chat = self._chats.get(chat_id)
            return self._closing or (chat is not None and chat.changed > since)

        await self._signal.wait_until(ready, wait)
        return web.json_response(self._chat_snapshot(chat_id, since))

    def _chat_snapshot(self, chat_id: int, since: int) -> dict[str, Any]:
        """What changed in a chat after version ``since``, for the page."""
        chat = self._chats.get(chat_id)
        snapshot: dict[str, Any] = {
            "version": self._version,
            "messages": [],
            "callback_answers": [],
            "typing": False,
            "action": None,
            "typing_for": 0.0,
        }
        if chat is None:
            return snapshot
        action, remaining = self._current_action(chat)
        snapshot.update(
            messages=[self._export(m) for m in chat.messages.values() if m.version > since],
            callback_answers=[answer for version, answer in chat.answers if version > since],
            typing=action is not None,
            action=action,
            typing_for=round(remaining, 2),
        )
        return snapshot

    @staticmethod
    def _current_action(chat: _Chat) -> tuple[str | None, float]:
        """The chat action a client would still show, and for how many more seconds."""
        if chat.action is None:
            return None, 0.0
        action, started, version = chat.action
        remaining = TYPING_SECONDS - (time.monotonic() - started)
        if remaining <= 0 or chat.last_bot_message > version:
            return None, 0.0
        return action, remaining

    async def _handle_api_commands(self, request: web.Request) -> web.Response:
        p = _Params(dict(request.query))
        try:
            chat_id = p.integer("chat_id")
        except ApiError as error:
            return web.json_response({"error": error.description}, status=400)
        chat_type = p.text("chat_type") or "private"
        return web.json_response(
            self.commands_for(chat_id, chat_type, p.text("language_code") or "")
        )

    async def _handle_files(self, request: web.Request) -> web.Response:
        stored = self._files.get(request.match_info["file_id"])
        if stored is None:
            return web.json_response({"error": "no such file"}, status=404)
        headers = {"Cache-Control": "max-age=3600"}
        if stored.file_name:
            quoted = urllib.parse.quote(stored.file_name)
            headers["Content-Disposition"] = f"inline; filename*=UTF-8''{quoted}"
        return web.Response(body=stored.data, content_type=stored.mime_type, headers=headers)


def _specs(p: _Params) -> tuple[ChatSpec, UserSpec]:
    """The chat and user a control-API request speaks for (defaults: Alex's private chat)."""
    user = UserSpec(
        id=p.integer("user_id") or DEFAULT_USER_ID,
        first_name=p.text("first_name") or "Alex",
        username=p.text("username"),
        language_code=p.text("language_code") or "en",
    )
    chat_type = p.text("chat_type") or "private"
    chat_id = p.integer("chat_id")
    if chat_id is None:
        if chat_type != "private":
            raise ValueError("chat_id is required for group chats")
        chat_id = user.id
    return ChatSpec(chat_id, chat_type, p.text("chat_title")), user


def _describe(message: dict[str, Any]) -> str:
    """One transcript line: ``#3 bot v7 (edited): text [buttons: Yes | No]``."""
    sender = message.get("from", {})
    who = "bot" if sender.get("is_bot") else sender.get("first_name", "?")
    kinds = [key for key in _MEDIA_KEYS if key in message]
    body = " ".join(
        [f"[{kind}]" for kind in kinds] + [message.get("text") or message.get("caption") or ""]
    )
    buttons = [
        b["text"] for row in message.get("reply_markup", {}).get("inline_keyboard", []) for b in row
    ]
    edited = " (edited)" if "edit_date" in message else ""
    suffix = f" [buttons: {' | '.join(buttons)}]" if buttons else ""
    return (
        f"#{message['message_id']} {who} v{message.get('_version')}{edited}: {body.strip()}{suffix}"
    )


# ---------------------------------------------------------------- command line


async def _serve(args: argparse.Namespace) -> None:
    fake = FakeTelegram(args.token, args.bot_username, args.bot_name)
    await fake.start(args.host, args.port)
    logger.info(
        "bot base_url=%s base_file_url=%s token=%s", fake.base_url, fake.base_file_url, fake.token
    )
    try:
        await asyncio.Event().wait()
    finally:
        await fake.stop()


def main(argv: list[str] | None = None) -> None:
    """``python -m bot.fake_telegram``: serve the fake API and playground until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--token", default="123456:playground")
    parser.add_argument("--bot-username", default="WhatBreedBot")
    parser.add_argument("--bot-name", default="WhatBreed")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
