"""Telegram handlers: each one a few lines; storage and inference run off the event loop."""

from __future__ import annotations

import asyncio
import io
import logging
import re
from dataclasses import dataclass
from html import escape
from pathlib import PurePosixPath

import segno
from sqlalchemy.exc import DBAPIError
from telegram import Bot, CallbackQuery, InputFile, Message, Update
from telegram.constants import ChatAction, ParseMode
from telegram.error import TelegramError, TimedOut
from telegram.ext import ContextTypes
from telegram.helpers import create_deep_linked_url

from bot.boxes import boxed_photo
from bot.breeds import BreedIndex
from bot.inference import BatchingClassifier
from bot.ratelimit import RateLimiter
from bot.replies import (
    DNA,
    HELP,
    Press,
    confirm_new_breed_keyboard,
    correction_keyboard,
    dog_mark,
    feedback_keyboard,
    numbered_dogs,
    photo_text,
    promotion_text,
)
from bot.storage import PredictionInfo, Store
from model.answers import Answer, Dog, PhotoAnswer, article
from model.data.dataset import sha256_hex, slug
from model.predictor import Predictor
from model.preprocess import PHOTO_FORMATS, ImageError

log = logging.getLogger(__name__)

MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024  # the Bot API's getFile limit
SORRY = "Sorry, something went wrong on my side. Please try again in a moment."
DATABASE_DOWN = ("Sorry, I couldn't save that: my database isn't answering. Nothing was "
                 "recorded; please try again in a minute.")
TELEGRAM_SLOW = ("Telegram was slow to confirm my answer. If you didn't get one, please send "
                 "that again.")
STALE_BUTTON = "That button doesn't work any more."
ECHOED_CHARACTERS = 64  # of a name or filter said back: a reply holds at most 4096


def quoted(text: str) -> str:
    """What the user typed, escaped and cut short, to say back in quotes."""
    return f"“{escape(_cut(text, ECHOED_CHARACTERS))}”"


def _cut(text: str, characters: int) -> str:
    """``text``'s first ``characters``, with "…" when that cut anything off."""
    return text[:characters] + ("…" if len(text) > characters else "")


@dataclass
class Services:
    """Everything the handlers share; lives in ``application.bot_data["services"]``."""

    store: Store
    classifier: BatchingClassifier
    breeds: BreedIndex
    limiter: RateLimiter

    async def refresh_breeds(self) -> None:
        """Rebuild the breed names after a new breed or a new model."""
        new_breeds = await asyncio.to_thread(self.store.known_new_breeds)
        self.breeds = BreedIndex.build(self.classifier.predictor.breeds, new_breeds)


def services(context: ContextTypes.DEFAULT_TYPE) -> Services:
    return context.application.bot_data["services"]


async def reply(update: Update, text: str, **kwargs) -> Message:
    """Answer as a reply to the message, so it is clear which photo it is about in groups."""
    return await update.effective_message.reply_text(text, parse_mode=ParseMode.HTML,
                                                     do_quote=True, **kwargs)


# Commands


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Greet; with a code from an event's share link, join that event."""
    if context.args:
        event = await asyncio.to_thread(services(context).store.join_event,
                                        update.effective_user.id, context.args[0])
        welcome = ("That event link isn't valid (any more), but I can still help."
                   if event is None else f"Welcome to <b>{escape(event.name)}</b>! 🐾")
        await reply(update, f"{welcome}\n\n{HELP}")  # one update, one reply
        return
    await reply(update, HELP)


async def help_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Explain what the bot does and its commands."""
    await reply(update, HELP)


async def breeds_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """List the known breeds, optionally only those whose name contains a filter."""
    query = " ".join(context.args)
    found = services(context).breeds.search(query)
    if not found:
        await reply(update, f"I don't know a breed matching {quoted(query)}.")
        return
    names = ", ".join(escape(b.name) for b in found)
    text = f"I know {len(found)} breed{'s' * (len(found) != 1)}: {names}"
    await reply(update, _cut(text, 4000))


async def about(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Show the model version, its measured accuracy, and when corrections last improved it."""
    predictor = services(context).classifier.predictor
    await reply(update, f"Model <code>{escape(predictor.version)}</code>\n"
                        f"{escape(predictor.description)}.{_promotion_line(predictor)}\n{DNA}")


def _promotion_line(predictor: Predictor) -> str:
    """The promotion line on a line of its own, or "" when corrections never improved it."""
    text = promotion_text(predictor.promotion)
    return f"\n{text}" if text else ""


async def forget(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Delete the user's stored photos, predictions and corrections."""
    report = await asyncio.to_thread(services(context).store.forget_user,
                                     update.effective_user.id)
    hosted = (f" The {report.events_left} event(s) you host stay, so their guests' photos "
              "still count." if report.events_left else "")
    await reply(update, f"Done: I deleted {report.predictions} photo answers, "
                        f"{report.photos} stored photos and {report.corrections} corrections."
                        + hosted)


# Photos


def _photo_and_suffix(message: Message):
    if message.photo:
        return message.photo[-1], ".jpg"  # the largest size Telegram made
    suffix = "." + (message.document.mime_type or "image/jpeg").split("/")[-1]
    return message.document, suffix.replace("jpeg", "jpg")


async def photo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Answer a photo (or an image sent as a file) with the likeliest breeds."""
    message, user, svc = update.effective_message, update.effective_user, services(context)
    media, suffix = _photo_and_suffix(message)
    if (media.file_size or 0) > MAX_DOWNLOAD_BYTES:
        await reply(update, f"That file is too big ({media.file_size / 2**20:.0f} MB): "
                            "I can read photos up to 20 MB. Could you send a smaller one?")
        return
    if not svc.limiter.allow(user.id):
        if svc.limiter.first_refusal(user.id):
            await reply(update, "That's a lot of dogs at once! 🐕 "
                                "Give me a minute, then send more.")
        return
    typing = asyncio.create_task(_show_typing(context.bot, message.chat_id))
    try:
        photo_bytes = bytes(await (await media.get_file()).download_as_bytearray())
        result, version = await svc.classifier.look(photo_bytes)
    finally:
        typing.cancel()  # not sent yet: the answer makes it moot
    if isinstance(result, ImageError):
        await reply(update, f"Sorry, I couldn't read that: {escape(str(result))}. "
                            "Could you send it again as a photo?")
        return
    dogs = numbered_dogs(result)
    prediction_id = await asyncio.to_thread(_record, svc.store, message, media.file_id,
                                            photo_bytes, suffix, version, result.answer, dogs)
    sent = await _answer(update, photo_bytes, result, dogs, prediction_id)
    await asyncio.to_thread(svc.store.set_reply_message, prediction_id, sent.message_id)


async def _answer(update: Update, photo_bytes: bytes, result: PhotoAnswer, dogs: list[Dog],
                  prediction_id: int) -> Message:
    """The reply: a text, or with several dogs the photo with their numbered boxes and the
    text as its caption; buttons for each dog."""
    keyboard = feedback_keyboard(prediction_id, len(dogs)) if result.answer.is_dog else None
    text = photo_text(result, dogs)
    if not dogs:
        return await reply(update, text, reply_markup=keyboard)
    boxed = await asyncio.to_thread(boxed_photo, photo_bytes, [dog.box for dog in dogs])
    return await update.effective_message.reply_photo(
        boxed, caption=text, parse_mode=ParseMode.HTML, do_quote=True, reply_markup=keyboard)


async def _show_typing(bot: Bot, chat_id: int) -> None:
    """"typing…" while the photo is looked at; best effort, and the answer never waits for it
    (nor for the rate limiter: bot/retry.py lets chat actions through)."""
    try:
        await bot.send_chat_action(chat_id, ChatAction.TYPING)
    except TelegramError as error:  # only a courtesy: the answer follows anyway
        log.info("could not show typing in chat %s: %s", chat_id, error)


def _record(store: Store, message: Message, file_id: str, photo_bytes: bytes, suffix: str,
            version: str, answer: Answer, dogs: list[Dog]) -> int:
    # Only dogs are kept: photos of people or cats stay with Telegram unless a correction
    # says they show a dog (see _keep_photo).
    keep = answer.is_dog
    sha256 = store.save_photo(photo_bytes, suffix) if keep else sha256_hex(photo_bytes)
    event = store.current_event(message.from_user.id)
    return store.record_prediction(
        chat_id=message.chat_id, chat_type=message.chat.type, user_id=message.from_user.id,
        photo_message_id=message.message_id, photo_sha256=sha256, photo_file_id=file_id,
        model_version=version, answer=answer, event_id=event.id if event else None, dogs=dogs)


async def not_a_photo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Kindly refuse files, stickers and videos that aren't photos."""
    message = update.effective_message
    if message.sticker:
        text = "Cute sticker! 🙂 But I need a real photo of a dog."
    elif message.video or message.animation or message.video_note:
        text = "I can only look at photos, not videos. Could you send a still photo of the dog?"
    else:
        text = (f"That file isn't a photo I can read. Please send a photo ({PHOTO_FORMATS}) "
                "of a dog.")
    await reply(update, text)


async def text_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A nudge for plain text in private chats (groups chat among themselves)."""
    await reply(update, "Send me a photo of a dog and I'll guess the breed. /help tells more.")


# Corrections


async def correct(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/correct [dog] <breed>, replying to my answer or to the photo: record the right breed."""
    svc, target = services(context), update.effective_message.reply_to_message
    number, name = _dog_and_breed(context.args)
    if target is None or not name:
        await reply(update, "Reply to my answer (or to the photo) with <code>/correct breed"
                            "</code>, e.g. <code>/correct golden retriever</code>.")
        return
    prediction = await asyncio.to_thread(svc.store.prediction_for_message,
                                         update.effective_chat.id, target.message_id)
    if prediction is None:
        await reply(update, "I can't find my answer to that message. Reply to my answer "
                            "(or to the photo) with /correct.")
        return
    dog, question = _which_dog(prediction, number)
    if question:
        await reply(update, question)
        return
    breed = svc.breeds.match(name)
    if breed is not None:
        await reply(update, await _record_correction(svc, prediction, update, breed.label,
                                                     breed.name, dog=dog))
        return
    close = ", ".join(escape(b.name) for b in svc.breeds.suggestions(name))
    await reply(update, f"I don't know {quoted(name)} yet."
                        + (f" Close matches: {close}." if close else "")
                        + " Add it as a new breed?",
                reply_markup=confirm_new_breed_keyboard(prediction.id))


def _dog_and_breed(args: list[str]) -> tuple[int | None, str]:
    """``/correct 2 beagle`` -> (2, "beagle"); ``/correct beagle`` -> (None, "beagle")."""
    if args and re.fullmatch(r"[0-9]{1,2}", args[0]):  # not str.isdigit: "②" is a digit too
        return int(args[0]), " ".join(args[1:]).strip()
    return None, " ".join(args).strip()


def _which_dog(prediction: PredictionInfo, number: int | None) -> tuple[int | None, str]:
    """The numbered dog a /correct is about (None: the whole photo), or a question to ask
    instead when that is unclear."""
    count = len(prediction.dogs)
    if count == 0:
        if number in (None, 1):
            return None, ""
        return None, ("I answered for the whole photo there: reply with <code>/correct breed"
                      "</code>, without a number.")
    if number is None:
        return None, (f"I see {count} dogs in that photo: which one? Reply with the number "
                      "from the photo, e.g. <code>/correct 2 beagle</code> for dog ②.")
    if not 1 <= number <= count:
        return None, (f"That photo has dogs 1 to {count}: e.g. <code>/correct {count} beagle"
                      "</code>.")
    return number, ""


async def _record_correction(svc: Services, prediction: PredictionInfo, update: Update,
                             label: str, name: str, kind: str | None = None,
                             dog: int | None = None) -> str:
    """Store a correction (of numbered dog ``dog``, or of the photo) and its photo; return
    the acknowledgement."""
    guesses = prediction.guesses_of(dog)
    kind = kind or ("confirmed" if guesses and label == guesses[0].label else "corrected")
    await asyncio.to_thread(svc.store.record_correction, prediction.id,
                            update.effective_user.id, label, name, kind, dog)
    await _keep_photo(svc.store, prediction, update.get_bot())
    subject = "it's" if dog is None else f"{dog_mark(dog)} is"
    if kind == "confirmed":
        return f"✅ Thanks! Noted that {subject} {article(name)} {escape(name)}."
    return f"✏️ Thanks! Noted: {subject} {article(name)} {escape(name)}. That helps me learn."


async def _keep_photo(store: Store, prediction: PredictionInfo, bot: Bot) -> None:
    """A corrected photo is training data: fetch it from Telegram again if it was not kept.

    Best effort, after the correction is stored: a photo Telegram no longer serves costs
    the training photo, never the correction.
    """
    if prediction.photo_file_id is None or await asyncio.to_thread(
            store.photo_path, prediction.photo_sha256):
        return
    try:
        telegram_file = await bot.get_file(prediction.photo_file_id)
        photo_bytes = bytes(await telegram_file.download_as_bytearray())
        suffix = PurePosixPath(telegram_file.file_path or "").suffix or ".jpg"
        kept = await asyncio.to_thread(store.keep_photo, prediction.id, photo_bytes, suffix)
    except (TelegramError, OSError) as error:
        log.warning("prediction %d: photo not fetched again: %s", prediction.id, error)
        return
    if not kept:
        log.warning("prediction %d: photo not kept (other bytes, or forgotten meanwhile)",
                    prediction.id)


async def button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Feedback buttons under an answer (or one dog of it): right, correct it, pick a breed,
    add a new one."""
    query, svc = update.callback_query, services(context)
    press = Press.read(query.data)
    if press is None or update.effective_chat is None:
        await query.answer(STALE_BUTTON)
        return
    prediction = await asyncio.to_thread(svc.store.prediction, press.prediction_id,
                                         update.effective_chat.id)
    if prediction is None or (press.dog is not None
                              and not 1 <= press.dog <= len(prediction.dogs)):
        await query.answer("That answer is gone (maybe deleted with /forget).")
        return
    guesses, dog = prediction.guesses_of(press.dog), press.dog
    if press.action == "fix":
        await query.answer()
        await query.edit_message_reply_markup(
            correction_keyboard(prediction.id, guesses, dog, len(prediction.dogs)))
    elif press.action == "other":
        await query.answer()
        await query.message.reply_text(
            f"Which breed is {'it' if dog is None else dog_mark(dog)}? Reply to my answer with "
            f"/correct {_numbered('breed', dog)}, e.g. /correct {_numbered('jindo', dog)}.")
    elif press.action in ("ok", "set") and (press.choice or 0) < len(guesses):
        guess = guesses[press.choice or 0]
        await _acknowledge(query, await _record_correction(
            svc, prediction, update, guess.label, guess.name, dog=dog), prediction)
    elif press.action == "new":
        await _add_new_breed(update, context, prediction)
    elif press.action == "cancel":
        await _acknowledge(query, "OK, nothing recorded.", prediction)
    else:  # a guess index past the answer's guesses
        await query.answer(STALE_BUTTON)


def _numbered(breed: str, dog: int | None) -> str:
    return breed if dog is None else f"{dog} {breed}"


async def _acknowledge(query: CallbackQuery, text: str, prediction: PredictionInfo) -> None:
    """Answer the button press: under the answer's text, in place of its buttons; for a photo
    of several dogs, in a reply, and the buttons of every dog stay for the others."""
    await query.answer("Thanks!")
    if not query.message.photo:
        await query.edit_message_text(f"{query.message.text_html}\n\n{text}",
                                      parse_mode=ParseMode.HTML)
        return
    await query.message.reply_text(text, parse_mode=ParseMode.HTML, do_quote=True)
    keyboard = feedback_keyboard(prediction.id, len(prediction.dogs))
    if query.message.reply_markup != keyboard:  # a dog's breeds were showing
        await query.edit_message_reply_markup(keyboard)


def _proposed_breed(query: CallbackQuery,
                    prediction: PredictionInfo) -> tuple[int | None, str] | None:
    """The dog and name a "Yes, add it" question proposes: those of the /correct it answers,
    read from that message (not this process's memory: the /correct may have reached another
    bot process, or one since restarted). None unless the one who pressed sent it."""
    asked = query.message.reply_to_message if isinstance(query.message, Message) else None
    if asked is None or asked.from_user is None or asked.from_user.id != query.from_user.id:
        return None
    command, *args = (asked.text or "").split() or [""]
    number, name = _dog_and_breed(args)
    dog, question = _which_dog(prediction, number)
    if not command.startswith("/correct") or not name or question:
        return None
    return dog, name[:64]


async def _add_new_breed(update: Update, context: ContextTypes.DEFAULT_TYPE,
                         prediction: PredictionInfo) -> None:
    query, svc = update.callback_query, services(context)
    if (proposed := _proposed_breed(query, prediction)) is None:
        await query.answer("That question has expired; send /correct again.")
        return
    dog, name = proposed
    text = await _record_correction(svc, prediction, update, slug(name), name, "new_breed", dog)
    await svc.refresh_breeds()
    await _acknowledge(query, f"{text} I've added {quoted(name)} as a new breed.", prediction)


# Events


async def event(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/event <name>: host an adoption event; get a share link and a QR code to print."""
    name = " ".join(context.args).strip()
    if not name:
        await reply(update, "Give the event a name: <code>/event Saturday adoption day</code>")
        return
    info = await asyncio.to_thread(services(context).store.create_event,
                                   update.effective_user.id, name)
    link = create_deep_linked_url(context.bot.username, info.code)
    qr_png = io.BytesIO()
    segno.make(link, error="m").save(qr_png, kind="png", scale=10, border=4)
    await update.effective_message.reply_photo(
        qr_png.getvalue(), do_quote=True, parse_mode=ParseMode.HTML,
        caption=f"🐾 <b>{escape(info.name)}</b>\nShare this link or print the QR code: "
                f"{link}\nPhotos from people who join through it count for your event: "
                "/stats and /export.")


async def _hosted_event(update: Update, context: ContextTypes.DEFAULT_TYPE):
    """The user's latest hosted event, or None after telling them how to start one."""
    info = await asyncio.to_thread(services(context).store.hosted_event,
                                   update.effective_user.id)
    if info is None:
        await reply(update, "You aren't hosting an event. Start one with /event name.")
    return info


async def stats(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Counts, breeds seen and corrections for the host's event; when the model last improved."""
    svc = services(context)
    if (info := await _hosted_event(update, context)) is None:
        return
    s = await asyncio.to_thread(svc.store.event_stats, info.id)
    breeds = "\n".join(f"• {escape(name)}: {count}" for name, count in s.breeds[:15])
    await reply(update, f"📊 <b>{escape(info.name)}</b>\n{s.photos} photos from {s.people} "
                        f"people, {s.dogs} dogs, {s.corrections} corrections.\n{breeds}"
                        f"{_promotion_line(svc.classifier.predictor)}")


async def export(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Send the host a CSV of the event's photos, answers and corrections."""
    if (info := await _hosted_event(update, context)) is None:
        return
    csv_text = await asyncio.to_thread(services(context).store.export_event_csv, info.id)
    await update.effective_message.reply_document(
        InputFile(io.BytesIO(csv_text.encode()), filename=f"event-{info.code}.csv"),
        caption=f"{info.name}: every photo, answer and correction.", do_quote=True)


async def error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log the error with what caused it, and tell the user instead of going silent."""
    # The update's ids, names and text are personal data: log only where it happened.
    where = (f"update {update.update_id} in a {update.effective_chat.type} chat"
             if isinstance(update, Update) and update.effective_chat else repr(type(update)))
    log.error("error while handling %s", where, exc_info=context.error)
    text = apology(context.error)
    if isinstance(update, Update) and update.effective_message:
        await update.effective_message.reply_text(text)
    elif isinstance(update, Update) and update.callback_query:
        await update.callback_query.answer(text)


def apology(error: Exception | None) -> str:
    """What went wrong, as far as the user can act on it."""
    if isinstance(error, DBAPIError):
        return DATABASE_DOWN
    if isinstance(error, TimedOut):  # the answer may have arrived: see bot/retry.py
        return TELEGRAM_SLOW
    return SORRY
