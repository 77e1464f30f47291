"""What the bot says: the answer texts (HTML) and the buttons' callback data."""

from __future__ import annotations

import pytest

from bot.replies import (
    CAPTION_LIMIT,
    MAX_DOGS,
    Press,
    answer_text,
    caption_length,
    confirm_new_breed_keyboard,
    correction_keyboard,
    feedback_keyboard,
    numbered_dogs,
    photo_text,
    positions,
    promotion_text,
)
from model.advice import ADVICE
from model.answers import Answer, Box, BreedGuess, Dog, PhotoAnswer

SHIH_TZU = BreedGuess("n02086240", "Shih-Tzu", 0.91)
LHASA = BreedGuess("n02098413", "Lhasa", 0.06)
TOY_TERRIER = BreedGuess("n02087046", "toy terrier", 0.004)


def test_a_sure_answer_names_the_breed_with_bars() -> None:
    text = answer_text(Answer(True, 0.98, False, (SHIH_TZU, LHASA, TOY_TERRIER)))
    assert text.splitlines() == ["🐕 Looks most like a <b>Shih-Tzu</b>.", "",
                                 "▰▰▰▰▰▰▰▰▰▱  91% Shih-Tzu", "▰▱▱▱▱▱▱▱▱▱   6% Lhasa"]
    # The toy terrier (0.4%) would read "0%": it is left out.


def test_a_mix_and_a_non_dog() -> None:
    mix = (BreedGuess("n02088364", "beagle", 0.41), BreedGuess("n02089973", "English foxhound",
                                                                  0.33), LHASA)
    assert answer_text(Answer(True, 0.9, True, mix)).startswith(
        "🐕 Probably a mix of beagle, English foxhound and Lhasa.\n\n▰▰▰▰▱▱▱▱▱▱  41% beagle")
    assert answer_text(Answer(False, 0.02, False, mix, "tabby cat")) == (
        "🤔 That doesn't look like a dog (looks like: tabby cat).")


def test_names_are_escaped_for_html() -> None:
    odd = BreedGuess("x", "<b>chien</b> & co", 0.9)
    assert "&lt;b&gt;chien&lt;/b&gt; &amp; co" in answer_text(Answer(True, 0.9, False, (odd,)))


def test_correction_buttons_offer_the_other_guesses() -> None:
    keyboard = correction_keyboard(7, [SHIH_TZU, LHASA])
    buttons = [(b.text, b.callback_data) for row in keyboard.inline_keyboard for b in row]
    assert buttons == [("Lhasa", "set:7:1"), ("Something else…", "other:7")]
    confirm = confirm_new_breed_keyboard(7).inline_keyboard[0]
    assert [b.callback_data for b in confirm] == ["new:7", "cancel:7"]


def test_when_corrections_last_improved_the_model() -> None:
    promotion = {"at": "2026-11-30T10:00:00+00:00", "previous": "efficientnet-lite2-imagenet",
                 "corrected_breeds": ["English foxhound"], "before": 0.6249, "after": 0.8125,
                 "held_out": 24}
    assert promotion_text(promotion) == (
        "Last improved 30 Nov 2026: right on 81% of 24 held-out photos of the breeds people "
        "corrected (was 62%).")
    assert promotion_text(promotion | {"at": "2027-01-05T23:59:59+00:00"}).startswith(
        "Last improved 5 Jan 2027: ")
    assert promotion_text(None) == ""


BEAGLE = BreedGuess("n02088364", "beagle", 0.83)
MIX = (BreedGuess("n02108915", "French bulldog", 0.38), BreedGuess("n02110958", "pug", 0.31))


def dog(left: float, top: float, guesses: tuple[BreedGuess, ...]) -> Dog:
    answer = Answer(True, 0.9, guesses[0].probability < 0.5, guesses)
    return Dog(Box(left, top, left + 0.3, top + 0.3), answer)


def test_several_dogs_are_numbered_in_reading_order_with_where_they_are() -> None:
    photo = PhotoAnswer(Answer(True, 0.9, True, MIX), (dog(0.6, 0.1, MIX), dog(0.05, 0.3,
                                                                             (BEAGLE,))), False)
    dogs = numbered_dogs(photo)
    assert dogs == [photo.dogs[1], photo.dogs[0]]  # the left one first
    assert photo_text(photo, dogs).splitlines() == [
        "🐕 I see 2 dogs:", "① (left) looks most like a <b>beagle</b> 83%",
        "② (right) probably a mix of French bulldog and pug"]


def test_one_dog_or_none_is_answered_as_the_whole_photo_and_advice_is_a_line_under_it() -> None:
    answer = Answer(True, 0.98, False, (SHIH_TZU, LHASA))
    one = PhotoAnswer(answer, (dog(0.2, 0.2, (SHIH_TZU, LHASA)),), False)
    assert numbered_dogs(one) == [] and photo_text(one, []) == answer_text(answer)
    advised = PhotoAnswer(answer, (), False, advice="The dog is small: come closer & retake.")
    assert photo_text(advised, []) == (
        f"{answer_text(answer)}\n\n💡 The dog is small: come closer &amp; retake.")


@pytest.mark.parametrize(("corners", "words"), [
    ([(0.0, 0.0), (0.5, 0.1)], ["left", "right"]),
    ([(0.1, 0.6), (0.0, 0.0)], ["bottom", "top"]),
    ([(0.7, 0.0), (0.0, 0.1), (0.35, 0.5)], ["right", "left", "middle"]),
])
def test_positions_say_where_each_dog_is_among_the_others(corners, words) -> None:
    assert positions([Box(x, y, x + 0.3, y + 0.3) for x, y in corners]) == words


def test_at_most_nine_dogs_are_numbered_the_most_evident() -> None:
    many = tuple(dog(i / 20, 0.0, (BEAGLE,)) for i in reversed(range(12)))
    dogs = numbered_dogs(PhotoAnswer(many[0].answer, many, False))
    assert len(dogs) == MAX_DOGS and dogs[0] is many[MAX_DOGS - 1]


LONG = (BreedGuess("n02093428", "American Staffordshire terrier", 0.3),
        BreedGuess("n02098105", "soft-coated wheaten terrier", 0.2),
        BreedGuess("n02098286", "West Highland white terrier", 0.1))


def test_nine_mixes_of_long_names_still_fit_a_caption() -> None:
    dogs = [dog(i / 10, 0.0, LONG) for i in range(MAX_DOGS - 1)]
    full = photo_text(PhotoAnswer(dogs[0].answer, tuple(dogs), False), dogs)
    assert full.splitlines()[1] == ("① (left) probably a mix of American Staffordshire terrier, "
                                    "soft-coated wheaten terrier and West Highland white terrier")
    dogs.append(dog(0.9, 0.0, (BreedGuess("x", "x" * 300, 0.3), *LONG[1:])))  # a ninth
    text = photo_text(PhotoAnswer(dogs[0].answer, tuple(dogs), False), dogs)
    assert caption_length(text) <= CAPTION_LIMIT
    assert text.splitlines()[1] == "① (left) maybe <b>American Staffordshire terrier</b> 30%"
    assert text.splitlines()[-1] == f"⑨ (right) maybe <b>{'x' * 39}…</b> 30%"
    assert caption_length("<b>a &amp; b</b> 🐕") == 8  # tags parsed, entities one, emoji two


def test_a_caption_of_several_dogs_keeps_room_for_the_advice() -> None:
    """Eight mixes of long names fill 981 of the 1,024 characters; a blurred photo's advice
    under them would pass the limit, so the dogs' lines are cut to their likeliest breed."""
    dogs = [dog(i / 10, 0.0, LONG) for i in range(MAX_DOGS - 1)]
    blurred = PhotoAnswer(dogs[0].answer, tuple(dogs), False, ADVICE["blurred"])
    text = photo_text(blurred, dogs)
    assert caption_length(text) <= CAPTION_LIMIT
    assert text.splitlines()[1] == "① (left) maybe <b>American Staffordshire terrier</b> 30%"
    assert text.endswith(f"\n\n💡 {ADVICE['blurred']}")


def test_each_dog_of_several_has_its_own_buttons() -> None:
    rows = feedback_keyboard(7, 2).inline_keyboard
    assert [[(b.text, b.callback_data) for b in row] for row in rows] == [
        [("① 👍 Right", "ok:7::1"), ("① ✏️ Correct it", "fix:7::1")],
        [("② 👍 Right", "ok:7::2"), ("② ✏️ Correct it", "fix:7::2")]]
    dog_two = correction_keyboard(7, [SHIH_TZU, LHASA], dog=2)
    assert [b.callback_data for row in dog_two.inline_keyboard for b in row] == [
        "set:7:1:2", "other:7::2"]
    # Of three dogs, ②'s breeds take its row's place; ① and ③ keep their buttons.
    of_three = correction_keyboard(7, [SHIH_TZU, LHASA], dog=2, dogs=3)
    assert [[b.callback_data for b in row] for row in of_three.inline_keyboard] == [
        ["ok:7::1", "fix:7::1"], ["set:7:1:2"], ["other:7::2"], ["ok:7::3", "fix:7::3"]]
    assert Press.read("set:7:1:2") == Press("set", 7, 1, 2)
    assert Press.read("set:7:1") == Press("set", 7, 1)  # buttons sent before dogs had numbers
    assert Press.read("ok:7") == Press("ok", 7) and Press("ok", 7).data == "ok:7"
