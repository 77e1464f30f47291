"""`python -m bot` as a process: the playground answers a photo, a model promoted into
$WHATBREED_DATA is loaded as it appears, SIGHUP reloads the model, SIGTERM stops it cleanly, and
the token never reaches the logs."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from model.artifact import BreedLabel
from tests.conftest import DEFAULT_MODEL_VERSION, save_model_file

PLAYGROUND_TOKEN = "123456:playground"
REPOSITORY = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_line(process: subprocess.Popen, lines: list[str], text: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        lines.append(line)
        if text in line:
            return
    pytest.fail(f"no {text!r} in the output:\n{''.join(lines)}")


def post_photo(url: str, photo: bytes) -> None:
    boundary = "whatbreed"
    fields = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
              for k, v in {"chat_id": 1001, "user_id": 1001, "kind": "photo"}.items()]
    body = ("".join(fields) + f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            'filename="dog.jpg"\r\nContent-Type: image/jpeg\r\n\r\n').encode() + photo + \
        f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(f"{url}/api/send", body, method="POST", headers={
        "Content-Type": f"multipart/form-data; boundary={boundary}"})
    urllib.request.urlopen(request, timeout=10).read()


def bot_texts(url: str) -> list[str]:
    with urllib.request.urlopen(f"{url}/api/messages?chat_id=1001&since=0", timeout=10) as r:
        messages = json.load(r)["messages"]
    return [m.get("text", "") for m in messages if m["from"]["is_bot"]]


def test_playground_process(tmp_path: Path, read_photo) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in ("TELEGRAM_BOT_TOKEN", "WHATBREED_MODEL")}  # the defaults are tested
    env |= {"WHATBREED_DATA": str(tmp_path), "WHATBREED_LOG_LEVEL": "DEBUG"}
    process = subprocess.Popen([sys.executable, "-m", "bot", "--port", str(port)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        wait_for_line(process, lines, f"predictor {DEFAULT_MODEL_VERSION} ready")  # none promoted
        wait_for_line(process, lines, f"playground at http://127.0.0.1:{port}")
        wait_for_line(process, lines, "is running")
        post_photo(f"http://127.0.0.1:{port}", read_photo("imagenet-dogs-121/n02110958-pug.jpg"))
        wait_for_line(process, lines, "sendMessage")
        deadline = time.monotonic() + 10
        while not any("pug" in t for t in bot_texts(f"http://127.0.0.1:{port}")):
            assert time.monotonic() < deadline, "no answer naming the pug"
            time.sleep(0.1)

        labels = [BreedLabel("n02110958", "pug"), BreedLabel("n02085620", "Chihuahua")]
        zero_head = {"kernel": np.zeros((1280, 2), np.float32), "bias": np.zeros(2, np.float32)}
        promoted = save_model_file(tmp_path / "model.whatbreed", labels, zero_head)
        wait_for_line(process, lines, f"model reloaded: {promoted}")  # looked at every 5 s
        process.send_signal(signal.SIGHUP)
        wait_for_line(process, lines, f"model reloaded: {promoted}")
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
        lines.append(output)
    finally:
        process.kill()
    assert process.returncode == 0, "".join(lines)
    log = "".join(lines)
    assert "<token>" in log  # httpx logged request URLs at DEBUG, with the token redacted
    assert PLAYGROUND_TOKEN not in log
    assert "Traceback" not in log
    assert (tmp_path / "whatbreed.db").is_file() and any((tmp_path / "photos").iterdir())


def test_a_busy_port_is_one_clear_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "TELEGRAM_BOT_TOKEN"}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "bot", "--port", str(port)],
                                env=env | {"WHATBREED_DATA": str(tmp_path)},
                                capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: cannot serve the playground on port {port}: it is in use; "
        "pass --port or set PORT")
    assert "Traceback" not in result.stderr


def test_the_bot_with_a_token_does_not_load_the_stand_in() -> None:
    """Only the playground (no token) imports bot.fake_telegram; a fresh interpreter shows it,
    as this one has it loaded by conftest.py."""
    check = ("import sys, bot.__main__, bot.app; "
             "print(sorted(m for m in sys.modules if m.startswith('bot.fake_telegram')))")
    result = subprocess.run([sys.executable, "-c", check], cwd=REPOSITORY, capture_output=True,
                            text=True, timeout=120, check=True)
    assert result.stdout.strip() == "[]"
