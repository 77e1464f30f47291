"""Telegram users, as tests and the playground page drive them: they send messages, photos and
files, press inline buttons, and read the chats as the bot answers."""

from __future__ import annotations

import copy
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.fake_telegram.entities import format_text, text_fields
from bot.fake_telegram.media import image_size
from bot.fake_telegram.state import (
    Chat,
    Message,
    State,
    Webhook,
    document_api,
    export,
    scope_key,
)

CHAT_TYPES = frozenset({"private", "group", "supergroup"})
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


class Users:
    """What Telegram's users do, on the fake's ``State``; each action becomes the bot's update."""

    def __init__(self, state: State) -> None:
        self.state = state

    # ------------------------------------------------------------ acting as users

    def send_text(
        self, chat: ChatSpec, user: UserSpec, text: str, reply_to: int | None = None
    ) -> dict[str, Any]:
        """``user`` writes ``text`` in ``chat``; "/cmd args" gets a bot_command entity."""
        text, entities = format_text(text)
        if not text:
            raise ValueError("message text is empty")
        return self._send(chat, user, text_fields("text", text, entities), reply_to)

    def send_photo(
        self,
        chat: ChatSpec,
        user: UserSpec,
        photo_bytes: bytes,
        caption: str | None = None,
        reply_to: int | None = None,
    ) -> dict[str, Any]:
        """``user`` sends a photo (as Telegram clients do: compressed, thumbnail added)."""
        return self.send_stored_photo(chat, user, self.state.store_photo(photo_bytes), caption,
                                      reply_to)

    def send_stored_photo(
        self,
        chat: ChatSpec,
        user: UserSpec,
        sizes: list[dict[str, Any]],
        caption: str | None = None,
        reply_to: int | None = None,
    ) -> dict[str, Any]:
        """``user`` sends a photo kept already (``State.store_photo``'s sizes), as a forward
        does: nothing to encode, so a load test sends at once."""
        return self._send(chat, user, {"photo": sizes, **_caption(caption)}, reply_to)

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
        stored = self.state.store_file("document", data, mime_type, file_name)
        content = {"document": document_api(stored), **_caption(caption)}
        return self._send(chat, user, content, reply_to)

    def send_sticker(
        self, chat: ChatSpec, user: UserSpec, data: bytes, reply_to: int | None = None
    ) -> dict[str, Any]:
        """``user`` sends a (static, WebP) sticker."""
        stored = self.state.store_file("sticker", data, "image/webp")
        width, height = image_size(data, (512, 512))
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
        return self._send(chat, user, {"sticker": sticker}, reply_to)

    def send_video(
        self, chat: ChatSpec, user: UserSpec, data: bytes, reply_to: int | None = None
    ) -> dict[str, Any]:
        """``user`` sends a video (shown as 640x360, 1 s: the fake does not decode video)."""
        stored = self.state.store_file("video", data, "video/mp4", "video.mp4")
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
        return self._send(chat, user, {"video": video}, reply_to)

    def press_button(
        self, chat: ChatSpec, user: UserSpec, message_id: int, data: str, *, strict: bool = True
    ) -> str:
        """``user`` taps the inline button with ``data`` under the bot's message; the query id.

        ``strict=False`` lets a test send callback data that no button carries (a forged query).
        """
        chat_state = self._ensure_chat(chat, user)
        message = chat_state.messages.get(message_id)
        if message is None or not message.from_bot:
            raise ValueError(f"no bot message {message_id} in chat {chat_state.id}")
        if strict and data not in _callback_data(message.data):
            raise ValueError(f"message {message_id} has no button with callback_data {data!r}")
        query_id = str(secrets.randbits(62))
        query = {
            "id": query_id,
            "from": user.to_api(),
            "message": copy.deepcopy(message.data),
            "chat_instance": chat_state.chat_instance,
            "data": data,
        }
        self.state.pending_queries[query_id] = chat_state.id
        chat_state.last_user_action = self.state.version
        self.state.push_update({"callback_query": query})
        return query_id

    def expire_file(self, file_id: str) -> None:
        """Make ``getFile`` refuse ``file_id``, as Telegram does for ids it no longer serves."""
        stored = self.state.files.pop(file_id)
        self.state.files_by_path.pop(stored.file_path, None)

    def fail_next(self, method: str, kind: str, times: int = 1) -> None:
        """The next ``times`` calls of Bot API ``method`` suffer ``kind`` (see ``faults``)."""
        self.state.faults.add(method, kind, times)

    # ------------------------------------------------------------ reading the chats

    def messages(self, chat_id: int) -> list[dict[str, Any]]:
        """The transcript: user and bot messages in order, current versions.

        Each is the Bot API Message plus ``_version`` (the change counter when it last changed)
        and, for media, ``_file_url`` (a path on this server, e.g. ``/files/<file_id>``).
        """
        chat = self.state.chats.get(chat_id)
        return [export(message) for message in chat.messages.values()] if chat else []

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
            chat = self.state.chats.get(chat_id)
            since = chat.last_user_action if chat else 0
        found: list[dict[str, Any]] = []

        def ready() -> bool:
            match = self._find_bot_version(chat_id, predicate, since)
            if match is not None:
                found.append(match)
            return bool(found) or self.state.closing

        await self.state.signal.wait_until(ready, timeout)
        if found:
            return found[0]
        raise TimeoutError(
            f"no bot message in chat {chat_id} matched within {timeout} s "
            f"(versions after {since}); transcript:\n{self.transcript(chat_id)}"
        )

    def transcript(self, chat_id: int) -> str:
        """The chat as readable lines, for failure messages."""
        lines = [_describe(message) for message in self.messages(chat_id)]
        return "\n".join(lines) if lines else "(no messages)"

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
                commands = self.state.command_sets.get((scope_key(scope), language))
                if commands:
                    return copy.deepcopy(commands)
        return []

    @property
    def commands(self) -> list[dict[str, str]]:
        """The command list the bot set last (any scope)."""
        return self.state.commands

    @property
    def webhook(self) -> Webhook | None:
        """The webhook the bot set (url, secret_token, allowed_updates); None while it polls."""
        return self.state.webhook

    @property
    def chat_actions(self) -> list[tuple[int, str]]:
        """Every chat action the bot sent: (chat id, action)."""
        return self.state.chat_actions

    @property
    def callback_answers(self) -> dict[str, dict[str, Any]]:
        """The bot's answers to button presses: query id -> {text, show_alert}."""
        return self.state.callback_answers

    # ------------------------------------------------------------ state changes

    def _ensure_chat(self, chat: ChatSpec, user: UserSpec) -> Chat:
        if chat.type not in CHAT_TYPES:
            raise ValueError(f"chat type must be one of {sorted(CHAT_TYPES)}, not {chat.type!r}")
        if chat.type == "private" and chat.id != user.id:
            raise ValueError("a private chat's id must equal its user's id")
        if chat.type != "private" and chat.id >= 0:
            raise ValueError("group chat ids are negative, as in Telegram")
        existing = self.state.chats.get(chat.id)
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
        created = Chat(api=api, chat_instance=str(-secrets.randbits(62)))
        self.state.chats[chat.id] = created
        return created

    def _send(
        self, chat: ChatSpec, user: UserSpec, content: dict[str, Any], reply_to: int | None
    ) -> dict[str, Any]:
        chat_state = self._ensure_chat(chat, user)
        reply = None
        if reply_to is not None:
            reply = chat_state.messages.get(reply_to)
            if reply is None:
                raise ValueError(f"no message {reply_to} in chat {chat_state.id} to reply to")
        message = self.state.add_message(
            chat_state, user.to_api(), content, reply, None, from_bot=False
        )
        chat_state.last_user_action = message.version
        if self._delivered(chat_state, message):
            self.state.push_update({"message": copy.deepcopy(message.data)})
        return export(message)

    def _delivered(self, chat: Chat, message: Message) -> bool:
        """Whether the bot gets this user message (see ``BotAccount.group_privacy``)."""
        bot = self.state.bot
        if chat.api["type"] == "private" or not bot.group_privacy:
            return True
        data = message.data
        entities = data.get("entities", []) + data.get("caption_entities", [])
        reply = data.get("reply_to_message", {})
        text = data.get("text", data.get("caption", ""))
        return (
            any(entity["type"] == "bot_command" for entity in entities)
            or reply.get("from", {}).get("id") == bot.id
            or f"@{bot.username}".lower() in text.lower()
        )

    def _find_bot_version(
        self, chat_id: int, predicate: Callable[[dict[str, Any]], bool], since: int
    ) -> dict[str, Any] | None:
        chat = self.state.chats.get(chat_id)
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


def _caption(caption: str | None) -> dict[str, Any]:
    return text_fields("caption", *format_text(caption or ""))


def _callback_data(message: dict[str, Any]) -> list[str]:
    rows = message.get("reply_markup", {}).get("inline_keyboard", [])
    return [button["callback_data"] for row in rows for button in row if "callback_data" in button]


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
