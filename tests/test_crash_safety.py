"""Crashes lose nothing that was acknowledged: `python -m bot` killed with SIGKILL while it writes
predictions and corrections keeps every correction it thanked someone for and only whole
photos, and starts again; a model promotion, a model file or a feature cache killed mid-write
leaves the previous state usable. (An interrupted Flickr collection: tests/test_flickr.py.)"""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from model.artifact import load_artifact
from model.files import TEMPORARY_PREFIX
from model.training.features import FeatureCache
from model.training.promotion import history_dir, promote, promotions, rollback
from tests.conftest import free_port
from tests.test_main import wait_for_line
from tests.test_promotion import artifact

pytestmark = pytest.mark.reliability

REPOSITORY = Path(__file__).resolve().parents[1]
PUG = "imagenet-dogs-121/n02110958-pug.jpg"
USERS = range(2001, 2006)  # the flood limit is 12 photos a minute per user


def call(url: str, path: str, **fields: object) -> dict:
    """The stand-in's control API: a form POST, or a GET without fields' ``file``."""
    photo = fields.pop("file", None)
    if photo is None and path == "/api/messages":
        with urllib.request.urlopen(f"{url}{path}?{urllib.parse.urlencode(fields)}",
                                    timeout=10) as response:
            return json.load(response)
    boundary = "crash-test"
    body = b"".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
                    .encode() for k, v in fields.items())
    if photo is not None:
        body += (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename='
                 '"dog.jpg"\r\nContent-Type: image/jpeg\r\n\r\n').encode() + photo + b"\r\n"
    request = urllib.request.Request(f"{url}{path}", body + f"--{boundary}--\r\n".encode(),
                                     headers={"Content-Type":
                                              f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def pug_variants(pug: bytes, count: int) -> list[bytes]:
    """``count`` different photos of the pug (crops), so each is stored as its own file."""
    image = Image.open(io.BytesIO(pug)).convert("RGB")
    width, height = image.size
    variants = []
    for i in range(count):
        buffer = io.BytesIO()
        image.crop((i, i, width - i, height - i)).save(buffer, "JPEG", quality=90)
        variants.append(buffer.getvalue())
    return variants


def start_bot(data: Path, port: int) -> tuple[subprocess.Popen, list[str]]:
    env = {k: v for k, v in os.environ.items() if k != "TELEGRAM_BOT_TOKEN"}
    env |= {"WHATBREED_DATA": str(data), "WHATBREED_MODEL": "lite0"}
    process = subprocess.Popen([sys.executable, "-m", "bot", "--port", str(port)], env=env,
                               cwd=REPOSITORY, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    wait_for_line(process, lines, "is running", timeout=120)
    return process, lines


def bot_messages(url: str, chat_id: int) -> list[dict]:
    messages = call(url, "/api/messages", chat_id=chat_id, since=0)["messages"]
    return [m for m in messages if m["from"]["is_bot"]]


def press_right_buttons(url: str, pressed: dict[tuple[int, int], int]) -> set[int]:
    """Press 👍 Right under every new answer; the predictions whose correction was acknowledged."""
    acknowledged = set()
    for user in USERS:
        for message in bot_messages(url, user):
            key = (user, message["message_id"])
            if "Noted" in message.get("text", "") and key in pressed:
                acknowledged.add(pressed[key])
            buttons = message.get("reply_markup", {}).get("inline_keyboard", [[]])[0]
            right = next((b["callback_data"] for b in buttons if "Right" in b["text"]), None)
            if right and key not in pressed:
                pressed[key] = int(right.split(":")[1])
                call(url, "/api/press", chat_id=user, user_id=user,
                     message_id=message["message_id"], data=right)
    return acknowledged


def test_sigkill_under_load_loses_no_acknowledged_correction(tmp_path: Path, read_photo) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    photos = iter(pug_variants(read_photo(PUG), 24))
    process, lines = start_bot(tmp_path, port)
    try:
        for user in USERS[:4]:
            for _ in range(4):
                call(url, "/api/send", chat_id=user, user_id=user, kind="photo",
                     file=next(photos))
        pressed: dict[tuple[int, int], int] = {}
        deadline = time.monotonic() + 120
        while len(acknowledged := press_right_buttons(url, pressed)) < 6:
            assert time.monotonic() < deadline, "".join(lines)
            time.sleep(0.1)
        for photo in photos:  # more photos and presses in flight, then the kill
            call(url, "/api/send", chat_id=USERS[-1], user_id=USERS[-1], kind="photo",
                 file=photo)
        acknowledged |= press_right_buttons(url, pressed)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        process.kill()

    database = sqlite3.connect(tmp_path / "whatbreed.db")
    assert database.execute("pragma integrity_check").fetchall() == [("ok",)]
    corrected = {pid for (pid,) in database.execute("select prediction_id from corrections")}
    assert acknowledged <= corrected
    kept = {sha for (sha,) in database.execute("select photo_sha256 from predictions"
                                               " where is_dog")}
    stored = [p for p in (tmp_path / "photos").iterdir()
              if not p.name.startswith(TEMPORARY_PREFIX)]
    assert {p.stem for p in stored} >= kept  # each answered dog's photo is there
    for photo in stored:  # and whole
        assert hashlib.sha256(photo.read_bytes()).hexdigest() == photo.stem

    process, lines = start_bot(tmp_path, port)  # it starts again on what the kill left
    try:
        sent = call(url, "/api/send", chat_id=USERS[0], user_id=USERS[0], text="/help")
        deadline = time.monotonic() + 30
        while not any(m.get("reply_to_message", {}).get("message_id") == sent["message_id"]
                      for m in bot_messages(url, USERS[0])):
            assert time.monotonic() < deadline, "".join(lines)
            time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    assert process.returncode == 0


# Killed mid-write at a random moment: the model files and caches that training, retraining
# and promotion write.
KILLED_WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    import numpy as np
    from model.artifact import save_artifact
    from model.training.features import FeatureCache
    from model.training.promotion import promote
    from tests.test_promotion import artifact

    job, folder = sys.argv[1], Path(sys.argv[2])
    models = [artifact(seed) for seed in range(2)]
    cache = FeatureCache(folder / "cache", "lite0")
    print("ready", flush=True)
    for round in range(10**6):
        model = models[round % 2]
        if job == "promote":
            promote(model, folder / "model.whatbreed", models[(round + 1) % 2].version
                    if round else "efficientnet-lite2-imagenet", {"round": round})
        elif job == "train":
            save_artifact(model, folder / "trained.whatbreed")
        else:
            cache.put(f"{round:064x}", np.full((2, 1280), round % 2000, np.float32))
""")


def kill_mid_write(job: str, folder: Path, after_s: float) -> None:
    process = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, job, str(folder)],
                               cwd=REPOSITORY, stdout=subprocess.PIPE, text=True,
                               env=os.environ | {"PYTHONPATH": str(REPOSITORY)})
    try:
        assert process.stdout.readline().strip() == "ready"
        time.sleep(after_s)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)


@pytest.mark.parametrize("after_s", [0.05, 0.5])
def test_a_killed_promotion_leaves_a_model_that_serves_and_rolls_back(tmp_path: Path,
                                                                     after_s: float) -> None:
    kill_mid_write("promote", tmp_path, after_s)
    served = tmp_path / "model.whatbreed"
    versions = {artifact(seed).version for seed in range(2)}
    current = load_artifact(served).version  # whole, whichever it is
    assert current in versions
    assert any(e["to"] == current for e in promotions(served))
    promote(artifact(7), served, current, {})  # the next promotion works
    assert rollback(served) == current  # and so does a rollback
    assert load_artifact(served).version == current


def test_a_torn_promotion_log_line_is_skipped(tmp_path: Path) -> None:
    served = tmp_path / "model.whatbreed"
    promote(artifact(1), served, "efficientnet-lite2-imagenet", {})
    with open(history_dir(served) / "promotions.jsonl", "a") as log:
        log.write('{"at": "2026-11-30T10:00:00+00:00", "action": "prom')  # killed here
    promote(artifact(2), served, artifact(1).version, {})
    assert [e["to"] for e in promotions(served)] == [artifact(1).version, artifact(2).version]
    assert rollback(served) == artifact(1).version


@pytest.mark.parametrize("after_s", [0.3])
def test_a_killed_training_run_leaves_whole_model_files_and_features(tmp_path: Path,
                                                                     after_s: float) -> None:
    kill_mid_write("train", tmp_path, after_s)
    trained = tmp_path / "trained.whatbreed"
    # The previous model file or the new one, never half of one.
    assert load_artifact(trained).version in {artifact(s).version for s in range(2)}
    kill_mid_write("cache", tmp_path, after_s)
    cache = FeatureCache(tmp_path / "cache", "lite0")
    for round in range(len(list((tmp_path / "cache").rglob("*.npy"))) + 1):
        features = cache.get(f"{round:064x}", 1)
        assert features is None or np.all(features == round % 2000)  # absent or whole
