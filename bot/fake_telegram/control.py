"""The playground's control API: the chat page at ``/`` and, under ``/api/``, what the page (or a
test in another process) does as Telegram users: send, press buttons, read a chat as it changes.
"""

from __future__ import annotations

import mimetypes
import time
import urllib.parse
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.fake_telegram.errors import ApiError
from bot.fake_telegram.params import Params
from bot.fake_telegram.state import MAX_LONG_POLL_SECONDS, Chat, export
from bot.fake_telegram.users import ChatSpec, Users, UserSpec

PLAYGROUND_PAGE = Path(__file__).resolve().parents[1] / "static" / "playground.html"
DEFAULT_USER_ID = 1001
TYPING_SECONDS = 5.0  # how long a client shows a chat action


class ControlApi:
    """HTTP handlers for the page, acting through ``users``."""

    def __init__(self, users: Users) -> None:
        self.users = users
        self.state = users.state

    async def page(self, request: web.Request) -> web.StreamResponse:
        """``GET /``: the playground page."""
        return web.FileResponse(PLAYGROUND_PAGE, headers={"Cache-Control": "no-store"})

    async def me(self, request: web.Request) -> web.Response:
        """``GET /api/me``: the bot's name and username, for the page's header."""
        return web.json_response(self.state.bot.user(full=True))

    async def send(self, request: web.Request) -> web.Response:
        """``POST /api/send``: a user sends text, or a file with an optional caption."""
        try:
            p = await Params.read(request)
            chat, user = _specs(p)
            message = self._send(p, chat, user)
        except (ValueError, ApiError) as error:
            return web.json_response({"error": str(error)}, status=400)
        return web.json_response(message)

    async def press(self, request: web.Request) -> web.Response:
        """``POST /api/press``: a user taps an inline button; the callback query's id."""
        try:
            p = await Params.read(request)
            chat, user = _specs(p)
            message_id = p.integer("message_id", required=True) or 0
            query_id = self.users.press_button(chat, user, message_id, p.text("data") or "")
        except (ValueError, ApiError) as error:
            return web.json_response({"error": str(error)}, status=400)
        return web.json_response({"id": query_id})

    async def messages(self, request: web.Request) -> web.Response:
        """``GET /api/messages?chat_id=&since=&wait=``: what changed in a chat after version
        ``since``, waiting up to ``wait`` seconds for a change (the page's long poll)."""
        try:
            p = Params(dict(request.query))
            chat_id = p.integer("chat_id", required=True) or 0
            since = p.integer("since") or 0
            wait = min(max(p.number("wait", 0.0), 0.0), MAX_LONG_POLL_SECONDS)
        except ApiError as error:
            return web.json_response({"error": error.description}, status=400)

        def ready() -> bool:
            chat = self.state.chats.get(chat_id)
            return self.state.closing or (chat is not None and chat.changed > since)

        await self.state.signal.wait_until(ready, wait)
        return web.json_response(self._chat_changes(chat_id, since))

    async def commands(self, request: web.Request) -> web.Response:
        """``GET /api/commands?chat_id=&chat_type=&language_code=``: the chat's command menu."""
        p = Params(dict(request.query))
        try:
            chat_id = p.integer("chat_id")
        except ApiError as error:
            return web.json_response({"error": error.description}, status=400)
        chat_type = p.text("chat_type") or "private"
        return web.json_response(
            self.users.commands_for(chat_id, chat_type, p.text("language_code") or "")
        )

    async def file(self, request: web.Request) -> web.Response:
        """``GET /files/<file_id>``: a message's media, for the page to show."""
        stored = self.state.files.get(request.match_info["file_id"])
        if stored is None:
            return web.json_response({"error": "no such file"}, status=404)
        headers = {"Cache-Control": "max-age=3600"}
        if stored.file_name:
            quoted = urllib.parse.quote(stored.file_name)
            headers["Content-Disposition"] = f"inline; filename*=UTF-8''{quoted}"
        return web.Response(body=stored.data, content_type=stored.mime_type, headers=headers)

    def _send(self, p: Params, chat: ChatSpec, user: UserSpec) -> dict[str, Any]:
        upload, text, reply_to = p.raw("file"), p.text("text"), p.integer("reply_to")
        if not isinstance(upload, web.FileField):
            if not text:
                raise ValueError("nothing to send: give text or a file")
            return self.users.send_text(chat, user, text, reply_to)
        data = upload.file.read()
        mime = upload.content_type or "application/octet-stream"
        kind = p.text("kind") or ("photo" if mime.startswith("image/") else "document")
        if kind == "photo":
            return self.users.send_photo(chat, user, data, text, reply_to)
        if kind == "document":
            name = upload.filename or "file"
            mime = mimetypes.guess_type(name)[0] or mime
            return self.users.send_document(chat, user, data, name, mime, text, reply_to)
        if kind == "video":
            return self.users.send_video(chat, user, data, reply_to)
        raise ValueError(f"kind must be photo, document or video, not {kind!r}")

    def _chat_changes(self, chat_id: int, since: int) -> dict[str, Any]:
        """What changed in a chat after version ``since``, for the page."""
        chat = self.state.chats.get(chat_id)
        changes: dict[str, Any] = {
            "version": self.state.version,
            "messages": [],
            "callback_answers": [],
            "typing": False,
            "action": None,
            "typing_for": 0.0,
        }
        if chat is None:
            return changes
        action, remaining = _current_action(chat)
        changes.update(
            messages=[export(m) for m in chat.messages.values() if m.version > since],
            callback_answers=[answer for version, answer in chat.answers if version > since],
            typing=action is not None,
            action=action,
            typing_for=round(remaining, 2),
        )
        return changes


def _specs(p: Params) -> tuple[ChatSpec, UserSpec]:
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


def _current_action(chat: Chat) -> tuple[str | None, float]:
    """The chat action a client would still show, and for how many more seconds."""
    if chat.action is None:
        return None, 0.0
    action, started, version = chat.action
    remaining = TYPING_SECONDS - (time.monotonic() - started)
    if remaining <= 0 or chat.last_bot_message > version:
        return None, 0.0
    return action, remaining
