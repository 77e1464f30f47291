"""What the bot says: answer texts and button layouts, kept apart from the handlers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from model.answers import Answer, BreedGuess, article, headline

BARS = 10
SHOWN_BREEDS = 3
# Shelter staff's breed labels matched a DNA test's main breed for 4 of 16 dogs (Voith et al.
# 2009): a name from looks is a guess, ours too.
DNA = "I go by looks: only a DNA test can tell a mix for sure."

HELP = (
    "🐶 <b>What breed is that dog?</b> Send me a photo and I'll tell you which breeds it "
    "looks most like, honestly: rescued dogs are often mixes. " + DNA + "\n\n"
    "If I'm wrong, tap <b>✏️ Correct it</b>, or reply to my answer with "
    "<code>/correct breed</code> (e.g. <code>/correct jindo</code>). Corrections teach the "
    "next version of me.\n\n"
    "/breeds [filter] – the breeds I know\n"
    "/about – which model answers, and how accurate it is\n"
    "/forget – delete your photos and corrections\n"
    "/event name – host an adoption event: a share link and a QR code\n"
    "/stats, /export – the numbers and a CSV of your event"
)


def _bar(probability: float) -> str:
    filled = round(probability * BARS)
    return "▰" * filled + "▱" * (BARS - filled)


def _line(guess: BreedGuess) -> str:
    return f"{_bar(guess.probability)} {guess.probability:4.0%} {escape(guess.name)}"


def _sentence(text: str) -> str:
    """Escaped, first letter upper-cased (breed names keep their own case), full stop."""
    return escape(text[:1].upper() + text[1:], quote=False) + "."


def answer_text(answer: Answer) -> str:
    """The reply to a photo: a headline, then the likeliest breeds with bars."""
    if not answer.is_dog:
        return f"🤔 {_sentence(headline(answer))}"
    if answer.mixed:
        title = f"🐕 {_sentence(headline(answer))}"
    else:
        name = answer.predictions[0].name
        title = f"🐕 Looks most like {article(name)} <b>{escape(name)}</b>."
    # A row that would read "0%" says nothing; the first breed always shows.
    shown = [g for i, g in enumerate(answer.predictions[:SHOWN_BREEDS])
             if i == 0 or f"{g.probability:.0%}" != "0%"]
    lines = [_line(g) for g in shown]
    return "\n".join([title, "", *lines])


def promotion_text(promotion: dict | None) -> str:
    """When corrections last improved the model, and by how much; "" when they never did."""
    if promotion is None:
        return ""
    at = datetime.fromisoformat(promotion["at"])
    return (f"Last improved {at.day} {at:%b %Y}: right on {promotion['after']:.0%} of "
            f"{promotion['held_out']} held-out photos of the breeds people corrected "
            f"(was {promotion['before']:.0%}).")


def feedback_keyboard(prediction_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[
        InlineKeyboardButton("👍 Right", callback_data=f"ok:{prediction_id}"),
        InlineKeyboardButton("✏️ Correct it", callback_data=f"fix:{prediction_id}"),
    ]])


def correction_keyboard(prediction_id: int,
                        guesses: Sequence[BreedGuess]) -> InlineKeyboardMarkup:
    """The other likely breeds as buttons, plus "something else"."""
    rows = [[InlineKeyboardButton(g.name, callback_data=f"set:{prediction_id}:{index}")]
            for index, g in enumerate(guesses) if index > 0]
    rows.append([InlineKeyboardButton("Something else…", callback_data=f"other:{prediction_id}")])
    return InlineKeyboardMarkup(rows)


def confirm_new_breed_keyboard(prediction_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[
        InlineKeyboardButton("✅ Yes, add it", callback_data=f"new:{prediction_id}"),
        InlineKeyboardButton("Cancel", callback_data=f"cancel:{prediction_id}"),
    ]])
