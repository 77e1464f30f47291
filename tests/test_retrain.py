"""Corrections teach the bot: a simulated adoption event through the real bot and the local
Bot API stand-in, then scripts/retrain.py, then the promoted model served without a restart,
and --rollback.

The event: 48 English foxhounds (a breed the zero-training model often calls a Walker hound
or a beagle). The host sends half of them and answers for each ("👍 Right" where the answer
was right, /correct where it was wrong); two guests each send the other half and both answer.
A troll sends every foxhound and 8 beagles nobody else sends and calls them all "Samoyed";
three guests name 6 dingoes "Korean Jindo", a breed the bot does not know. Everyone writes in
a private chat (a group's replies are rate-limited to 20 a minute); the same photo sent by two
people is one photo to the rules, so their votes add up. A photo the bot answers as several
dogs (8 of these, README) gets its vote on dog ①: those votes are decided among themselves, and a
decided dog trains as the crop the bot answered it from.
"""

from __future__ import annotations

import asyncio
import csv
import json
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from bot.app import ModelFile, watch_model_file
from bot.config import ModelSource
from bot.fake_telegram import ChatSpec, UserSpec
from bot.inference import BatchingClassifier
from bot.replies import numbered_dogs
from model import DEFAULT_VARIANT, POOLING
from model.answers import Box
from model.artifact import Artifact, BreedLabel, save_artifact
from model.data.dataset import Example, load_examples, sha256_hex
from model.efficientnet import fastest_matmul, from_pretrained
from model.evaluation.several_dogs import LAYOUTS, composite
from model.head import imagenet_rows
from model.predictor import Predictor
from model.training.features import cached_features
from model.training.retrain import score, served_model
from model.training.train import imagenet_base
from tests.conftest import DEFAULT_MODEL_VERSION, BotEnv, eventually, running_bot
from tests.test_bot_e2e import GOLDEN_RETRIEVER
from tests.test_bot_e2e import SAMOYED as SAMOYED_PHOTO

REPO = Path(__file__).resolve().parents[1]
FOXHOUND, BEAGLE, DINGO, SAMOYED = "n02089973", "n02088364", "n02115641", "n02111889"
GOLDEN = "n02099601"
HOST, ANN, BOB, CY, TROLL = (UserSpec(i, name) for i, name in
                             enumerate(("Hana", "Ann", "Bob", "Cy", "Troll"), start=2001))


def test_a_corrected_dog_trains_as_the_crop_the_bot_answered_it_from(
        classifier: BatchingClassifier, read_photo: Callable[[str], bytes],
        tmp_path: Path) -> None:
    """A golden retriever (①, left) and a Samoyed (②) side by side, each corrected: the
    features retraining learns each dog from are those of the crop ``look`` answered it from
    (the same answer again), cached apart from each other and from the whole photo's."""
    photo = composite(read_photo(GOLDEN_RETRIEVER), read_photo(SAMOYED_PHOTO), LAYOUTS[0])
    (tmp_path / "two.png").write_bytes(photo)
    predictor = classifier.predictor
    [answer] = predictor.look([photo])
    dogs = numbered_dogs(answer)
    stored = [Box(*dog.to_json()["box"]) for dog in dogs]  # rounded, as the bot keeps them
    examples = [Example(tmp_path / "two.png", sha256_hex(photo), label, label, "correction", "",
                        "", box) for label, box in zip((GOLDEN, SAMOYED), stored, strict=True)]
    whole = replace(examples[0], box=None)
    features = cached_features(predictor.variant, 0, 0, [], {"votes": [*examples, whole]},
                               tmp_path / "cache", matmul=predictor.matmul)
    assert len(features) == len(list((tmp_path / "cache").rglob("*.npy"))) == 3
    base = imagenet_base(from_pretrained(predictor.variant)[1], predictor.pooling)
    for dog, example in zip(dogs, examples, strict=True):
        assert score(base, [example], features).top1 == 1.0  # the right dog, its right label
        logits = (features[example.key][0].astype(np.float32) @ base.classifier["kernel"]
                  + base.classifier["bias"])
        probabilities = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
        assert probabilities.max() == pytest.approx(dog.answer.predictions[0].probability,
                                                    abs=0.01)  # float16 features


def test_a_model_file_from_before_dog_pooling_is_retrained_on_its_own_features(
        read_photo: Callable[[str], bytes], tmp_path: Path) -> None:
    """A served file whose head read the mean of the frame (every file from before Lite2
    pooled over the dog) is extended and compared on the mean's features, the ones it is
    served on: the cached features give the answer the bot gives with it."""
    labels = [BreedLabel(GOLDEN, "golden retriever"), BreedLabel(SAMOYED, "Samoyed")]
    rows = imagenet_rows([b.label for b in labels], from_pretrained(DEFAULT_VARIANT)[1], "mean")
    path = tmp_path / "model.whatbreed"
    save_artifact(Artifact(DEFAULT_VARIANT, labels, {"hidden": 0, "dropout": 0.2},
                           {"classifier": rows}, created_at="2026-11-29T10:00:00"), path)
    served = served_model(path, DEFAULT_VARIANT)
    assert (served.pooling, served.matmul) == ("mean", "float32")  # as the bot serves it
    assert POOLING[DEFAULT_VARIANT] != "mean"
    zero_training = served_model(tmp_path / "none", DEFAULT_VARIANT)
    assert (zero_training.pooling, zero_training.matmul) == (POOLING[DEFAULT_VARIANT],
                                                             fastest_matmul())
    assert served_model(path, DEFAULT_VARIANT, "bfloat16").matmul == "bfloat16"  # the setting
    photo = read_photo(GOLDEN_RETRIEVER)
    (tmp_path / "golden.jpg").write_bytes(photo)
    example = Example(tmp_path / "golden.jpg", sha256_hex(photo), GOLDEN, GOLDEN, "correction",
                      "", "")
    features = cached_features(DEFAULT_VARIANT, 0, 0, [], {"votes": [example]},
                               tmp_path / "cache", served.pooling, matmul=served.matmul)
    logits = features[example.key][0].astype(np.float32) @ rows["kernel"] + rows["bias"]
    [answer] = Predictor(str(path), warm_up=False).classify([photo], mirror="never")
    assert np.exp(logits - logits.max()).max() / np.exp(logits - logits.max()).sum() == \
        pytest.approx(answer.predictions[0].probability, abs=0.01)  # float16 features


def dev_photos(shared: Path, breed: str, count: int) -> list[Path]:
    folder = next((shared / "dogs-dev" / "Images").glob(f"{breed}-*"))
    return sorted(folder.iterdir())[:count]


@pytest.fixture
async def event_bot(tmp_path: Path) -> AsyncIterator[BotEnv]:
    """The bot as `python -m bot` runs by default: it serves tmp_path/model.whatbreed once that
    exists (else the zero-training model), looking at the file every 0.1 s."""
    source = ModelSource(str(tmp_path / "model.whatbreed"), DEFAULT_VARIANT)
    model_file = ModelFile(tmp_path / "model.whatbreed")
    classifier = BatchingClassifier(lambda: Predictor(source.to_load(), warm_up=False))
    try:
        async with running_bot(tmp_path, classifier, photos_a_minute=1000) as env:
            watcher = asyncio.create_task(watch_model_file(model_file, env.services, 0.1))
            yield env
            watcher.cancel()
    finally:
        classifier.close()


def chat(user: UserSpec) -> ChatSpec:
    return ChatSpec(user.id)


async def say(env: BotEnv, user: UserSpec, text: str, reply_to: int | None = None) -> dict:
    """``user`` writes ``text`` to the bot; the bot's reply to it."""
    return await env.answer_to(user.id, env.fake.send_text(chat(user), user, text, reply_to))


async def join_event(env: BotEnv) -> None:
    await say(env, HOST, "/event Saturday adoption day")
    invite = await env.fake.wait_for(HOST.id, lambda m: "photo" in m)
    code = invite["caption"].split("?start=")[1].split()[0]
    for guest in (ANN, BOB, CY, TROLL):
        await say(env, guest, f"/start {code}")


def answered(env: BotEnv, user: UserSpec, answer: dict, column: str) -> str:
    """``column`` of the prediction behind ``answer`` in ``user``'s chat."""
    [(value,)] = env.rows(f"SELECT {column} FROM predictions WHERE reply_message_id = "
                          f"{answer['message_id']} AND chat_hash = "
                          f"'{env.services.store.chat_hash(user.id)}'")
    return value


async def send_and_vote(env: BotEnv, user: UserSpec, photo: Path, name: str,
                        breed: str | None = None) -> None:
    """``user`` sends the photo, then taps 👍 if the answer was ``breed``, else replies
    /correct ``name`` (adding it as a new breed when the bot does not know it yet); for a
    photo of several dogs, about dog ①."""
    answer = await env.ask(chat(user), user, photo.read_bytes())
    dogs = json.loads(answered(env, user, answer, "dogs") or "null")
    guesses = dogs[0]["predictions"] if dogs else json.loads(answered(env, user, answer, "top_k"))
    if breed is not None and guesses[0]["label"] == breed:
        await press(env, user, answer, "ok:")  # dog ①'s, for several
        return
    reply = await say(env, user, f"/correct {'1 ' * bool(dogs)}{name}", answer["message_id"])
    if "Add it as a new breed?" in reply["text"]:
        await press(env, user, reply, "new:")
    else:
        assert reply["text"].startswith(("✏️ Thanks!", "✅ Thanks!")), reply["text"]


async def press(env: BotEnv, user: UserSpec, message: dict, action: str) -> None:
    """``user`` taps the button whose callback data starts with ``action`` (e.g. "ok:"), and
    the bot stores the correction it means."""
    data = next(b["callback_data"] for row in message["reply_markup"]["inline_keyboard"]
                for b in row if b["callback_data"].startswith(action))
    count = len(env.rows("SELECT id FROM corrections"))
    env.fake.press_button(chat(user), user, message["message_id"], data)
    assert await eventually(lambda: len(env.rows("SELECT id FROM corrections")) > count)


async def hold_the_event(env: BotEnv, shared: Path) -> None:
    await join_event(env)
    foxhounds = dev_photos(shared, FOXHOUND, 48)
    for i, photo in enumerate(foxhounds):
        for voter in [HOST] if i % 2 == 0 else [ANN, BOB]:
            await send_and_vote(env, voter, photo, "English foxhound", FOXHOUND)
    for photo in foxhounds + dev_photos(shared, BEAGLE, 8):
        await send_and_vote(env, TROLL, photo, "Samoyed")
    for photo in dev_photos(shared, DINGO, 6):
        for guest in (ANN, BOB, CY):
            await send_and_vote(env, guest, photo, "Korean Jindo")


async def retrain(tmp_path: Path, shared: Path, *args: str) -> subprocess.CompletedProcess:
    """scripts/retrain.py on the bot's database, while the bot keeps running."""
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, str(REPO / "scripts" / "retrain.py"),
         "--database", f"sqlite:///{tmp_path / 'bot.db'}", "--photos", str(tmp_path / "photos"),
         "--model", str(tmp_path / "model.whatbreed"), "--cache", str(tmp_path / "cache"),
         "--check", str(shared / "wiki-dogs-dev"), *args],
        cwd=REPO, capture_output=True, text=True, timeout=900)


async def top1(predictor: Predictor, paths: list[Path]) -> list[str]:
    """Each photo's top breed, classified off the event loop (the bot keeps running)."""
    answers = await asyncio.to_thread(predictor.classify, [p.read_bytes() for p in paths])
    return [a.predictions[0].label for a in answers]


async def test_an_event_teaches_the_bot(event_bot: BotEnv, tmp_path: Path,
                                        shared_datasets: Path) -> None:
    env, classifier = event_bot, event_bot.services.classifier
    await hold_the_event(env, shared_datasets)
    assert len(env.rows("SELECT id FROM corrections")) == 24 + 2 * 24 + 56 + 3 * 6

    trained = await retrain(tmp_path, shared_datasets)
    assert trained.returncode == 0, trained.stderr[-3000:]
    print(trained.stdout)
    assert "promoted: better on the corrected breeds" in trained.stdout
    assert ("candidate breed Korean Jindo (korean-jindo): 3 people, 6 photos or dogs;"
            in trained.stdout)
    assert "collect_flickr.py --breed korean-jindo" in trained.stdout
    [outcomes] = (tmp_path / "model.whatbreed.history").glob("votes-*.csv")
    with open(outcomes, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 24 + 2 * 24 + 56 + 3 * 6  # every vote, on photos and on dogs
    samoyed = [r for r in rows if r["label"] == SAMOYED]
    assert len(samoyed) == 56 and not any(r["counted"] == "1" for r in samoyed)  # the troll
    assert {r["why"].split(":")[0] for r in samoyed} == {"outvoted", "overruled", "unconfirmed"}
    # Votes on dog ① of a two-dog answer: the honest ones count, as a crop of that dog.
    [(on_dogs,)] = env.rows("SELECT count(*) FROM corrections WHERE dog IS NOT NULL")
    dog_rows = [r for r in rows if r["box_left"]]
    honest = [r for r in dog_rows if r["label"] == FOXHOUND]
    print(f"votes on one dog of several: {len(dog_rows)}, "
          f"{Counter(r['why'].split(':')[0] for r in dog_rows)}, "
          f"on {len({r['sha256'] for r in dog_rows})} photos")
    assert len(dog_rows) == on_dogs > 0 and honest
    assert all(r["counted"] == "1" for r in honest)
    dogs = len({(r["sha256"], r["box_left"], r["box_top"]) for r in honest})
    assert f", {dogs} dogs of several" in trained.stdout  # a trusted label each

    # The bot answers with the promoted model, without a restart.
    promoted = json.loads((tmp_path / "model.whatbreed.history" / "retrain_state.json")
                          .read_text())["candidate"]
    assert await eventually(lambda: classifier.version == promoted, timeout=120)
    answer = await env.ask(chat(ANN), ANN, dev_photos(shared_datasets, FOXHOUND, 60)[-1]
                           .read_bytes())
    assert answered(env, ANN, answer, "model_version") == promoted
    about = await say(env, ANN, "/about")
    assert "Last improved" in about["text"]

    # Photos nobody at the event sent: honest corrections help foxhounds the backbone never
    # trained on (ImageNet validation photos), and breeds nobody corrected answer as before.
    before = await asyncio.to_thread(Predictor, DEFAULT_VARIANT, warm_up=False)
    after = classifier.predictor
    assert after.matmul == before.matmul  # fitted on the served products: as fast as before
    foxhounds = [e.path for e in load_examples(shared_datasets / "imagewoof-val-dev")
                 if e.label == FOXHOUND]
    right = {name: sum(label == FOXHOUND for label in await top1(model, foxhounds))
             for name, model in (("before", before), ("after", after))}
    print(f"imagewoof-val-dev foxhounds right: {right} of {len(foxhounds)}")
    assert right["after"] > right["before"]
    others = load_examples(shared_datasets / "imagenet-dogs-121")  # none of dogs-dev's breeds
    old, new = [await top1(model, [e.path for e in others]) for model in (before, after)]
    same = np.mean([a == b for a, b in zip(old, new, strict=True)])
    accuracy = [np.mean([p == e.label for p, e in zip(answers, others, strict=True)])
                for answers in (old, new)]
    print(f"uncorrected breeds: {same:.3f} of {len(others)} answers unchanged, "
          f"top-1 {accuracy[0]:.3f} -> {accuracy[1]:.3f}")
    assert same >= 0.95 and accuracy[1] >= accuracy[0] - 0.02

    # Nothing new: the next round does nothing; --rollback brings the old model back.
    again = await retrain(tmp_path, shared_datasets)
    assert again.returncode == 0 and "nothing new since the last run" in again.stdout
    rolled = await retrain(tmp_path, shared_datasets, "--rollback")
    assert rolled.returncode == 0, rolled.stderr[-2000:]
    assert f"serving {DEFAULT_MODEL_VERSION} again" in rolled.stdout
    assert await eventually(lambda: classifier.version == DEFAULT_MODEL_VERSION, timeout=120)
