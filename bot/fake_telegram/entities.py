"""Telegram's processing of a message text: HTML markup becomes entities, surrounding whitespace
goes, and /commands and URLs are found. Offsets and lengths count UTF-16 code units, as Telegram's.

HTML is the only parse mode: it is the one the bot sends (``ParseMode.HTML`` in bot/handlers.py).
Any other is refused with an error naming it, so that a bot switching to MarkdownV2 fails in the
tests instead of getting replies Telegram would format differently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

from bot.fake_telegram.errors import ApiError, bad_request

Entity = dict[str, Any]  # a Bot API MessageEntity

_ENTITIES_KEY = {"text": "entities", "caption": "caption_entities"}
_AUTO_ENTITY_RE = re.compile(
    r"(?P<bot_command>(?<![\w/])/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?(?![\w/@]))"
    r"|(?P<url>\bhttps?://[^\s<>\"]*[^\s<>\".,;:!?)\]'])"
)
_OPAQUE_ENTITIES = frozenset({"code", "pre", "text_link", "url", "bot_command"})
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


def format_text(raw: str, parse_mode: str | None = None) -> tuple[str, list[Entity]]:
    """The text and entities Telegram makes of ``raw``: markup parsed, trimmed, commands and
    URLs found. Raises ``ApiError`` ("can't parse entities: ...") for malformed HTML."""
    if not parse_mode:
        text, found = raw, []
    elif parse_mode.lower() == "html":
        text, found = _HtmlEntityParser(raw).parse()
    else:
        raise bad_request(f"parse_mode {parse_mode} is not implemented by the fake")
    text, found = _trimmed(text, found)
    return text, _detect_entities(text, found)


def text_fields(key: str, text: str, entities: list[Entity]) -> dict[str, Any]:
    """``text`` and ``entities`` (or ``caption`` and ``caption_entities``) as a Message has them:
    empty ones left out."""
    fields = {key: text, _ENTITIES_KEY[key]: entities}
    return {name: value for name, value in fields.items() if value}


def utf16_length(text: str) -> int:
    """Length in UTF-16 code units, the unit of Telegram's offsets and length limits."""
    return len(text.encode("utf-16-le")) // 2


def _entity(kind: str, offset: int, length: int, **extra: Any) -> Entity:
    return {"type": kind, "offset": offset, "length": length, **extra}


def _entity_order(entity: Entity) -> tuple[int, int]:
    return entity["offset"], -entity["length"]


def _detect_entities(text: str, entities: list[Entity]) -> list[Entity]:
    """Add the ``bot_command`` and ``url`` entities Telegram finds in any text by itself."""
    taken = [
        (e["offset"], e["offset"] + e["length"]) for e in entities if e["type"] in _OPAQUE_ENTITIES
    ]
    found = list(entities)
    for match in _AUTO_ENTITY_RE.finditer(text):
        offset, length = utf16_length(text[: match.start()]), utf16_length(match.group())
        if not any(offset < end and start < offset + length for start, end in taken):
            found.append(_entity(str(match.lastgroup), offset, length))
    return sorted(found, key=_entity_order)


def _trimmed(text: str, entities: list[Entity]) -> tuple[str, list[Entity]]:
    """Strip surrounding whitespace as Telegram does, keeping entities in place."""
    stripped = text.strip()
    shift = utf16_length(text[: len(text) - len(text.lstrip())])
    size = utf16_length(stripped)
    kept = []
    for entity in entities:
        start = max(entity["offset"] - shift, 0)
        end = min(entity["offset"] + entity["length"] - shift, size)
        if end > start:
            kept.append({**entity, "offset": start, "length": end - start})
    return stripped, kept


def _cannot_parse(detail: str) -> ApiError:
    return bad_request(f"can't parse entities: {detail}")


@dataclass
class _OpenEntity:
    """An entity whose start tag was seen and whose end tag is still to come."""

    tag: str
    kind: str
    offset: int  # UTF-16 offset in the output text
    extra: dict[str, Any] = field(default_factory=dict)


class _HtmlEntityParser(HTMLParser):
    """``parse_mode=HTML``: the tags Telegram supports become entities, others are errors."""

    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self._source = source
        self._line_starts = [0] + [m.end() for m in re.finditer("\n", source)]
        self._parts: list[str] = []
        self._length = 0  # of the output so far, in UTF-16 code units
        self._open: list[_OpenEntity] = []
        self._entities: list[Entity] = []

    def parse(self) -> tuple[str, list[Entity]]:
        self.feed(self._source)
        self.close()
        if self._open:
            tag = self._open[-1].tag
            raise _cannot_parse(f'Can\'t find end tag corresponding to start tag "{tag}"')
        return "".join(self._parts), sorted(self._entities, key=_entity_order)

    def handle_data(self, data: str) -> None:
        self._parts.append(data)
        self._length += utf16_length(data)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag not in _HTML_ENTITY_TYPES or (
            tag == "span" and attributes.get("class") != "tg-spoiler"
        ):
            offset = self._byte_offset()
            raise _cannot_parse(f'Unsupported start tag "{tag}" at byte offset {offset}')
        entity = _OpenEntity(tag, _HTML_ENTITY_TYPES[tag], self._length)
        if tag == "a":
            entity.extra["url"] = attributes.get("href", "")
        elif tag == "blockquote" and "expandable" in attributes:
            entity.kind = "expandable_blockquote"
        elif tag == "tg-emoji":
            entity.extra["custom_emoji_id"] = attributes.get("emoji-id", "")
        elif tag == "code" and attributes.get("class", "").startswith("language-"):
            entity.extra["language"] = attributes["class"].removeprefix("language-")
        self._open.append(entity)

    def handle_endtag(self, tag: str) -> None:
        if not self._open:
            raise _cannot_parse(f"Unexpected end tag at byte offset {self._byte_offset()}")
        entity = self._open.pop()
        if entity.tag != tag:
            raise _cannot_parse(
                f"Unmatched end tag at byte offset {self._byte_offset()}, "
                f'expected "</{entity.tag}>", found "</{tag}>"'
            )
        language = entity.extra.pop("language", None)  # only a <pre> keeps a language
        if tag == "code" and self._open and self._open[-1].tag == "pre" and language:
            self._open[-1].extra["language"] = language  # <pre><code class="language-x">
            return
        if entity.kind == "text_link" and not entity.extra["url"]:
            return
        length = self._length - entity.offset
        if length > 0:
            self._entities.append(_entity(entity.kind, entity.offset, length, **entity.extra))

    def _byte_offset(self) -> int:
        """Where the parser is in the source, in bytes of UTF-8, as Telegram's errors say."""
        line, column = self.getpos()
        return len(self._source[: self._line_starts[line - 1] + column].encode())
