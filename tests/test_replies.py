"""What the bot says: the answer texts (HTML) and the buttons' callback data."""

from __future__ import annotations

from bot.replies import (
    answer_text,
    confirm_new_breed_keyboard,
    correction_keyboard,
    promotion_text,
)
from model.answers import Answer, BreedGuess

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
