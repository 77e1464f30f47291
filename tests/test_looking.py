"""model.evaluation.looking: the variants' names and how answers are scored; the variants run
on real photos in scripts/evaluate_looks.py."""

from __future__ import annotations

from pathlib import Path

from model.answers import Answer, Box, BreedGuess, Dog, PhotoAnswer
from model.data.dataset import Example
from model.evaluation.looking import Variant, describe, score
from model.predictor import LOOK, LOOK_TWICE, Look


def test_names_say_what_is_looked_at() -> None:
    assert describe(LOOK) == "whole + mirror"
    assert describe(LOOK_TWICE) == "whole + mirror, crop (0.3) if unsure"
    assert describe(Look(mirror=False, second_look="always", margin=0.15, mirror_crop=True)) \
        == "whole, crop (0.15) + mirror always"


def answer(*labels: str) -> Answer:
    return Answer(True, 0.9, False, tuple(BreedGuess(label, label, 0.1) for label in labels))


def test_score_counts_top1_top5_and_second_looks(tmp_path: Path) -> None:
    examples = []
    for i, label in enumerate(["a", "b", "c"]):
        (tmp_path / f"{i}.jpg").write_bytes(label.encode())  # a stand-in photo: its label
        examples.append(Example(tmp_path / f"{i}.jpg", "", label, "", "", "", ""))
    guesses = {b"a": ("a", "x"), b"b": ("x", "y", "z", "w", "b"), b"c": ("x", "y", "z", "w", "v",
                                                                          "c")}
    plain = Variant("plain", lambda photos: [answer(*guesses[p]) for p in photos])
    result = score(plain, examples)
    assert (result.count, result.top1, result.top5, result.looked_twice) == (3, 1, 2, None)

    def looked(photos: list[bytes]) -> list[PhotoAnswer]:
        return [PhotoAnswer(answer(*guesses[p]), (Dog(Box(0, 0, 1, 1), answer("a")),), p == b"a")
                for p in photos]

    assert score(Variant("look", looked), examples).looked_twice == 1
