"""Micro-batching: concurrent requests share predictor calls and each gets its own answer;
the bot's predictor is compiled for what it runs."""

import asyncio
import logging
from pathlib import Path

import pytest

from bot.config import DEFAULT_MAX_BATCH
from bot.inference import BatchingClassifier, serving_predictor
from model.answers import PhotoAnswer
from model.predictor import BATCH_SIZES, Predictor
from model.preprocess import NotAnImageError
from tests.conftest import DEFAULT_MODEL_VERSION

TWO_DOGS = "imagewoof-val-dev/Images/n02111889-Samoyed/ILSVRC2012_val_00041480.jpg"
PUG = "imagenet-dogs-121/n02110958-pug.jpg"


@pytest.fixture(scope="module")
def classifier():
    classifier = BatchingClassifier(lambda: Predictor(warm_up=False), max_wait_s=0.2)
    yield classifier
    classifier.close()


async def test_concurrent_photos_are_batched_and_answered_in_order(
        classifier: BatchingClassifier, shared_datasets: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    names = ["n02085620-Chihuahua", "n02110958-pug", "n02111277-Newfoundland"]
    photos = [(shared_datasets / "imagenet-dogs-121" / f"{n}.jpg").read_bytes() for n in names]
    with caplog.at_level(logging.DEBUG, logger="bot.inference"):
        results = await asyncio.gather(*(classifier.look(p) for p in [*photos, b"junk"]))
    answers = [answer for answer, _version in results]
    assert [a.answer.predictions[0].label for a in answers[:3]] == [n.split("-")[0] for n in names]
    assert isinstance(answers[3], NotAnImageError)
    assert {version for _, version in results} == {DEFAULT_MODEL_VERSION}
    assert any("batch of 4" in r.getMessage() for r in caplog.records)


async def test_reload_swaps_the_model_and_requests_keep_working(
        classifier: BatchingClassifier, shared_datasets: Path) -> None:
    before = classifier.predictor
    await asyncio.to_thread(classifier.reload)
    assert classifier.predictor is not before
    photo = (shared_datasets / "imagenet-dogs-121" / "n02110958-pug.jpg").read_bytes()
    result, _ = await classifier.look(photo)
    assert isinstance(result, PhotoAnswer) and result.answer.predictions[0].name == "pug"


def test_the_bots_predictor_is_compiled_for_looking(shared_datasets: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    def compilations() -> int:
        return sum("Finished XLA compilation of jit(_forward_fn)" in r.getMessage()
                   for r in caplog.records)

    with caplog.at_level(logging.DEBUG, logger="jax._src.dispatch"):
        predictor = serving_predictor("lite0")
        # Whole views at the sizes the default max batch uses (1, 8), without their mirror
        # images (added where unsure by a second call of the same program); crops at every
        # size (1, 8, 32).
        assert compilations() == sum(size <= DEFAULT_MAX_BATCH for size in BATCH_SIZES) + len(
            BATCH_SIZES)
        caplog.clear()
        results = predictor.look([(shared_datasets / photo).read_bytes()
                                  for photo in (TWO_DOGS, PUG)])
        assert compilations() == 0  # a batch of whole views and crops, nothing to compile
    assert [len(result.dogs) for result in results] == [2, 1]  # crops were looked at too
