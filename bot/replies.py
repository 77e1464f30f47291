"""What the bot says: answer texts and button layouts, kept apart from the handlers."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape, unescape

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from model.answers import Answer, Box, BreedGuess, Dog, PhotoAnswer, article, headline

BARS = 10
SHOWN_BREEDS = 3
# A reply names at most this many dogs (the most evident on the dog map): a number each,
# ① to ⑨, in the text, on the photo and on the buttons.
MAX_DOGS = 9
# Telegram cuts a photo's caption at 1,024 characters (after its HTML is parsed): nine dogs
# whose answers are mixes of long names would pass it.
CAPTION_LIMIT = 1024
SHORT_NAME = 40
# Shelter staff's breed labels matched a DNA test's main breed for 4 of 16 dogs (Voith et al.
# 2009): a name from looks is a guess, ours too.
DNA = "I go by looks: only a DNA test can tell a mix for sure."

HELP = (
    "🐶 <b>What breed is that dog?</b> Send me a photo and I'll tell you which breeds it "
    "looks most like, honestly: rescued dogs are often mixes. " + DNA + "\n\n"
    "If I'm wrong, tap <b>✏️ Correct it</b>, or reply to my answer with "
    "<code>/correct breed</code> (e.g. <code>/correct jindo</code>; for one dog of several, "
    "its number first: <code>/correct 2 jindo</code>). Corrections teach the "
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


def photo_text(photo: PhotoAnswer, dogs: Sequence[Dog]) -> str:
    """The reply to a photo: its answer, or with several ``dogs`` (``numbered_dogs``) one
    line each; then the advice on retaking it, if any (a caption keeps room for it)."""
    advice = "" if photo.advice is None else f"\n\n💡 {escape(photo.advice)}"
    if len(dogs) > 1:
        return several_dogs_text(dogs, CAPTION_LIMIT - caption_length(advice)) + advice
    return answer_text(photo.answer) + advice


def numbered_dogs(photo: PhotoAnswer) -> list[Dog]:
    """The dogs a reply numbers: none unless there are several; else the MAX_DOGS most
    evident, in reading order along the way they are spread out (left to right, or top to
    bottom), so that ① is the leftmost (topmost)."""
    if len(photo.dogs) < 2:
        return []
    dogs = list(photo.dogs[:MAX_DOGS])
    axis = _main_axis([dog.box for dog in dogs])
    return sorted(dogs, key=lambda dog: _centre(dog.box)[axis])


def several_dogs_text(dogs: Sequence[Dog], limit: int) -> str:
    """"I see 2 dogs:", then a line per dog: its number, where it is, and its answer; each
    answer cut to its likeliest breed where the whole would not fit in ``limit`` characters
    (a photo's caption, less what follows the dogs)."""
    places = positions([dog.box for dog in dogs])
    for headline_of in (_dog_headline, _short_dog_headline):
        lines = [f"{dog_mark(number)} ({place}) {headline_of(dog.answer)}"
                 for number, (dog, place) in enumerate(zip(dogs, places, strict=True), 1)]
        text = "\n".join([f"🐕 I see {len(dogs)} dogs:", *lines])
        if caption_length(text) <= limit:
            break
    return text


def _dog_headline(answer: Answer) -> str:
    if answer.mixed:
        return escape(headline(answer))
    best = answer.predictions[0]
    return f"looks most like {article(best.name)} <b>{escape(best.name)}</b> {best.probability:.0%}"


def _short_dog_headline(answer: Answer) -> str:
    """The likeliest breed alone, its name cut to ``SHORT_NAME`` characters: nine of these
    fit a caption whatever the names."""
    best = answer.predictions[0]
    name = best.name if len(best.name) <= SHORT_NAME else best.name[:SHORT_NAME - 1] + "…"
    return f"{'maybe' if answer.mixed else 'like'} <b>{escape(name)}</b> {best.probability:.0%}"


def caption_length(html_text: str) -> int:
    """How long Telegram counts ``html_text`` once its tags are parsed: UTF-16 code units of
    the text shown."""
    shown = unescape(re.sub(r"<[^>]+>", "", html_text))
    return len(shown.encode("utf-16-le")) // 2


def dog_mark(number: int) -> str:
    """①, ②, … ⑨: the dog's number as the photo's boxes show it."""
    return chr(0x2460 + number - 1)


def positions(boxes: Sequence[Box]) -> list[str]:
    """Where each box is among the others, in words: along the way they are spread out, the
    first is "left" ("top"), the last "right" ("bottom"), any between "middle"."""
    axis = _main_axis(boxes)
    words = ("left", "right") if axis == 0 else ("top", "bottom")
    order = sorted(range(len(boxes)), key=lambda i: _centre(boxes[i])[axis])
    place = {index: "middle" for index in order}
    place[order[0]], place[order[-1]] = words
    return [place[i] for i in range(len(boxes))]


def _centre(box: Box) -> tuple[float, float]:
    return (box.left + box.right) / 2, (box.top + box.bottom) / 2


def _main_axis(boxes: Sequence[Box]) -> int:
    """0 when the boxes' centres spread more from left to right than from top to bottom,
    else 1."""
    xs, ys = zip(*(_centre(box) for box in boxes), strict=True)
    return 0 if max(xs) - min(xs) >= max(ys) - min(ys) else 1


def promotion_text(promotion: dict | None) -> str:
    """When corrections last improved the model, and by how much; "" when they never did."""
    if promotion is None:
        return ""
    at = datetime.fromisoformat(promotion["at"])
    return (f"Last improved {at.day} {at:%b %Y}: right on {promotion['after']:.0%} of "
            f"{promotion['held_out']} held-out photos of the breeds people corrected "
            f"(was {promotion['before']:.0%}).")


@dataclass(frozen=True)
class Press:
    """What a button under an answer says: ``action:prediction[:choice[:dog]]``."""

    action: str
    prediction_id: int
    choice: int | None = None  # which of the answer's breeds
    dog: int | None = None  # which dog of several (1, 2, …); None: the whole photo

    @property
    def data(self) -> str:
        """The button's callback data (at most 64 bytes)."""
        parts = [self.action, str(self.prediction_id),
                 *("" if v is None else str(v) for v in (self.choice, self.dog))]
        return ":".join(parts).rstrip(":")

    @classmethod
    def read(cls, data: str | None) -> Press | None:
        """The press a button's data says; None for data that our keyboards never make:
        clients can send any data, so it is not trusted."""
        match = PRESS_DATA.fullmatch(data or "")
        if match is None or (match["action"] == "set") != (match["choice"] is not None):
            return None
        choice, dog = (None if v is None else int(v) for v in match.group("choice", "dog"))
        return cls(match["action"], int(match["prediction"]), choice, dog)


PRESS_DATA = re.compile(r"(?P<action>ok|fix|other|new|cancel|set):(?P<prediction>[0-9]{1,18})"
                        r"(?::(?P<choice>[0-9]{1,2})?(?::(?P<dog>[0-9]{1,2}))?)?")


def _button(text: str, action: str, prediction_id: int, choice: int | None = None,
            dog: int | None = None) -> InlineKeyboardButton:
    return InlineKeyboardButton(text, callback_data=Press(action, prediction_id, choice, dog).data)


def feedback_keyboard(prediction_id: int, dogs: int = 0) -> InlineKeyboardMarkup:
    """👍 and ✏️ for the answer, or with several ``dogs`` a row of them for each dog."""
    if dogs < 2:
        return InlineKeyboardMarkup([[_button("👍 Right", "ok", prediction_id),
                                      _button("✏️ Correct it", "fix", prediction_id)]])
    return InlineKeyboardMarkup([
        [_button(f"{dog_mark(dog)} 👍 Right", "ok", prediction_id, dog=dog),
         _button(f"{dog_mark(dog)} ✏️ Correct it", "fix", prediction_id, dog=dog)]
        for dog in range(1, dogs + 1)])


def correction_keyboard(prediction_id: int, guesses: Sequence[BreedGuess],
                        dog: int | None = None, dogs: int = 0) -> InlineKeyboardMarkup:
    """The other likely breeds (of one dog of several) as buttons, plus "something else"; of
    several ``dogs``, in place of that dog's row, the other dogs keeping theirs."""
    mark = f"{dog_mark(dog)} " if dog else ""
    rows = [[_button(f"{mark}{g.name}", "set", prediction_id, index, dog)]
            for index, g in enumerate(guesses) if index > 0]
    rows.append([_button(f"{mark}Something else…", "other", prediction_id, dog=dog)])
    if not dog or dogs < 2:
        return InlineKeyboardMarkup(rows)
    others = feedback_keyboard(prediction_id, dogs).inline_keyboard
    return InlineKeyboardMarkup([*others[:dog - 1], *rows, *others[dog:]])


def confirm_new_breed_keyboard(prediction_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[_button("✅ Yes, add it", "new", prediction_id),
                                  _button("Cancel", "cancel", prediction_id)]])
