"""Bad input at the bot, through the real Application and the Bot API stand-in: odd names in
commands, forged button data, and random text and button data from hypothesis. Every update
gets at most one reply, never "something went wrong", and no handler raises."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.fake_telegram import ChatSpec, UserSpec
from bot.handlers import SORRY, STALE_BUTTON
from tests.conftest import BotEnv, running_bot
from tests.test_preprocess import MAGICS

pytestmark = pytest.mark.reliability

ALEX = UserSpec(1001, "Alex")
SAM = UserSpec(1002, "Sam")
PRIVATE, SAMS_CHAT = ChatSpec(ALEX.id), ChatSpec(SAM.id)
PUG = "imagenet-dogs-121/n02110958-pug.jpg"
ODD_TEXTS = {
    "unicode": "柴犬 🐕 Ünïcödé ‮reversed‬",
    "4080 characters": "Jindo " * 680,  # with the command, near a message's 4096
    "html": "<b>bold</b> <a href='x'>link</a> &amp; &lt;script&gt;alert(1)&lt;/script&gt;",
    "markdown": "*bold* _it_ `code` [link](http://example.org) ~~x~~ ||spoiler||",
    "sql": "'); DROP TABLE corrections; --",
    "control characters": "a\x00b\x1bc\u200bd",
    "a circled number": "② beagle",  # a digit to str.isdigit, not to int()
}


@pytest.fixture
async def env(tmp_path, classifier) -> AsyncIterator[BotEnv]:
    async with running_bot(tmp_path, classifier, photos_a_minute=100) as bot:
        yield bot


@pytest.fixture
def errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """Errors logged while the test runs: a handler that raised lands here."""
    caplog.set_level(logging.ERROR)
    return caplog.records


def replies_to(env: BotEnv, chat_id: int, message_id: int) -> list[dict]:
    return [m for m in env.fake.messages(chat_id)
            if m["from"]["is_bot"] and m.get("reply_to_message", {}).get("message_id")
            == message_id]


async def one_reply(env: BotEnv, chat: ChatSpec, sent: dict) -> dict:
    """The bot's only reply to ``sent``, once a later /help shows the bot has moved on."""
    await env.answer_to(chat.id, sent)
    await env.answer_to(chat.id, env.fake.send_text(chat, chat_user(chat), "/help"))
    [reply] = replies_to(env, chat.id, sent["message_id"])
    assert reply.get("text", reply.get("caption")) != SORRY
    return reply


def chat_user(chat: ChatSpec) -> UserSpec:
    return ALEX if chat.id == ALEX.id else SAM


@pytest.mark.parametrize("text", ODD_TEXTS.values(), ids=ODD_TEXTS.keys())
async def test_odd_names_in_commands_get_one_plain_reply(env: BotEnv, read_photo, errors,
                                                         text: str) -> None:
    answer = await env.ask(PRIVATE, ALEX, read_photo(PUG))
    sent = env.fake.send_text(PRIVATE, ALEX, f"/correct {text}", reply_to=answer["message_id"])
    said = (await one_reply(env, PRIVATE, sent))["text"]
    assert "yet" in said or "Noted" in said  # a question about a new breed, or a match
    for command in ("/breeds", "/event"):
        reply = await one_reply(env, PRIVATE, env.fake.send_text(PRIVATE, ALEX,
                                                                f"{command} {text}"))
        assert len(reply.get("text") or reply["caption"]) <= 4096
    assert env.rows("select count(*) from predictions") == [(1,)]  # the SQL did nothing
    assert env.rows("select count(*) from events") == [(1,)]
    assert not errors


async def test_a_new_breed_with_an_odd_name_is_stored_as_typed(env: BotEnv, read_photo) -> None:
    answer = await env.ask(PRIVATE, ALEX, read_photo(PUG))
    name = ODD_TEXTS["sql"] + " <b>&amp;"
    env.fake.send_text(PRIVATE, ALEX, f"/correct {name}", reply_to=answer["message_id"])
    question = await env.fake.wait_for(PRIVATE.id, lambda m: "new breed" in m["text"])
    data = question["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    env.fake.press_button(PRIVATE, ALEX, question["message_id"], data)
    added = await env.fake.wait_for(PRIVATE.id, lambda m: "I've added" in m["text"])
    assert name in added["text"]  # sent as escaped HTML, shown as typed
    assert env.rows("select name, kind from corrections") == [(name, "new_breed")]


async def press(env: BotEnv, chat: ChatSpec, message_id: int, data: str) -> dict:
    """Press a button carrying ``data`` (forged: no button need carry it); the bot's answer."""
    query_id = env.fake.press_button(chat, chat_user(chat), message_id, data, strict=False)
    for _ in range(200):
        if query_id in env.fake.callback_answers:
            return env.fake.callback_answers[query_id]
        await asyncio.sleep(0.025)
    raise AssertionError(f"button {data!r} was never answered")


@pytest.mark.parametrize("data", ["", "ok", "ok:", "ok:abc", "ok:-1", "set:{id}:99",
                                  "set:{id}:-1", "ok:{id}:0", "delete:{id}", "ok:99999999999",
                                  "ok:٣", "x" * 64])
async def test_forged_button_data_records_nothing(env: BotEnv, read_photo, errors,
                                                 data: str) -> None:
    answer = await env.ask(PRIVATE, ALEX, read_photo(PUG))
    [(prediction_id,)] = env.rows("select id from predictions")
    said = await press(env, PRIVATE, answer["message_id"], data.format(id=prediction_id))
    assert said["text"] in (STALE_BUTTON, "That answer is gone (maybe deleted with /forget).")
    assert env.rows("select count(*) from corrections") == [(0,)]
    assert not errors


async def test_a_button_naming_another_chats_prediction_is_refused(env: BotEnv, read_photo,
                                                                   errors) -> None:
    await env.ask(PRIVATE, ALEX, read_photo(PUG))
    [(alexs,)] = env.rows("select id from predictions")
    sams_message = await env.answer_to(SAM.id, env.fake.send_text(SAMS_CHAT, SAM, "/help"))
    for data in (f"ok:{alexs}", f"set:{alexs}:1", f"fix:{alexs}"):
        said = await press(env, SAMS_CHAT, sams_message["message_id"], data)
        assert said["text"] == "That answer is gone (maybe deleted with /forget)."
    assert env.rows("select count(*) from corrections") == [(0,)]
    assert not errors


# Random text and button data. Each example is one update to a bot that keeps running, so the
# function-scoped fixture is shared by the examples on purpose.
RANDOM = settings(max_examples=25, deadline=None,
                  suppress_health_check=[HealthCheck.function_scoped_fixture])
COMMANDS = st.sampled_from(["", "/correct ", "/breeds ", "/event ", "/start ", "/about ",
                            "/stats ", "/export ", "/help ", "/nonsense "])
TEXT = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=300)


@RANDOM
@given(text=st.tuples(COMMANDS, TEXT).map("".join).filter(str.strip))
async def test_random_text_gets_at_most_one_reply(env: BotEnv, read_photo, errors,
                                                  text: str) -> None:
    if not env.rows("select count(*) from predictions")[0][0]:
        await env.ask(PRIVATE, ALEX, read_photo(PUG))  # something to reply /correct to
    [(answer_id,)] = env.rows("select reply_message_id from predictions")
    sent = env.fake.send_text(PRIVATE, ALEX, text, reply_to=answer_id)
    await env.answer_to(PRIVATE.id, env.fake.send_text(PRIVATE, ALEX, "/help"))
    await asyncio.sleep(0.05)  # updates run concurrently: give a slower one its moment
    replies = replies_to(env, PRIVATE.id, sent["message_id"])
    assert len(replies) <= 1 and all(r.get("text") != SORRY for r in replies)
    assert not errors


@RANDOM
@given(data=st.one_of(st.text(max_size=64), st.from_regex(
    r"(ok|fix|other|new|cancel|set):-?[0-9]{1,20}(:[0-9]{1,3})?", fullmatch=True)))
async def test_random_button_data_is_answered_once(env: BotEnv, read_photo, errors,
                                                   data: str) -> None:
    if not env.rows("select count(*) from predictions")[0][0]:
        await env.ask(PRIVATE, ALEX, read_photo(PUG))
    [(answer_id,)] = env.rows("select reply_message_id from predictions")
    before = len(env.fake.messages(PRIVATE.id))
    said = await press(env, PRIVATE, answer_id, data)
    assert said["text"] != SORRY
    assert len(env.fake.messages(PRIVATE.id)) <= before + 1  # "other" asks for the breed
    assert not errors


@RANDOM
@given(magic=st.sampled_from(MAGICS), tail=st.binary(max_size=512))
async def test_random_files_get_one_kind_reply(env: BotEnv, errors, magic: bytes,
                                               tail: bytes) -> None:
    sent = env.fake.send_document(PRIVATE, ALEX, magic + tail, "dog.jpg", "image/jpeg")
    reply = await env.answer_to(PRIVATE.id, sent)
    assert "couldn't read that" in reply["text"] or reply["text"][0] in "🐕🤔"  # if it decodes
    await env.answer_to(PRIVATE.id, env.fake.send_text(PRIVATE, ALEX, "/help"))
    assert len(replies_to(env, PRIVATE.id, sent["message_id"])) == 1
    assert not errors
