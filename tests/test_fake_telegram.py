"""The fake Bot API, driven over real HTTP by python-telegram-bot's own ``Bot`` and by aiohttp."""

from __future__ import annotations

import asyncio
import contextlib
import io
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest
import pytest_asyncio
import telegram
from aiohttp import web
from PIL import Image
from telegram import (
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    ReplyKeyboardMarkup,
    ReplyParameters,
)
from telegram.constants import ChatAction, ParseMode
from telegram.error import BadRequest, Conflict, InvalidToken
from telegram.ext import ApplicationBuilder, CallbackQueryHandler, CommandHandler, ContextTypes

from bot.fake_telegram import ChatSpec, FakeTelegram, UserSpec
from bot.fake_telegram import webhook as webhook_delivery
from bot.fake_telegram.entities import format_text
from bot.fake_telegram.state import Webhook

pytestmark = pytest.mark.asyncio

ALEX = UserSpec(1001, "Alex", "alex")
SAM = UserSpec(1002, "Sam")
PRIVATE = ChatSpec(ALEX.id)
GROUP = ChatSpec(-100200300, "group", "Adoption event")


def image_bytes(size: tuple[int, int], fmt: str = "JPEG", color: str = "tan") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, fmt)
    return buffer.getvalue()


def decoded_size(data: bytes | bytearray) -> tuple[int, int]:
    with Image.open(io.BytesIO(bytes(data))) as image:
        return image.size


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    server = FakeTelegram()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest_asyncio.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[telegram.Bot]:
    async with telegram.Bot(
        fake.token, base_url=fake.base_url, base_file_url=fake.base_file_url
    ) as client:
        yield client


@pytest_asyncio.fixture
async def http(fake: FakeTelegram) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=fake.url) as session:
        yield session


# ------------------------------------------------------------------ Bot API through PTB


async def test_get_me_delete_webhook_and_urls(fake: FakeTelegram, bot: telegram.Bot) -> None:
    assert fake.url.startswith("http://127.0.0.1:")
    assert fake.base_url == fake.url + "/bot"
    assert fake.base_file_url == fake.url + "/file/bot"
    me = await bot.get_me()
    assert (me.id, me.is_bot, me.username, me.first_name) == (
        123456,
        True,
        "WhatBreedBot",
        "WhatBreed",
    )
    assert await bot.delete_webhook(drop_pending_updates=False) is True


async def test_commands_round_trip(fake: FakeTelegram, bot: telegram.Bot) -> None:
    commands = [BotCommand("start", "Say hello"), BotCommand("stats", "Your numbers")]
    assert await bot.set_my_commands(commands)
    assert fake.commands_for() == fake.commands == [
        {"command": "start", "description": "Say hello"},
        {"command": "stats", "description": "Your numbers"},
    ]
    with pytest.raises(BadRequest, match="(?i)bot_command_invalid"):
        await bot.set_my_commands([BotCommand("Bad Command", "x")])


async def test_get_updates_long_polls_and_times_out(bot: telegram.Bot) -> None:
    started = time.monotonic()
    assert await bot.get_updates(timeout=1) == ()
    assert 0.9 <= time.monotonic() - started < 3


async def test_get_updates_wakes_for_a_photo(fake: FakeTelegram, bot: telegram.Bot) -> None:
    poll = asyncio.create_task(bot.get_updates(timeout=10))
    await asyncio.sleep(0.2)
    started = time.monotonic()
    fake.send_photo(PRIVATE, ALEX, image_bytes((640, 480)), caption="who is this?")
    updates = await poll
    assert time.monotonic() - started < 2
    (update,) = updates
    message = update.message
    assert message.chat.type == "private" and message.chat.id == ALEX.id
    assert message.from_user.id == ALEX.id and not message.from_user.is_bot
    assert message.caption == "who is this?"
    assert [(p.width, p.height) for p in message.photo] == [(90, 68), (640, 480)]


async def test_offset_acknowledges_and_unread_updates_stay(
    fake: FakeTelegram, bot: telegram.Bot
) -> None:
    for text in ("one", "two", "three"):
        fake.send_text(PRIVATE, ALEX, text)
    first = await bot.get_updates(timeout=0)
    assert [u.message.text for u in first] == ["one", "two", "three"]
    again = await bot.get_updates(timeout=0)  # nothing acknowledged: the same updates
    assert [u.update_id for u in again] == [u.update_id for u in first]
    rest = await bot.get_updates(offset=first[1].update_id + 1, timeout=0)
    assert [u.message.text for u in rest] == ["three"]
    assert await bot.get_updates(offset=first[-1].update_id + 1, timeout=0) == ()


async def test_a_second_poller_ends_the_first_with_conflict(
    fake: FakeTelegram, bot: telegram.Bot
) -> None:
    older = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.2)
    async with telegram.Bot(fake.token, base_url=fake.base_url) as second_instance:
        assert await second_instance.get_updates(timeout=0) == ()
    with pytest.raises(Conflict):
        await older


async def test_send_message_keyboard_reply_and_markup(
    fake: FakeTelegram, bot: telegram.Bot
) -> None:
    question = fake.send_text(PRIVATE, ALEX, "/start now")
    assert question["entities"] == [{"type": "bot_command", "offset": 0, "length": 6}]
    keyboard = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton("Yes", callback_data="yes"),
                InlineKeyboardButton("No", callback_data="no"),
            ]
        ]
    )
    sent = await bot.send_message(
        ALEX.id,
        "<b>Labrador</b> (93%).\n",
        parse_mode=ParseMode.HTML,
        reply_markup=keyboard,
        reply_parameters=ReplyParameters(question["message_id"]),
    )
    assert sent.text == "Labrador (93%)."
    assert sent.entities[0].type == "bold" and sent.entities[0].length == 8
    assert sent.reply_markup == keyboard
    assert sent.reply_to_message.text == "/start now"
    assert sent.from_user.is_bot and sent.chat.id == ALEX.id
    transcript = fake.messages(ALEX.id)
    assert [m["message_id"] for m in transcript] == [question["message_id"], sent.message_id]
    assert transcript[-1]["_version"] > transcript[0]["_version"]


async def test_send_message_errors(fake: FakeTelegram, bot: telegram.Bot) -> None:
    fake.send_text(PRIVATE, ALEX, "hi")
    with pytest.raises(BadRequest, match="(?i)message to be replied not found"):
        await bot.send_message(ALEX.id, "x", reply_parameters=ReplyParameters(999))
    sent = await bot.send_message(
        ALEX.id, "x", reply_parameters=ReplyParameters(999, allow_sending_without_reply=True)
    )
    assert sent.reply_to_message is None
    with pytest.raises(BadRequest, match="(?i)message text is empty"):
        await bot.send_message(ALEX.id, "  ")
    with pytest.raises(BadRequest, match="(?i)chat not found"):
        await bot.send_message(424242, "nobody here")
    with pytest.raises(BadRequest, match="(?i)can't parse entities"):
        await bot.send_message(ALEX.id, "<b>open", parse_mode=ParseMode.HTML)
    with pytest.raises(BadRequest, match="(?i)button_data_invalid"):
        too_long = InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="x" * 65)]])
        await bot.send_message(ALEX.id, "x", reply_markup=too_long)


async def test_what_the_bot_does_not_send_is_refused_by_name(
    fake: FakeTelegram, bot: telegram.Bot
) -> None:
    """Markdown, reply keyboards, resending a file_id: Telegram takes them, the bot sends none."""
    fake.send_text(PRIVATE, ALEX, "hi")
    with pytest.raises(BadRequest, match="(?i)parse_mode MarkdownV2 is not implemented"):
        await bot.send_message(ALEX.id, "*Labrador*", parse_mode=ParseMode.MARKDOWN_V2)
    with pytest.raises(BadRequest, match="(?i)inline keyboard expected"):
        await bot.send_message(ALEX.id, "Which?", reply_markup=ReplyKeyboardMarkup([["Beagle"]]))
    with pytest.raises(BadRequest, match="(?i)photo by file_id or URL is not implemented"):
        await bot.send_photo(ALEX.id, "AgACfileid")


async def test_html_entities() -> None:
    text, entities = format_text('🐶 <a href="https://x.org">dog</a> &amp; /help', "HTML")
    assert text == "🐶 dog & /help"
    assert [(e["type"], e["offset"], e["length"]) for e in entities] == [
        ("text_link", 3, 3),  # the emoji is two UTF-16 units
        ("bot_command", 9, 5),
    ]


async def test_edit_message_text_and_not_modified(fake: FakeTelegram, bot: telegram.Bot) -> None:
    fake.send_photo(PRIVATE, ALEX, image_bytes((200, 100)))
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Correct it", callback_data="fix")]])
    sent = await bot.send_message(ALEX.id, "Looking…", reply_markup=keyboard)
    edited = await bot.edit_message_text(
        "Beagle", chat_id=ALEX.id, message_id=sent.message_id, reply_markup=keyboard
    )
    assert edited.text == "Beagle" and edited.edit_date is not None
    assert edited.reply_markup == keyboard
    with pytest.raises(BadRequest, match="(?i)message is not modified"):
        await bot.edit_message_text(
            "Beagle", chat_id=ALEX.id, message_id=sent.message_id, reply_markup=keyboard
        )
    dropped = await bot.edit_message_text("Beagle", chat_id=ALEX.id, message_id=sent.message_id)
    assert dropped.reply_markup is None  # as in Telegram: an edit without markup removes it
    restored = await bot.edit_message_reply_markup(ALEX.id, sent.message_id, reply_markup=keyboard)
    assert restored.reply_markup == keyboard
    with pytest.raises(BadRequest, match="(?i)message to edit not found"):
        await bot.edit_message_text("x", chat_id=ALEX.id, message_id=999)
    (current,) = [m for m in fake.messages(ALEX.id) if m["message_id"] == sent.message_id]
    assert current["text"] == "Beagle" and "reply_markup" in current


async def test_press_button_and_answer_callback_query(
    fake: FakeTelegram, bot: telegram.Bot
) -> None:
    fake.send_text(PRIVATE, ALEX, "/start")
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Yes", callback_data="confirm:1")]])
    sent = await bot.send_message(ALEX.id, "Is it a beagle?", reply_markup=keyboard)
    query_id = fake.press_button(PRIVATE, ALEX, sent.message_id, "confirm:1")
    updates = await bot.get_updates(timeout=0)
    query = updates[-1].callback_query
    assert query.id == query_id and query.data == "confirm:1"
    assert query.message.message_id == sent.message_id and query.message.text == "Is it a beagle?"
    assert query.from_user.id == ALEX.id
    assert await query.answer("Thanks!", show_alert=True)
    assert fake.callback_answers[query_id] == {"text": "Thanks!", "show_alert": True}
    with pytest.raises(BadRequest, match="(?i)query ID is invalid"):
        await bot.answer_callback_query(query_id)  # answered already
    with pytest.raises(ValueError, match="(?i)no button"):
        fake.press_button(PRIVATE, ALEX, sent.message_id, "forged")


async def test_send_chat_action(fake: FakeTelegram, bot: telegram.Bot) -> None:
    fake.send_text(PRIVATE, ALEX, "hi")
    assert await bot.send_chat_action(ALEX.id, ChatAction.TYPING)
    assert fake.chat_actions == [(ALEX.id, "typing")]
    with pytest.raises(BadRequest, match="(?i)wrong parameter action"):
        await bot.send_chat_action(ALEX.id, "dancing")


async def test_bot_uploads_photo_and_document(fake: FakeTelegram, bot: telegram.Bot) -> None:
    fake.send_text(PRIVATE, ALEX, "/export")
    png = image_bytes((1600, 800), "PNG")
    photo_message = await bot.send_photo(ALEX.id, InputFile(png, filename="qr.png"), caption="QR")
    sizes = [(p.width, p.height) for p in photo_message.photo]
    assert sizes == [(90, 45), (1280, 640)] and photo_message.caption == "QR"
    csv = b"breed,count\nbeagle,3\n"
    doc_message = await bot.send_document(ALEX.id, InputFile(csv, filename="stats.csv"))
    document = doc_message.document
    assert (document.file_name, document.mime_type, document.file_size) == (
        "stats.csv",
        "text/csv",
        len(csv),
    )
    downloaded = await (await bot.get_file(document.file_id)).download_as_bytearray()
    assert bytes(downloaded) == csv


async def test_user_photo_download_sizes(fake: FakeTelegram, bot: telegram.Bot) -> None:
    sent = fake.send_photo(PRIVATE, ALEX, image_bytes((3000, 2000)))
    assert sent["_file_url"] == f"/files/{sent['photo'][-1]['file_id']}"
    (update,) = await bot.get_updates(timeout=0)
    thumbnail, largest = update.message.photo
    largest_file = await bot.get_file(largest.file_id)
    assert largest_file.file_path.startswith(fake.base_file_url + fake.token + "/photos/")
    assert largest_file.file_size == largest.file_size
    assert decoded_size(await largest_file.download_as_bytearray()) == (1280, 853)
    thumb_bytes = await (await bot.get_file(thumbnail.file_id)).download_as_bytearray()
    assert max(decoded_size(thumb_bytes)) <= 90
    small = fake.send_photo(PRIVATE, ALEX, original := image_bytes((400, 300)))
    kept = await (await bot.get_file(small["photo"][-1]["file_id"])).download_as_bytearray()
    assert bytes(kept) == original  # a JPEG within 1280 px is kept as it is


async def test_user_document_round_trip_and_size_limit(
    fake: FakeTelegram, bot: telegram.Bot
) -> None:
    data = bytes(range(256)) * 40
    fake.send_document(PRIVATE, ALEX, data, "dog.raw", "application/octet-stream", caption="raw")
    big = bytes(20 * 1024 * 1024 + 1)
    fake.send_document(PRIVATE, ALEX, big, "huge.bin", "application/octet-stream")
    small_update, big_update = await bot.get_updates(timeout=0)
    document = small_update.message.document
    assert (document.file_name, document.file_size) == ("dog.raw", len(data))
    downloaded = await (await bot.get_file(document.file_id)).download_as_bytearray()
    assert bytes(downloaded) == data
    with pytest.raises(BadRequest, match="(?i)file is too big"):
        await bot.get_file(big_update.message.document.file_id)


async def test_wrong_token_and_unknown_method(fake: FakeTelegram) -> None:
    stranger = telegram.Bot("654321:wrong", base_url=fake.base_url)
    with pytest.raises(InvalidToken):
        async with stranger:  # initialize() calls getMe
            pass
    async with telegram.Bot(fake.token, base_url=fake.base_url) as client:
        with pytest.raises(InvalidToken, match="(?i)method sendPoll is not implemented"):
            await client.send_poll(ALEX.id, "Best dog?", ["Beagle", "Poodle"])


async def test_group_sticker_and_video_messages(fake: FakeTelegram, bot: telegram.Bot) -> None:
    fake.send_text(GROUP, SAM, "/start@WhatBreedBot")
    fake.send_sticker(GROUP, ALEX, image_bytes((512, 512), "WEBP"))
    fake.send_video(GROUP, ALEX, b"\x00\x00\x00\x18ftypmp42")
    command, sticker, video = (u.message for u in await bot.get_updates(timeout=0))
    assert command.chat.type == "group" and command.chat.title == "Adoption event"
    assert command.from_user.first_name == "Sam"
    assert command.entities[0].type == "bot_command" and command.entities[0].length == 19
    assert sticker.sticker is not None and sticker.sticker.width == 512
    assert not sticker.sticker.is_animated and sticker.sticker.type == "regular"
    assert video.video is not None and video.video.mime_type == "video/mp4"
    sent = await bot.send_message(GROUP.id, "Hello, adoption event!")
    assert sent.chat.title == "Adoption event"
    with pytest.raises(ValueError, match="(?i)negative"):
        fake.send_text(ChatSpec(5, "group", "Positive"), ALEX, "hi")


async def test_group_privacy_mode_filters_updates() -> None:
    async with FakeTelegram(group_privacy=True) as private_fake:
        private_fake.send_text(GROUP, ALEX, "just chatting")
        private_fake.send_text(GROUP, ALEX, "/start")
        private_fake.send_text(GROUP, ALEX, "hey @WhatBreedBot look")
        assert [u["message"]["text"] for u in private_fake.state.updates] == [
            "/start",
            "hey @WhatBreedBot look",
        ]
        assert len(private_fake.messages(GROUP.id)) == 3


async def test_wait_for_sees_quick_edits_and_times_out(
    fake: FakeTelegram, bot: telegram.Bot
) -> None:
    fake.send_photo(PRIVATE, ALEX, image_bytes((300, 300)))
    sent = await bot.send_message(ALEX.id, "Looking…")
    await bot.edit_message_text("Poodle", chat_id=ALEX.id, message_id=sent.message_id)
    looking = await fake.wait_for(ALEX.id, lambda m: m["text"] == "Looking…", timeout=1)
    assert looking["message_id"] == sent.message_id
    final = await fake.wait_for(ALEX.id, lambda m: "Poodle" in m["text"], timeout=1)
    assert final["_version"] > looking["_version"]
    fake.send_text(PRIVATE, ALEX, "and now?")
    with pytest.raises(TimeoutError, match="(?i)Poodle"):  # the transcript is in the message
        await fake.wait_for(ALEX.id, lambda m: "Poodle" in m["text"], timeout=0.2)


async def test_real_application_polls_the_fake(fake: FakeTelegram) -> None:
    async def start(update: telegram.Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Woof", callback_data="woof")]])
        await update.effective_message.reply_text(
            f"Hi {update.effective_user.first_name}", reply_markup=keyboard
        )

    async def pressed(update: telegram.Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await update.callback_query.answer("Good dog")
        await update.callback_query.edit_message_text("You pressed Woof")

    app = (
        ApplicationBuilder()
        .token(fake.token)
        .base_url(fake.base_url)
        .base_file_url(fake.base_file_url)
        .build()
    )
    app.add_handler(CommandHandler("start", start))
    app.add_handler(CallbackQueryHandler(pressed))
    async with app:
        await app.start()
        await app.updater.start_polling(timeout=2, poll_interval=0)
        fake.send_text(PRIVATE, ALEX, "/start")
        greeting = await fake.wait_for(ALEX.id, lambda m: m["text"] == "Hi Alex", timeout=5)
        query_id = fake.press_button(PRIVATE, ALEX, greeting["message_id"], "woof")
        await fake.wait_for(ALEX.id, lambda m: m["text"] == "You pressed Woof", timeout=5)
        assert fake.callback_answers[query_id]["text"] == "Good dog"
        started = time.monotonic()
        await app.updater.stop()
        await app.stop()
        assert time.monotonic() - started < 2
    assert fake.state.updates == []  # the Updater's last getUpdates acknowledged everything


# ------------------------------------------------------------------ webhook


@contextlib.asynccontextmanager
async def webhook_receiver(
    answer: Callable[[dict], int],
) -> AsyncIterator[tuple[str, list[tuple[dict, dict]]]]:
    """A server on 127.0.0.1 standing for the bot's webhook: its URL, and every request it got
    as (headers, JSON body); it answers each with the status ``answer(body)`` gives."""
    received: list[tuple[dict, dict]] = []

    async def hook(request: web.Request) -> web.Response:
        body = await request.json()
        received.append((dict(request.headers), body))
        return web.Response(status=answer(body))

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/hook", received
    finally:
        await runner.cleanup()


async def test_set_webhook_takes_what_telegram_takes(fake: FakeTelegram, bot: telegram.Bot) -> None:
    assert await bot.set_webhook("https://localhost:8443/hook", secret_token="a-Z_9")
    assert fake.webhook == Webhook("https://localhost:8443/hook", "a-Z_9", None)
    assert await bot.delete_webhook()
    assert fake.webhook is None
    refusals = [
        ("https://bot.example.org/hook", {}, "delivery to another machine is not implemented"),
        ("http://bot.example.org/hook", {}, "An HTTPS URL must be provided for webhook"),
        ("ftp://127.0.0.1/hook", {}, "An HTTPS URL must be provided for webhook"),
        ("https://bot.example.org:8080/", {}, "only on ports 80, 88, 443 or 8443"),
        ("http://127.0.0.1:99999/hook", {}, "only on ports 80, 88, 443 or 8443"),
        ("http://127.0.0.1:8443/", {"secret_token": "not secret!"}, "unallowed characters"),
        ("http://127.0.0.1:8443/", {"secret_token": "x" * 257}, "unallowed characters"),
    ]
    for url, options, description in refusals:
        with pytest.raises(BadRequest, match=f"(?i){description}"):
            await bot.set_webhook(url, **options)
    assert fake.webhook is None


async def test_webhook_gets_the_updates_and_get_updates_is_a_conflict(
    fake: FakeTelegram, bot: telegram.Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(webhook_delivery, "RETRY_DELAYS", (0.01, 0.01, 0.01))
    attempts: Counter[str] = Counter()

    def answer(update: dict) -> int:  # "lost" always fails; "late" fails once
        text = update["message"]["text"]
        attempts[text] += 1
        return 500 if text == "lost" or (text == "late" and attempts[text] == 1) else 200

    async with webhook_receiver(answer) as (url, received):
        assert await bot.set_webhook(url, secret_token="s3cret", allowed_updates=["message"])
        assert fake.webhook == Webhook(url, "s3cret", ["message"])
        with pytest.raises(Conflict, match="can't use getUpdates method while webhook is active"):
            await bot.get_updates(timeout=0)
        for text in ("lost", "late", "last"):
            fake.send_text(PRIVATE, ALEX, text)
        for _ in range(100):
            if fake.state.updates == [] and len(received) == 6:
                break
            await asyncio.sleep(0.02)
        # In order, one at a time: "lost" 4 times (then dropped), "late" twice, "last" once.
        assert [body["message"]["text"] for _, body in received] == (
            ["lost"] * 4 + ["late"] * 2 + ["last"]
        )
        assert all(h["X-Telegram-Bot-Api-Secret-Token"] == "s3cret" for h, _ in received)
        assert all(h["Content-Type"] == "application/json" for h, _ in received)
        assert fake.state.updates == []

    assert await bot.delete_webhook()
    fake.send_text(PRIVATE, ALEX, "polling again")
    (update,) = await bot.get_updates(timeout=0)
    assert update.message.text == "polling again"


# ------------------------------------------------------------------ control API over HTTP


async def test_api_send_photo_and_files_endpoint(
    fake: FakeTelegram, http: aiohttp.ClientSession
) -> None:
    form = aiohttp.FormData()
    for key, value in {
        "chat_id": "1001",
        "user_id": "1001",
        "first_name": "Alex",
        "text": "who?",
    }.items():
        form.add_field(key, value)
    form.add_field("kind", "photo")
    form.add_field(
        "file", image_bytes((2000, 1000), "PNG"), filename="dog.png", content_type="image/png"
    )
    async with http.post("/api/send", data=form) as response:
        assert response.status == 200
        message = await response.json()
    assert message["caption"] == "who?" and message["chat"]["type"] == "private"
    assert [(p["width"], p["height"]) for p in message["photo"]] == [(90, 45), (1280, 640)]
    async with http.get(message["_file_url"]) as response:
        assert response.content_type == "image/jpeg"
        assert decoded_size(await response.read()) == (1280, 640)
    async with http.post("/api/send", json={"chat_id": 1001, "user_id": 1001}) as response:
        assert response.status == 400 and "nothing to send" in (await response.json())["error"]


async def test_api_send_document_and_group(fake: FakeTelegram, http: aiohttp.ClientSession) -> None:
    form = aiohttp.FormData()
    form.add_field("chat_id", str(GROUP.id))
    form.add_field("chat_type", "group")
    form.add_field("chat_title", "Adoption event")
    form.add_field("user_id", "1002")
    form.add_field("first_name", "Sam")
    form.add_field("file", b"a,b\n1,2\n", filename="list.csv", content_type="text/csv")
    async with http.post("/api/send", data=form) as response:
        message = await response.json()
    assert message["document"]["file_name"] == "list.csv"
    assert message["chat"] == {"id": GROUP.id, "type": "group", "title": "Adoption event"}
    async with http.get(message["_file_url"]) as response:
        assert response.content_type == "text/csv" and await response.read() == b"a,b\n1,2\n"
    async with http.get("/files/nope") as response:
        assert response.status == 404


async def test_api_messages_long_poll_typing_and_press(
    fake: FakeTelegram, bot: telegram.Bot, http: aiohttp.ClientSession
) -> None:
    async with http.post("/api/send", json={"user_id": 1001, "text": "/start"}) as response:
        assert response.status == 200
    async with http.get("/api/messages", params={"chat_id": 1001}) as response:
        first = await response.json()
    assert [m["text"] for m in first["messages"]] == ["/start"] and not first["typing"]

    async def poll(since: int) -> dict:
        params = {"chat_id": 1001, "since": since, "wait": 5}
        async with http.get("/api/messages", params=params) as response:
            return await response.json()

    waiting = asyncio.create_task(poll(first["version"]))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    await bot.send_chat_action(ALEX.id, ChatAction.TYPING)
    typing = await asyncio.wait_for(waiting, 2)
    assert typing["typing"] and typing["action"] == "typing" and typing["messages"] == []

    waiting = asyncio.create_task(poll(typing["version"]))
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Beagle", callback_data="b")]])
    reply = await bot.send_message(ALEX.id, "Pick one", reply_markup=keyboard)
    answer = await asyncio.wait_for(waiting, 2)
    assert [m["message_id"] for m in answer["messages"]] == [reply.message_id]
    assert answer["messages"][0]["reply_markup"]["inline_keyboard"][0][0]["text"] == "Beagle"
    assert not answer["typing"]  # a bot message ends the chat action, as in Telegram clients

    press = {"chat_id": 1001, "user_id": 1001, "message_id": reply.message_id, "data": "b"}
    async with http.post("/api/press", json=press) as response:
        query_id = (await response.json())["id"]
    update = (await bot.get_updates(offset=0, timeout=0))[-1]
    assert update.callback_query.id == query_id and update.callback_query.data == "b"
    await update.callback_query.answer("Noted")
    after_answer = await poll(answer["version"])
    assert after_answer["callback_answers"] == [
        {"id": query_id, "text": "Noted", "show_alert": False}
    ]
    async with http.post("/api/press", json={**press, "data": "zzz"}) as response:
        assert response.status == 400


async def test_api_commands_and_page(
    fake: FakeTelegram, bot: telegram.Bot, http: aiohttp.ClientSession
) -> None:
    await bot.set_my_commands([BotCommand("start", "Say hello")])
    await bot.set_my_commands(
        [BotCommand("event", "Group stats")], scope=telegram.BotCommandScopeAllGroupChats()
    )
    async with http.get("/api/commands") as response:
        assert await response.json() == [{"command": "start", "description": "Say hello"}]
    async with http.get("/api/commands", params={"chat_type": "group", "chat_id": -5}) as response:
        assert [c["command"] for c in await response.json()] == ["event"]
    async with http.get("/") as response:
        assert response.content_type == "text/html"
        page = await response.text()
    for needle in (
        'id="message-input"',
        'id="send-button"',
        'id="photo-input"',
        'id="typing"',
        'type="file"',
        "message ${fromBot",
        '"keyboard"',
        "/api/messages",
        'aria-live="polite"',
    ):
        assert needle in page, needle
