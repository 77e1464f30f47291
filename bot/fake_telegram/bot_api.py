"""The Bot API under ``/bot<token>/<method>`` and file downloads under
``/file/bot<token>/<path>``, with the request and reply shapes of the real API, so that
python-telegram-bot talks to the fake unchanged.

Only the methods the bot calls are here: python-telegram-bot's getMe, deleteWebhook and
getUpdates when it polls, setWebhook when it runs a webhook, setMyCommands (bot/app.py), and
what bot/handlers.py does: sendMessage, sendPhoto, sendDocument, sendChatAction, getFile,
editMessageText, editMessageReplyMarkup and answerCallbackQuery. Any other method answers 404
naming it, so a bot change that needs one shows in the tests.
"""

from __future__ import annotations

import copy
import inspect
import logging
import mimetypes
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from bot.fake_telegram.entities import format_text, text_fields, utf16_length
from bot.fake_telegram.errors import ApiError, bad_request
from bot.fake_telegram.params import Params
from bot.fake_telegram.state import (
    MAX_LONG_POLL_SECONDS,
    Chat,
    Message,
    State,
    Webhook,
    document_api,
    scope_key,
)

logger = logging.getLogger(__name__)

MAX_GET_FILE_SIZE = 20 * 1024 * 1024  # getFile refuses bigger files, as the real API does
MAX_TEXT_LENGTH = 4096  # UTF-16 code units, after entity parsing
MAX_CAPTION_LENGTH = 1024
MAX_CALLBACK_DATA_BYTES = 64
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
_SECRET_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{1,256}")
WEBHOOK_PORTS = (80, 88, 443, 8443)
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
WEBHOOK_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)


class BotApi:
    """The Bot API methods over the fake's ``State``; ``handle`` and ``download`` serve them."""

    def __init__(self, state: State) -> None:
        self.state = state
        self._poll_generation = 0  # counts getUpdates calls: a newer one ends an older one
        self._methods: dict[str, Callable[[Params], Any]] = {
            "getme": self.get_me,
            "deletewebhook": self.delete_webhook,
            "setwebhook": self.set_webhook,
            "setmycommands": self.set_my_commands,
            "getupdates": self.get_updates,
            "sendmessage": self.send_message,
            "sendphoto": self.send_photo,
            "senddocument": self.send_document,
            "sendchataction": self.send_chat_action,
            "getfile": self.get_file,
            "editmessagetext": self.edit_message_text,
            "editmessagereplymarkup": self.edit_message_reply_markup,
            "answercallbackquery": self.answer_callback_query,
        }

    # ------------------------------------------------------------ HTTP

    async def handle(self, request: web.Request) -> web.Response:
        """``/bot<token>/<method>``: run the method, answer as Telegram would."""
        method = request.match_info["method"]
        if request.match_info["token"] != self.state.bot.token:
            return ApiError("Unauthorized", 401).response()
        handler = self._methods.get(method.lower())
        if handler is None:
            logger.warning("bot called %s, which the fake does not implement", method)
            description = f"Not Found: method {method} is not implemented by the fake"
            return ApiError(description, 404).response()
        if (fault := self.state.faults.take(method)) is not None:
            return await self.state.faults.answer(
                fault, request, lambda: self._run(method, handler, request))
        return await self._run(method, handler, request)

    async def _run(self, method: str, handler: Callable[[Params], Any],
                   request: web.Request) -> web.Response:
        try:
            result = handler(await Params.read(request))
            if inspect.isawaitable(result):
                result = await result
        except ApiError as error:
            # A long poll superseded by the next one is routine: the bot's own shutdown makes one.
            level = logging.DEBUG if error.code == 409 else logging.INFO
            logger.log(level, "%s -> %s %s", method, error.code, error.description)
            return error.response()
        except web.HTTPRequestEntityTooLarge:
            return ApiError("Request Entity Too Large", 413).response()
        except ConnectionResetError:  # the bot hung up (it cancelled the call): nobody to answer
            logger.debug("%s: the bot hung up before its request was read", method)
            raise
        except Exception as error:  # a bug in the fake: tell the bot rather than drop the line
            logger.exception("%s failed inside the fake", method)
            return ApiError(f"Internal Server Error: {error!r}", 500).response()
        logger.debug("%s -> ok", method)
        return web.json_response({"ok": True, "result": result})

    async def download(self, request: web.Request) -> web.Response:
        """``/file/bot<token>/<file_path>``: a file's bytes, for the path getFile gave."""
        if request.match_info["token"] != self.state.bot.token:
            return ApiError("Unauthorized", 401).response()
        stored = self.state.files_by_path.get(request.match_info["file_path"])
        if stored is None:
            return ApiError("Not Found", 404).response()
        return web.Response(body=stored.data, content_type=stored.mime_type)

    # ------------------------------------------------------------ methods

    def get_me(self, p: Params) -> dict[str, Any]:
        return self.state.bot.user(full=True)

    def delete_webhook(self, p: Params) -> bool:
        if p.flag("drop_pending_updates"):
            self.state.updates.clear()
        self.state.webhook = None
        return True

    def set_webhook(self, p: Params) -> bool:
        url = p.text("url") or ""
        _check_webhook_url(url)
        secret_token = p.text("secret_token")
        if secret_token is not None and not _SECRET_TOKEN_RE.fullmatch(secret_token):
            raise bad_request("secret token contains unallowed characters")
        allowed_updates = p.obj("allowed_updates")
        if allowed_updates is not None and not (
            isinstance(allowed_updates, list) and all(isinstance(a, str) for a in allowed_updates)
        ):
            raise bad_request("can't parse allowed updates JSON object")
        if p.raw("certificate") is not None:
            raise bad_request("uploading a certificate is not implemented by the fake")
        if p.flag("drop_pending_updates"):
            self.state.updates.clear()
        self.state.webhook = Webhook(url, secret_token, allowed_updates)
        self.state.signal.notify()  # wakes the delivery; a waiting getUpdates ends with 409
        return True

    def set_my_commands(self, p: Params) -> bool:
        commands = p.obj("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise bad_request("can't parse commands JSON object")
        cleaned = [_validated_command(command) for command in commands]
        key = (scope_key(p.obj("scope")), p.text("language_code") or "")
        self.state.command_sets[key] = cleaned
        self.state.commands = copy.deepcopy(cleaned)
        self.state.changed()
        return True

    async def get_updates(self, p: Params) -> list[dict[str, Any]]:
        if self.state.webhook is not None:
            raise ApiError(WEBHOOK_CONFLICT, 409)
        self._acknowledge(p.integer("offset"))
        limit = min(max(p.integer("limit") or 100, 1), 100)
        timeout = min(max(p.number("timeout", 0.0), 0.0), MAX_LONG_POLL_SECONDS)
        self._poll_generation += 1
        generation = self._poll_generation
        self.state.signal.notify()  # a waiting older getUpdates now ends with 409, as in Telegram

        def ready() -> bool:
            return (
                bool(self.state.updates)
                or self.state.closing
                or generation != self._poll_generation
                or self.state.webhook is not None
            )

        await self.state.signal.wait_until(ready, timeout)
        if self.state.webhook is not None:  # set meanwhile: the updates are the webhook's now
            raise ApiError(WEBHOOK_CONFLICT, 409)
        if generation != self._poll_generation:
            raise ApiError(
                "Conflict: terminated by other getUpdates request; "
                "make sure that only one bot instance is running",
                409,
            )
        return copy.deepcopy(self.state.updates[:limit])

    def send_message(self, p: Params) -> dict[str, Any]:
        chat = self._chat(p)
        return self._send(chat, p, text_fields("text", *self._message_text(p)))

    def send_photo(self, p: Params) -> dict[str, Any]:
        chat = self._chat(p)
        try:
            sizes = self.state.store_photo(_upload(p, "photo").file.read())
        except ValueError as error:
            raise bad_request(str(error)) from error
        return self._send(chat, p, {"photo": sizes, **self._caption(p)})

    def send_document(self, p: Params) -> dict[str, Any]:
        chat = self._chat(p)
        upload = _upload(p, "document")
        name = upload.filename or "document"
        mime = mimetypes.guess_type(name)[0] or upload.content_type or "application/octet-stream"
        stored = self.state.store_file("document", upload.file.read(), mime, name)
        return self._send(chat, p, {"document": document_api(stored), **self._caption(p)})

    def send_chat_action(self, p: Params) -> bool:
        chat = self._chat(p)
        action = p.text("action")
        if action not in CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        self.state.chat_actions.append((chat.id, action))
        chat.action = (action, time.monotonic(), self.state.record_change(chat))
        return True

    def get_file(self, p: Params) -> dict[str, Any]:
        stored = self.state.files.get(p.text("file_id") or "")
        if stored is None:
            raise bad_request("invalid file_id")
        if len(stored.data) > MAX_GET_FILE_SIZE:
            raise bad_request("file is too big")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.data),
            "file_path": stored.file_path,
        }

    def edit_message_text(self, p: Params) -> dict[str, Any]:
        chat, message = self._edit_target(p)
        if "text" not in message.data:
            raise bad_request("there is no text in the message to edit")
        text, entities = self._message_text(p)
        changes = {"text": text, "entities": entities}
        return self._edit(chat, message, changes, _inline_keyboard(p))

    def edit_message_reply_markup(self, p: Params) -> dict[str, Any]:
        chat, message = self._edit_target(p)
        return self._edit(chat, message, {}, _inline_keyboard(p))

    def answer_callback_query(self, p: Params) -> bool:
        query_id = p.text("callback_query_id") or ""
        chat_id = self.state.pending_queries.pop(query_id, None)
        if chat_id is None:
            raise bad_request(
                "query is too old and response timeout expired or query ID is invalid"
            )
        answer = {"text": p.text("text"), "show_alert": p.flag("show_alert")}
        self.state.callback_answers[query_id] = answer
        chat = self.state.chats[chat_id]
        chat.answers.append((self.state.record_change(chat), {"id": query_id, **answer}))
        return True

    # ------------------------------------------------------------ shared by the methods

    def _acknowledge(self, offset: int | None) -> None:
        """Drop updates before ``offset``; a negative offset keeps only the last ``-offset``."""
        updates = self.state.updates
        if offset is None or offset == 0:
            return
        if offset < 0:
            del updates[: max(len(updates) + offset, 0)]
        else:
            updates[:] = [u for u in updates if u["update_id"] >= offset]

    def _chat(self, p: Params) -> Chat:
        value = p.raw("chat_id")
        if value is None:
            raise bad_request("chat_id is empty")
        try:
            chat_id = int(value)
        except (TypeError, ValueError) as error:
            raise bad_request("chat not found") from error
        chat = self.state.chats.get(chat_id)
        if chat is None:
            raise bad_request("chat not found")
        return chat

    @staticmethod
    def _message_text(p: Params) -> tuple[str, list[dict[str, Any]]]:
        text, entities = format_text(p.text("text") or "", p.text("parse_mode"))
        if not text:
            raise bad_request("message text is empty")
        if utf16_length(text) > MAX_TEXT_LENGTH:
            raise bad_request("message is too long")
        return text, entities

    @staticmethod
    def _caption(p: Params) -> dict[str, Any]:
        text, entities = format_text(p.text("caption") or "", p.text("parse_mode"))
        if utf16_length(text) > MAX_CAPTION_LENGTH:
            raise bad_request("message caption is too long")
        return text_fields("caption", text, entities)

    def _send(self, chat: Chat, p: Params, content: dict[str, Any]) -> dict[str, Any]:
        """The bot's new message in ``chat``, with its reply target and inline keyboard."""
        reply, markup = self._reply_target(chat, p), _inline_keyboard(p)
        bot = self.state.bot.user()
        message = self.state.add_message(chat, bot, content, reply, markup, from_bot=True)
        return copy.deepcopy(message.data)

    @staticmethod
    def _reply_target(chat: Chat, p: Params) -> Message | None:
        parameters = p.obj("reply_parameters") or {}
        if not isinstance(parameters, dict):
            raise bad_request("can't parse reply parameters JSON object")
        message_id = parameters.get("message_id", p.integer("reply_to_message_id"))
        if message_id is None:
            return None
        if not isinstance(message_id, int | str) or not str(message_id).lstrip("-").isdigit():
            raise bad_request("invalid reply_parameters specified")
        allow = bool(parameters.get("allow_sending_without_reply")) or p.flag(
            "allow_sending_without_reply"
        )
        target = chat.messages.get(int(message_id))
        if target is None and not allow:
            raise bad_request("message to be replied not found")
        return target

    def _edit_target(self, p: Params) -> tuple[Chat, Message]:
        if p.raw("inline_message_id") is not None:
            raise bad_request("inline messages are not supported by the fake")
        chat = self._chat(p)
        message_id = p.integer("message_id")
        if message_id is None:
            raise bad_request("message identifier is not specified")
        message = chat.messages.get(message_id)
        if message is None:
            raise bad_request("message to edit not found")
        if not message.from_bot:
            raise bad_request("message can't be edited")
        return chat, message

    def _edit(
        self,
        chat: Chat,
        message: Message,
        changes: dict[str, Any],
        markup: dict[str, Any] | None,
    ) -> dict[str, Any]:
        """Apply ``changes`` (a falsy value removes the field) and the new inline keyboard;
        as in Telegram, an edit without a keyboard removes the message's."""
        dropped = set(changes) | {"reply_markup", "edit_date"}
        new = {k: v for k, v in message.data.items() if k not in dropped}
        new.update({k: v for k, v in changes.items() if v})
        if markup is not None:
            new["reply_markup"] = markup
        old = {k: v for k, v in message.data.items() if k != "edit_date"}
        if new == old:
            raise bad_request(NOT_MODIFIED)
        new["edit_date"] = int(time.time())
        message.data = new
        self.state.record_change(chat, message)
        return copy.deepcopy(new)


def _check_webhook_url(url: str) -> None:
    """Telegram's rules for a webhook: HTTPS, on port 443, 80, 88 or 8443. The fake also takes
    plain HTTP to this machine (any port), where the tests and the playground run the bot's
    webhook server; real Telegram refuses that. It delivers nowhere else: the updates are
    made up, and the machine running the fake may not reach out."""
    parts = urlsplit(url)
    local = parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS
    if not local and (parts.scheme != "https" or not parts.hostname):
        raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
    try:
        port = parts.port
    except ValueError:  # not a number, or out of range
        port = 0
    if port == 0 or not (local or port in (None, *WEBHOOK_PORTS)):
        raise bad_request("bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443")
    if parts.hostname not in LOOPBACK_HOSTS:
        raise bad_request("bad webhook: delivery to another machine is not implemented by the fake")


def _upload(p: Params, name: str) -> web.FileField:
    """A file the bot uploads. It never resends one by file_id or URL, so the fake takes none."""
    upload = p.raw(name)
    if isinstance(upload, web.FileField):
        return upload
    if upload is None:
        raise bad_request(f"there is no {name} in the request")
    raise bad_request(f"sending a {name} by file_id or URL is not implemented by the fake")


def _inline_keyboard(p: Params) -> dict[str, Any] | None:
    """A message's ``reply_markup``: an inline keyboard, the only markup the bot sends."""
    markup = p.obj("reply_markup")
    if markup is None:
        return None
    if not isinstance(markup, dict) or "inline_keyboard" not in markup:
        raise bad_request("inline keyboard expected (the fake implements no other reply markup)")
    rows = markup["inline_keyboard"]
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_request(
            'can\'t parse inline keyboard: field "inline_keyboard" must be an Array of Arrays'
        )
    keyboard = [[_validated_button(button) for button in row] for row in rows]
    keyboard = [row for row in keyboard if row]
    return {"inline_keyboard": keyboard} if keyboard else None


def _validated_button(button: Any) -> dict[str, Any]:
    if not isinstance(button, dict) or not button.get("text"):
        raise bad_request(
            "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
        )
    if "callback_data" in button:
        data = button["callback_data"]
        if not isinstance(data, str) or not 1 <= len(data.encode()) <= MAX_CALLBACK_DATA_BYTES:
            raise bad_request("BUTTON_DATA_INVALID")
    elif "url" in button:
        if not button["url"]:
            raise bad_request("BUTTON_URL_INVALID")
    elif len(button) < 2:
        raise bad_request(
            "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
        )
    return dict(button)


def _validated_command(command: Any) -> dict[str, str]:
    if not isinstance(command, dict):
        raise bad_request("can't parse BotCommand JSON object")
    name, description = command.get("command"), command.get("description")
    if not isinstance(name, str) or not _COMMAND_RE.fullmatch(name):
        raise bad_request("BOT_COMMAND_INVALID")
    if not isinstance(description, str) or not 1 <= len(description.strip()) <= 256:
        raise bad_request("command description is empty")
    return {"command": name, "description": description}
