"""The real bot Application, driven over real HTTP through the fake Bot API on 127.0.0.1.

Each test gets a fresh database and photo folder (the ``bot_env`` fixture in conftest.py);
the predictor (real weights of the default variant) is loaded once for the session.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import numpy as np
import pytest
import skimage.data
from PIL import Image, ImageColor
from telegram.error import BadRequest

from bot.app import ALLOWED_UPDATES, COMMANDS, ModelFile, watch_model_file
from bot.boxes import COLOURS
from bot.config import ModelSource, Webhook
from bot.fake_telegram import ChatSpec, UserSpec
from bot.fake_telegram.bot_api import WEBHOOK_CONFLICT
from bot.fake_telegram.webhook import SECRET_HEADER
from bot.inference import BatchingClassifier
from bot.replies import DNA
from model import DEFAULT_VARIANT
from model.answers import article
from model.artifact import BreedLabel
from model.evaluation.several_dogs import LAYOUTS, composite
from model.head import imagenet_rows
from model.predictor import Predictor
from tests.conftest import (
    DEFAULT_MODEL_VERSION,
    BotEnv,
    eventually,
    free_port,
    running_bot,
    save_model_file,
)

ALEX = UserSpec(1001, "Alex")
SAM = UserSpec(1002, "Sam")
PRIVATE = ChatSpec(ALEX.id)
GROUP = ChatSpec(-100200300, "group", "Adoption event")
CHIHUAHUA = "imagenet-dogs-121/n02085620-Chihuahua.jpg"
PUG = "imagenet-dogs-121/n02110958-pug.jpg"
GOLDEN_RETRIEVER = "dogs-dev/Images/n02099601-golden_retriever/n02099601_10.jpg"
SAMOYED = "dogs-dev/Images/n02111889-Samoyed/n02111889_1.jpg"


def button(message: dict, text: str) -> str:
    """The callback data of the button whose label contains ``text``."""
    rows = message["reply_markup"]["inline_keyboard"]
    return next(b["callback_data"] for row in rows for b in row if text in b["text"])


async def test_photo_gets_breeds_buttons_and_is_stored(bot_env: BotEnv, read_photo) -> None:
    sent = bot_env.fake.send_photo(PRIVATE, ALEX, read_photo(CHIHUAHUA))
    answer = await bot_env.answer_to(PRIVATE.id, sent)

    assert answer["text"].startswith("🐕 Looks most like a Chihuahua.")
    assert "%" in answer["text"]
    assert button(answer, "Right") and button(answer, "Correct it")
    assert (PRIVATE.id, "typing") in bot_env.fake.chat_actions
    # The reply's id is stored just after the reply is sent.
    [(photo_sha, reply_id, version)] = await eventually(lambda: bot_env.rows(
        "select photo_sha256, reply_message_id, model_version from predictions"
        " where reply_message_id is not null"))
    assert reply_id == answer["message_id"] and version == DEFAULT_MODEL_VERSION
    assert (bot_env.photos / f"{photo_sha}.jpg").is_file()
    # One dog: the reply is the text it always was, with no photo sent back or dogs stored.
    assert "photo" not in answer and bot_env.rows("select dogs from predictions") == [(None,)]


async def test_right_button_records_a_confirmation(bot_env: BotEnv, read_photo) -> None:
    answer = await bot_env.ask(PRIVATE, ALEX, read_photo(PUG))
    bot_env.fake.press_button(PRIVATE, ALEX, answer["message_id"], button(answer, "Right"))
    edited = await bot_env.fake.wait_for(PRIVATE.id, lambda m: "Noted" in m["text"])
    assert "reply_markup" not in edited  # buttons gone once answered
    assert bot_env.rows("select label, kind from corrections") == [("n02110958", "confirmed")]


async def test_correct_it_offers_other_breeds(bot_env: BotEnv, read_photo) -> None:
    answer = await bot_env.ask(PRIVATE, ALEX, read_photo(PUG))
    bot_env.fake.press_button(PRIVATE, ALEX, answer["message_id"], button(answer, "Correct it"))
    offered = await bot_env.fake.wait_for(
        PRIVATE.id, lambda m: "Something else" in str(m["reply_markup"]))
    bot_env.fake.press_button(PRIVATE, ALEX, answer["message_id"], button(offered, "Pekinese"))
    await bot_env.fake.wait_for(PRIVATE.id, lambda m: "Noted: it's a Pekinese" in m["text"])
    assert bot_env.rows("select label, name, kind from corrections") == [
        ("n02086079", "Pekinese", "corrected")]


async def test_correct_command_matches_fuzzily_and_confirms_new_breeds(bot_env: BotEnv,
                                                                       read_photo) -> None:
    answer = await bot_env.ask(PRIVATE, ALEX, read_photo(PUG))
    bot_env.fake.send_text(PRIVATE, ALEX, "/correct GOLDEN retriver",
                           reply_to=answer["message_id"])
    await bot_env.fake.wait_for(PRIVATE.id, lambda m: "golden retriever" in m["text"])

    bot_env.fake.send_text(PRIVATE, ALEX, "/correct Jindo", reply_to=answer["message_id"])
    question = await bot_env.fake.wait_for(PRIVATE.id,
                                           lambda m: "Add it as a new breed" in m["text"])
    bot_env.fake.press_button(PRIVATE, ALEX, question["message_id"], button(question, "Yes"))
    await bot_env.fake.wait_for(PRIVATE.id,
                                lambda m: "added “Jindo” as a new breed" in m["text"])
    assert bot_env.rows("select label, name, kind from corrections order by id") == [
        ("n02099601", "golden retriever", "corrected"), ("jindo", "Jindo", "new_breed")]

    bot_env.fake.send_text(PRIVATE, ALEX, "/breeds jin")
    await bot_env.fake.wait_for(PRIVATE.id, lambda m: m["text"] == "I know 1 breed: Jindo")


async def test_correct_needs_a_reply_and_forget_deletes_everything(bot_env: BotEnv,
                                                                   read_photo) -> None:
    answer = await bot_env.ask(PRIVATE, ALEX, read_photo(PUG))
    bot_env.fake.send_text(PRIVATE, ALEX, "/correct beagle")
    await bot_env.fake.wait_for(PRIVATE.id, lambda m: "Reply to my answer" in m["text"])
    bot_env.fake.send_text(PRIVATE, ALEX, "/correct beagle", reply_to=answer["message_id"])
    await bot_env.fake.wait_for(PRIVATE.id, lambda m: "it's a beagle" in m["text"])
    assert len(list(bot_env.photos.iterdir())) == 1

    bot_env.fake.send_text(PRIVATE, ALEX, "/forget")
    await bot_env.fake.wait_for(PRIVATE.id, lambda m: m["text"].startswith("Done: I deleted 1"))
    assert bot_env.rows("select count(*) from predictions") == [(0,)]
    assert bot_env.rows("select count(*) from corrections") == [(0,)]
    assert list(bot_env.photos.iterdir()) == []


async def test_a_new_breed_is_added_only_by_who_proposed_it(bot_env: BotEnv, read_photo) -> None:
    """The question remembers its breed in the chat, not in the bot process (another process,
    or one restarted, may take the answer): only the one who sent the /correct can say yes."""
    answer = await bot_env.ask(GROUP, ALEX, read_photo(PUG))
    bot_env.fake.send_text(GROUP, ALEX, "/correct  Korean   Jindo", reply_to=answer["message_id"])
    question = await bot_env.fake.wait_for(GROUP.id, lambda m: "Add it as a new breed" in m["text"])
    pressed = bot_env.fake.press_button(GROUP, SAM, question["message_id"], button(question, "Yes"))
    assert await eventually(lambda: bot_env.fake.callback_answers.get(pressed)) == {
        "text": "That question has expired; send /correct again.", "show_alert": False}
    bot_env.fake.press_button(GROUP, ALEX, question["message_id"], button(question, "Yes"))
    await bot_env.fake.wait_for(GROUP.id, lambda m: "added “Korean Jindo”" in m["text"])
    assert bot_env.rows("select label, name, kind from corrections") == [
        ("korean-jindo", "Korean Jindo", "new_breed")]


async def test_non_dogs_are_not_kept_unless_a_correction_says_dog(bot_env: BotEnv) -> None:
    cat = io.BytesIO()
    Image.fromarray(skimage.data.chelsea()).save(cat, "JPEG")
    answer = await bot_env.ask(PRIVATE, ALEX, cat.getvalue())
    assert "doesn't look like a dog" in answer["text"]
    [(sha, file_id)] = bot_env.rows("select photo_sha256, photo_file_id from predictions")
    assert file_id and list(bot_env.photos.iterdir()) == []

    # "It is a dog!": the photo becomes training data, fetched from Telegram again.
    bot_env.fake.send_text(PRIVATE, ALEX, "/correct beagle", reply_to=answer["message_id"])
    await bot_env.fake.wait_for(PRIVATE.id, lambda m: "it's a beagle" in m["text"])
    [stored] = bot_env.photos.iterdir()
    assert stored.name == f"{sha}.jpg"
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == sha


async def test_a_photo_telegram_no_longer_serves_costs_the_photo_not_the_correction(
        bot_env: BotEnv) -> None:
    cat = io.BytesIO()
    Image.fromarray(skimage.data.chelsea()).save(cat, "JPEG")
    answer = await bot_env.ask(PRIVATE, ALEX, cat.getvalue())
    [(file_id,)] = bot_env.rows("select photo_file_id from predictions")
    bot_env.fake.expire_file(file_id)
    bot_env.fake.send_text(PRIVATE, ALEX, "/correct beagle", reply_to=answer["message_id"])
    await bot_env.fake.wait_for(PRIVATE.id, lambda m: "it's a beagle" in m["text"])
    assert bot_env.rows("select label from corrections") == [("n02088364",)]
    assert list(bot_env.photos.iterdir()) == []


async def test_group_photos_are_answered_as_replies(bot_env: BotEnv, read_photo) -> None:
    sent = bot_env.fake.send_photo(GROUP, SAM, read_photo(CHIHUAHUA))
    answer = await bot_env.answer_to(GROUP.id, sent)
    assert answer["chat"]["id"] == GROUP.id and "Chihuahua" in answer["text"]
    assert bot_env.rows("select chat_type from predictions") == [("group",)]


async def test_event_link_stats_and_export(bot_env: BotEnv, read_photo) -> None:
    bot_env.fake.send_text(PRIVATE, ALEX, "/event Saturday adoption day")
    invite = await bot_env.fake.wait_for(PRIVATE.id, lambda m: "photo" in m)
    code = invite["caption"].split("?start=")[1].split()[0]
    assert f"https://t.me/{bot_env.fake.state.bot.username}?start={code}" in invite["caption"]
    qr_code = Image.open(io.BytesIO(await bot_env.download(invite)))
    assert qr_code.format == "JPEG" and qr_code.size[0] >= 200  # Telegram re-encodes photos

    sam_chat = ChatSpec(SAM.id)
    bot_env.fake.send_text(sam_chat, SAM, f"/start {code}")
    await bot_env.fake.wait_for(SAM.id, lambda m: "Welcome to Saturday adoption day" in m["text"])
    await bot_env.ask(sam_chat, SAM, read_photo(PUG))
    for host_only in ("/stats", "/export"):  # a guest of the event is not its host
        sent = bot_env.fake.send_text(sam_chat, SAM, host_only)
        refused = await bot_env.answer_to(SAM.id, sent)
        assert refused["text"] == "You aren't hosting an event. Start one with /event name."

    bot_env.fake.send_text(PRIVATE, ALEX, "/stats")
    stats = await bot_env.fake.wait_for(PRIVATE.id, lambda m: "📊" in m["text"])
    assert "1 photos from 1 people, 1 dogs" in stats["text"] and "pug: 1" in stats["text"]

    bot_env.fake.send_text(PRIVATE, ALEX, "/export")
    export = await bot_env.fake.wait_for(PRIVATE.id, lambda m: "document" in m)
    rows = list(csv.DictReader(io.StringIO((await bot_env.download(export)).decode())))
    assert [(r["top1_name"], r["chat_type"]) for r in rows] == [("pug", "private")]

    bot_env.fake.send_text(PRIVATE, ALEX, "/forget")  # the host's event outlives their data
    await bot_env.fake.wait_for(PRIVATE.id, lambda m: "The 1 event(s) you host stay" in m["text"])


@pytest.mark.reliability
@pytest.mark.parametrize("send, expected", [
    (lambda fake: fake.send_document(PRIVATE, ALEX, b"%PDF-1.4 not a photo", "menu.pdf",
                                     "application/pdf"), "isn't a photo I can read"),
    (lambda fake: fake.send_document(PRIVATE, ALEX, b"\xff\xd8\xff\xe0 broken", "dog.jpg",
                                     "image/jpeg"), "couldn't read that"),
    (lambda fake: fake.send_document(PRIVATE, ALEX, b"\0" * (21 * 2**20), "huge.jpg",
                                     "image/jpeg"), "too big (21 MB)"),
    (lambda fake: fake.send_sticker(PRIVATE, ALEX, _webp()), "Cute sticker"),
    (lambda fake: fake.send_video(PRIVATE, ALEX, b"\0\0\0\x18ftypmp42"), "not videos"),
    (lambda fake: fake.send_text(PRIVATE, ALEX, "hello?"), "Send me a photo of a dog"),
])
async def test_bad_input_gets_a_kind_reply(bot_env: BotEnv, send, expected: str) -> None:
    sent = send(bot_env.fake)
    reply = await bot_env.answer_to(PRIVATE.id, sent)
    assert expected in reply["text"]
    assert bot_env.rows("select count(*) from predictions") == [(0,)]


async def test_image_sent_as_a_file_is_classified(bot_env: BotEnv, read_photo) -> None:
    png = io.BytesIO()
    Image.open(io.BytesIO(read_photo(CHIHUAHUA))).save(png, "PNG")
    sent = bot_env.fake.send_document(PRIVATE, ALEX, png.getvalue(), "dog.png", "image/png")
    assert "Chihuahua" in (await bot_env.answer_to(PRIVATE.id, sent))["text"]
    [(sha,)] = bot_env.rows("select photo_sha256 from predictions")
    assert (bot_env.photos / f"{sha}.png").is_file()


async def test_floods_are_refused_politely_once(bot_env: BotEnv, read_photo) -> None:
    photo = read_photo(PUG)
    for _ in range(3):  # the test limiter allows 3 photos a minute
        await bot_env.ask(PRIVATE, ALEX, photo)
    refused = bot_env.fake.send_photo(PRIVATE, ALEX, photo)
    assert "a lot of dogs" in (await bot_env.answer_to(PRIVATE.id, refused))["text"]
    bot_env.fake.send_photo(PRIVATE, ALEX, photo)  # silence now, no second notice
    bot_env.fake.send_text(PRIVATE, ALEX, "/help")
    await bot_env.fake.wait_for(PRIVATE.id, lambda m: "What breed is that dog" in m["text"])
    assert sum("a lot of dogs" in m.get("text", "") for m in bot_env.fake.messages(PRIVATE.id)) == 1
    assert bot_env.rows("select count(*) from predictions") == [(3,)]


async def test_commands_menu_help_and_about(bot_env: BotEnv) -> None:
    assert [c["command"] for c in bot_env.fake.commands] == [c for c, _ in COMMANDS]
    bot_env.fake.send_text(PRIVATE, ALEX, "/start")
    await bot_env.fake.wait_for(PRIVATE.id, lambda m: "/correct" in m["text"])
    bot_env.fake.send_text(PRIVATE, ALEX, "/about")
    about = await bot_env.fake.wait_for(PRIVATE.id, lambda m: "Model" in m["text"])
    assert DEFAULT_MODEL_VERSION in about["text"] and "times in 10" in about["text"]
    assert "it never saw (wiki-dogs-dev, 182 photos)" in about["text"]
    assert about["text"].endswith(f"\n{DNA}")


def _webp() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGBA", (512, 512), (255, 0, 0, 128)).save(buffer, "WEBP")
    return buffer.getvalue()


async def test_album_photos_are_each_answered(bot_env: BotEnv, read_photo) -> None:
    names = {CHIHUAHUA: "Chihuahua", PUG: "pug"}
    sent = {name: bot_env.fake.send_photo(PRIVATE, ALEX, read_photo(path))
            for path, name in names.items()}  # sent at once, like an album
    for name, message in sent.items():
        assert name in (await bot_env.answer_to(PRIVATE.id, message))["text"]



@pytest.fixture
def two_dogs(read_photo) -> bytes:
    """A golden retriever (left) and a Samoyed (right) side by side."""
    return composite(read_photo(GOLDEN_RETRIEVER), read_photo(SAMOYED), LAYOUTS[0])


def stored_dogs(env: BotEnv) -> list[dict]:
    [(dogs,)] = env.rows("select cast(dogs as text) from predictions")  # as stored, both dbs
    return json.loads(dogs)


async def test_two_dogs_get_an_answer_each_on_their_photo_with_numbered_boxes(
        bot_env: BotEnv, two_dogs: bytes) -> None:
    answer = await bot_env.ask(PRIVATE, ALEX, two_dogs)
    lines = answer["caption"].splitlines()
    assert lines[0] == "🐕 I see 2 dogs:"
    assert lines[1].startswith("① (left) looks most like a golden retriever ")
    assert lines[2].startswith("② (right) ") and "Samoyed" in lines[2]
    assert len(lines) == 3  # no advice: two dogs in one photo are no fault of the photo
    assert [b["text"] for row in answer["reply_markup"]["inline_keyboard"] for b in row] == [
        "① 👍 Right", "① ✏️ Correct it", "② 👍 Right", "② ✏️ Correct it"]
    # The photo comes back with each dog's box, its number in a badge at the box's corner.
    sent = np.asarray(Image.open(io.BytesIO(await bot_env.download(answer))).convert("RGB"))
    height, width, _ = sent.shape
    assert width == 2 * height
    for (left, top, _, _), colour in zip((d["box"] for d in stored_dogs(bot_env)), COLOURS,
                                         strict=False):
        x, y = round(left * width), round(top * height)
        badge = sent[y + 2 : y + 6, x + 2 : x + 6].reshape(-1, 3).mean(0)
        assert np.abs(badge - ImageColor.getrgb(colour)).max() < 40
    assert stored_dogs(bot_env)[0]["box"][2] <= 0.55 <= stored_dogs(bot_env)[1]["box"][0] + 0.05


async def test_corrections_of_one_dog_of_several_are_stored_with_its_number(
        bot_env: BotEnv, two_dogs: bytes) -> None:
    answer = await bot_env.ask(PRIVATE, ALEX, two_dogs)
    bot_env.fake.send_text(PRIVATE, ALEX, "/correct beagle", reply_to=answer["message_id"])
    await bot_env.fake.wait_for(PRIVATE.id, lambda m: "I see 2 dogs in that photo: which one"
                                in m.get("text", ""))
    assert bot_env.rows("select count(*) from corrections") == [(0,)]
    bot_env.fake.send_text(PRIVATE, ALEX, "/correct 3 beagle", reply_to=answer["message_id"])
    await bot_env.fake.wait_for(PRIVATE.id, lambda m: "dogs 1 to 2" in m.get("text", ""))

    bot_env.fake.send_text(PRIVATE, ALEX, "/correct 2 beagle", reply_to=answer["message_id"])
    await bot_env.fake.wait_for(PRIVATE.id, lambda m: "Noted: ② is a beagle" in m.get("text", ""))
    # Dog ②'s buttons: its own breeds, ① keeping its own; picking one leaves every dog's
    # buttons for the others.
    bot_env.fake.press_button(PRIVATE, ALEX, answer["message_id"], button(answer, "② ✏️"))
    offered = await bot_env.fake.wait_for(PRIVATE.id, lambda m: "② Something else" in str(
        m.get("reply_markup")))
    first_row, (other,), *_ = offered["reply_markup"]["inline_keyboard"]
    assert [b["text"] for b in first_row] == ["① 👍 Right", "① ✏️ Correct it"]
    bot_env.fake.press_button(PRIVATE, ALEX, answer["message_id"], other["callback_data"])
    name = other["text"][2:]
    await bot_env.fake.wait_for(PRIVATE.id, lambda m: f"Noted: ② is {article(name)} {name}"
                                in m.get("text", ""))
    restored = await bot_env.fake.wait_for(PRIVATE.id, lambda m: "① 👍 Right" in str(
        m.get("reply_markup")) and m["message_id"] == answer["message_id"])
    bot_env.fake.press_button(PRIVATE, ALEX, answer["message_id"], button(restored, "① 👍"))
    await bot_env.fake.wait_for(PRIVATE.id, lambda m: "Noted that ① is a golden retriever"
                                in m.get("text", ""))

    first, second = stored_dogs(bot_env)
    assert bot_env.rows("select dog, label, kind from corrections order by id") == [
        (2, "n02088364", "corrected"), (2, second["predictions"][1]["label"], "corrected"),
        (1, "n02099601", "confirmed")]
    assert second["box"][0] > first["box"][0]  # dog ②, with its box: the one on the right


PROMOTION = {"at": "2026-11-30T10:00:00+00:00", "previous": DEFAULT_MODEL_VERSION,
             "corrected_breeds": ["pug"], "before": 0.62, "after": 0.81, "held_out": 24}
IMPROVED = ("Last improved 30 Nov 2026: right on 81% of 24 held-out photos of the breeds "
            "people corrected (was 62%).")


@pytest.fixture
async def watching_bot(tmp_path: Path) -> AsyncIterator[BotEnv]:
    """The bot as `python -m bot` runs by default: it serves tmp_path/model.whatbreed once that
    exists, else the zero-training model, and looks at the file every 0.05 s."""
    promoted = tmp_path / "model.whatbreed"
    source = ModelSource(str(promoted), DEFAULT_VARIANT)
    model_file = ModelFile(promoted)
    classifier = BatchingClassifier(lambda: Predictor(source.to_load(), warm_up=False))
    try:
        async with running_bot(tmp_path, classifier) as env:
            watcher = asyncio.create_task(watch_model_file(model_file, env.services, 0.05))
            yield env
            watcher.cancel()
    finally:
        classifier.close()


async def about_says(env: BotEnv, version: str) -> str:
    """The text of /about, which must name ``version``."""
    env.fake.send_text(PRIVATE, ALEX, "/about")
    about = await env.fake.wait_for(PRIVATE.id, lambda m: "Model" in m["text"])
    assert version in about["text"]
    return about["text"]


async def test_a_promoted_model_is_served_without_a_restart(
        watching_bot: BotEnv, tmp_path: Path, read_photo, caplog: pytest.LogCaptureFixture) -> None:
    env, classifier = watching_bot, watching_bot.services.classifier
    caplog.set_level(logging.INFO, logger="bot.app")
    await env.ask(PRIVATE, ALEX, read_photo(PUG))
    await about_says(env, DEFAULT_MODEL_VERSION)

    # It appears: the next answer comes from it, and hosts and guests see how it improved.
    labels = [BreedLabel("n02110958", "pug"), BreedLabel("n02085620", "Chihuahua"),
              BreedLabel("n02099601", "golden retriever")]
    rows = imagenet_rows([b.label for b in labels], classifier.predictor._params["backbone"],
                         classifier.predictor.pooling)
    promoted = tmp_path / "model.whatbreed"
    version = save_model_file(promoted, labels, rows, {"promotion": PROMOTION})
    assert await eventually(lambda: classifier.version == version, timeout=60)
    answer = await env.ask(PRIVATE, ALEX, read_photo(PUG))
    assert answer["text"].startswith("🐕 Looks most like a pug.")
    assert env.rows("select model_version from predictions order by id") == [
        (DEFAULT_MODEL_VERSION,), (version,)]
    assert (await about_says(env, version)).endswith(f"\n{IMPROVED}\n{DNA}")
    env.fake.send_text(PRIVATE, ALEX, "/event Saturday adoption day")
    await env.fake.wait_for(PRIVATE.id, lambda m: "photo" in m)
    env.fake.send_text(PRIVATE, ALEX, "/stats")
    stats = await env.fake.wait_for(PRIVATE.id, lambda m: "📊" in m["text"])
    assert stats["text"].endswith(f"\n{IMPROVED}")

    # It is replaced (save_artifact writes aside, then renames): the new one serves.
    replaced = save_model_file(promoted, labels, rows, created_at="2026-12-01T10:00:00")
    assert await eventually(lambda: classifier.version == replaced, timeout=60)
    assert "Last improved" not in await about_says(env, replaced)
    assert [r.getMessage() for r in caplog.records if "reloading" in r.getMessage()] == [
        f"{promoted} is new: reloading the model"] * 2

    # It is removed (a rollback of the first promotion): the zero-training model serves again.
    caplog.clear()
    promoted.unlink()
    assert await eventually(lambda: classifier.version == DEFAULT_MODEL_VERSION, timeout=60)
    assert [r.getMessage() for r in caplog.records if "reloading" in r.getMessage()] == [
        f"{promoted} is gone: reloading the model"]


@pytest.fixture
async def webhook_env(tmp_path: Path, classifier: BatchingClassifier) -> AsyncIterator[BotEnv]:
    """The bot in webhook mode: PTB's webhook server on 127.0.0.1, which the stand-in POSTs
    the updates to."""
    port = free_port()
    webhook = Webhook(f"http://127.0.0.1:{port}/telegram/what-breed", "127.0.0.1", port,
                      "test-secret_1")
    async with running_bot(tmp_path, classifier, webhook=webhook) as env:
        yield env


async def test_webhook_mode_answers_photos_buttons_and_commands(webhook_env: BotEnv,
                                                                read_photo) -> None:
    env, webhook = webhook_env, webhook_env.webhook
    registered = env.fake.webhook
    assert (registered.url, registered.secret_token, registered.allowed_updates) == (
        webhook.url, webhook.secret, ALLOWED_UPDATES)
    assert [c["command"] for c in env.fake.commands] == [c for c, _ in COMMANDS]

    answer = await env.ask(PRIVATE, ALEX, read_photo(CHIHUAHUA))
    assert answer["text"].startswith("🐕 Looks most like a Chihuahua.")
    env.fake.press_button(PRIVATE, ALEX, answer["message_id"], button(answer, "Right"))
    await env.fake.wait_for(PRIVATE.id, lambda m: "Noted" in m["text"])
    assert env.rows("select label, kind from corrections") == [("n02085620", "confirmed")]
    env.fake.send_text(PRIVATE, ALEX, "/help")
    await env.fake.wait_for(PRIVATE.id, lambda m: "What breed is that dog" in m["text"])
    assert env.fake.state.updates == []  # each one delivered, none left for getUpdates

    # As in Telegram, getUpdates is refused while a webhook is set.
    async with aiohttp.ClientSession() as http, \
            http.get(f"{env.fake.base_url}{env.fake.token}/getUpdates") as response:
        assert response.status == 409
        assert (await response.json())["description"] == WEBHOOK_CONFLICT


@pytest.mark.parametrize("secret", [None, "guessed-secret"], ids=["no secret", "wrong secret"])
async def test_a_forged_webhook_post_is_refused(webhook_env: BotEnv, read_photo,
                                                secret: str | None) -> None:
    env = webhook_env
    answer = await env.ask(PRIVATE, ALEX, read_photo(PUG))
    replayed = {"update_id": 10_000, "message": answer["reply_to_message"]}  # Alex's photo

    async def post(secret: str | None) -> int:
        headers = {SECRET_HEADER: secret} if secret else {}
        async with aiohttp.ClientSession() as http, \
                http.post(env.webhook.url, json=replayed, headers=headers) as response:
            return response.status

    assert await post(secret) == 403  # PTB refuses it before it becomes an update
    # The same POST with the secret is taken and answered: only the header was wrong.
    assert await post(env.webhook.secret) == 200
    again = await env.fake.wait_for(PRIVATE.id, lambda m: m["reply_to_message"]["message_id"]
                                    == replayed["message"]["message_id"],
                                    since=answer["_version"])
    assert again["text"].startswith("🐕 Looks most like a pug.")
    assert await eventually(lambda: env.rows(
        "select count(*) from predictions where reply_message_id is not null") == [(2,)])
    bot_messages = [m for m in env.fake.messages(PRIVATE.id) if m["from"]["is_bot"]]
    assert [m["message_id"] for m in bot_messages] == [answer["message_id"], again["message_id"]]
    assert env.rows("select count(*) from predictions") == [(2,)]


async def test_a_webhook_telegram_refuses_stops_the_bot_cleanly(tmp_path: Path,
                                                                classifier: BatchingClassifier
                                                                ) -> None:
    port = free_port()
    refused = Webhook("http://bot.example.org/hook", "127.0.0.1", port, "test-secret")
    with pytest.raises(BadRequest, match="(?i)an https url must be provided for webhook"):
        async with running_bot(tmp_path, classifier, webhook=refused):
            pass  # pragma: no cover
