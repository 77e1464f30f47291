"""Faults from outside, through the Bot API stand-in's fault injection (bot/fake_telegram/faults.py)
and a real SQLite database: Telegram's 429, 5xx, dropped connections and late answers are
retried (bot/retry.py) with nothing lost and nothing answered twice; a locked database only
delays a correction, and one that fails says so and loses nothing once it is back."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator

import pytest

from bot.fake_telegram import ChatSpec, UserSpec
from bot.handlers import DATABASE_DOWN, TELEGRAM_SLOW
from tests.conftest import BotEnv, running_bot

pytestmark = pytest.mark.reliability

ALEX = UserSpec(1001, "Alex")
PRIVATE = ChatSpec(ALEX.id)
PUG = "imagenet-dogs-121/n02110958-pug.jpg"
HELP_SAYS = "What breed is that dog?"


@pytest.fixture
async def env(tmp_path, classifier) -> AsyncIterator[BotEnv]:
    async with running_bot(tmp_path, classifier, photos_a_minute=100) as bot:
        yield bot


def bot_texts(env: BotEnv) -> list[str]:
    return [m.get("text", "") for m in env.fake.messages(PRIVATE.id) if m["from"]["is_bot"]]


@pytest.mark.parametrize("kind, times", [("429", 1), ("500", 2), ("502", 3), ("drop", 2)])
async def test_a_reply_telegram_fails_in_passing_is_sent_once(env: BotEnv, kind: str,
                                                              times: int) -> None:
    env.fake.fail_next("sendMessage", kind, times)
    env.fake.send_text(PRIVATE, ALEX, "/help")
    await env.fake.wait_for(PRIVATE.id, lambda m: HELP_SAYS in m["text"])
    assert env.fake.state.faults.applied == {f"sendMessage {kind}": times}
    await asyncio.sleep(0.5)
    assert len(bot_texts(env)) == 1  # the help, once, and no apology


async def test_photos_and_corrections_survive_failing_calls(env: BotEnv, read_photo) -> None:
    for method, kind in [("sendChatAction", "502"), ("getFile", "drop"), ("getFile", "late"),
                         ("sendMessage", "429")]:
        env.fake.fail_next(method, kind)
    answer = await env.ask(PRIVATE, ALEX, read_photo(PUG))
    assert answer["text"].startswith("🐕 Looks like a pug.")
    env.fake.fail_next("editMessageText", "500")
    env.fake.fail_next("answerCallbackQuery", "drop")
    right = answer["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    env.fake.press_button(PRIVATE, ALEX, answer["message_id"], right)
    await env.fake.wait_for(PRIVATE.id, lambda m: "Noted" in m["text"])
    assert len(env.fake.state.faults.applied) == 6
    assert env.rows("select count(*) from corrections") == [(1,)]
    assert len(bot_texts(env)) == 1  # the answer, edited with the acknowledgement


async def test_getupdates_failing_loses_no_update(env: BotEnv) -> None:
    env.fake.fail_next("getUpdates", "502", 2)
    env.fake.fail_next("getUpdates", "drop")
    env.fake.send_text(PRIVATE, ALEX, "/help")
    await env.fake.wait_for(PRIVATE.id, lambda m: HELP_SAYS in m["text"], timeout=60)
    assert env.fake.state.faults.applied["getUpdates drop"] == 1
    assert len(bot_texts(env)) == 1


async def test_a_reply_delivered_but_confirmed_too_late_is_not_sent_twice(env: BotEnv) -> None:
    # Telegram delivered the message but its answer came after the bot's 5 s read timeout:
    # the bot cannot tell it from a lost message. It does not send it again (that would be
    # the duplicate) and says, once, that the answer may be missing.
    env.fake.fail_next("sendMessage", "late")
    env.fake.send_text(PRIVATE, ALEX, "/help")
    await env.fake.wait_for(PRIVATE.id, lambda m: m["text"] == TELEGRAM_SLOW, timeout=30)
    texts = bot_texts(env)
    assert len(texts) == 2 and HELP_SAYS in texts[0] and texts[1] == TELEGRAM_SLOW


async def test_a_locked_database_only_delays_a_correction(env: BotEnv, read_photo) -> None:
    answer = await env.ask(PRIVATE, ALEX, read_photo(PUG))
    locked, release = threading.Event(), threading.Event()

    def hold_the_write_lock() -> None:  # another process writing for a second, say
        with sqlite3.connect(env.db, isolation_level=None) as other:
            other.execute("BEGIN EXCLUSIVE")
            locked.set()
            release.wait(10)
            other.execute("COMMIT")

    holder = threading.Thread(target=hold_the_write_lock)
    holder.start()
    locked.wait(10)
    right = answer["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    env.fake.press_button(PRIVATE, ALEX, answer["message_id"], right)
    await asyncio.sleep(1.0)
    assert "Noted" not in bot_texts(env)[-1]  # waiting for the lock, not failing
    release.set()
    holder.join()
    await env.fake.wait_for(PRIVATE.id, lambda m: "Noted" in m["text"])
    assert env.rows("select count(*) from corrections") == [(1,)]


async def test_a_failing_database_says_so_and_the_correction_is_kept_once_back(
        env: BotEnv, read_photo) -> None:
    answer = await env.ask(PRIVATE, ALEX, read_photo(PUG))
    env.rows("alter table corrections rename to corrections_away")  # the writes fail now
    env.fake.send_text(PRIVATE, ALEX, "/correct beagle", reply_to=answer["message_id"])
    await env.fake.wait_for(PRIVATE.id, lambda m: m["text"] == DATABASE_DOWN)
    env.rows("alter table corrections_away rename to corrections")  # back
    env.fake.send_text(PRIVATE, ALEX, "/correct beagle", reply_to=answer["message_id"])
    await env.fake.wait_for(PRIVATE.id, lambda m: "it's a beagle" in m["text"])
    assert env.rows("select label from corrections") == [("n02088364",)]
    assert not any("Noted" in t or "Thanks" in t for t in bot_texts(env)[:-1])
