"""`python -m bot` as a process: the playground answers a photo, a model promoted into
$WHATBREED_DATA is loaded as it appears, SIGHUP reloads the model, SIGTERM stops it cleanly, and
the token never reaches the logs; with $WEBHOOK_URL it takes its updates from a stand-in that
POSTs them, and a bad webhook setting is one line."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest

from model.artifact import BreedLabel
from model.efficientnet import fastest_matmul
from tests.conftest import DEFAULT_MODEL_VERSION, free_port, save_model_file

PLAYGROUND_TOKEN = "123456:playground"
WEBHOOK_TOKEN = "654321:webhook-test-token"
REPOSITORY = Path(__file__).resolve().parents[1]


def wait_for_line(process: subprocess.Popen, lines: list[str], text: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        lines.append(line)
        if text in line:
            return
    pytest.fail(f"no {text!r} in the output:\n{''.join(lines)}")


def post_photo(url: str, photo: bytes, user_id: int = 1001) -> dict:
    """``user_id`` sends ``photo`` in their private chat, through the stand-in at ``url``; the
    message."""
    boundary = "whatbreed"
    fields = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
              for k, v in {"chat_id": user_id, "user_id": user_id, "kind": "photo"}.items()]
    body = ("".join(fields) + f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            'filename="dog.jpg"\r\nContent-Type: image/jpeg\r\n\r\n').encode() + photo + \
        f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(f"{url}/api/send", body, method="POST", headers={
        "Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def bot_texts(url: str) -> list[str]:
    with urllib.request.urlopen(f"{url}/api/messages?chat_id=1001&since=0", timeout=10) as r:
        messages = json.load(r)["messages"]
    return [m.get("text", "") for m in messages if m["from"]["is_bot"]]


def ask_for_the_pug(url: str, read_photo, timeout: float = 30) -> None:
    """Send the pug through the Bot API stand-in at ``url``; return once the bot names it."""
    post_photo(url, read_photo("imagenet-dogs-121/n02110958-pug.jpg"))
    deadline = time.monotonic() + timeout
    while not any("pug" in t for t in bot_texts(url)):
        assert time.monotonic() < deadline, "no answer naming the pug"
        time.sleep(0.1)


def stopped(process: subprocess.Popen, lines: list[str]) -> str:
    """SIGTERM ``process``, which must stop cleanly; its whole output."""
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=30)
    lines.append(output)
    assert process.returncode == 0, "".join(lines)
    return "".join(lines)


def test_playground_process(tmp_path: Path, read_photo) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in ("TELEGRAM_BOT_TOKEN", "WHATBREED_MODEL", "WHATBREED_MATMUL")
           }  # the defaults are tested
    env |= {"WHATBREED_DATA": str(tmp_path), "WHATBREED_LOG_LEVEL": "DEBUG"}
    process = subprocess.Popen([sys.executable, "-m", "bot", "--port", str(port)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        wait_for_line(process, lines, f"predictor {DEFAULT_MODEL_VERSION} "  # none promoted
                                      f"({fastest_matmul()} 1×1 products) ready")
        wait_for_line(process, lines, f"playground at http://127.0.0.1:{port}")
        wait_for_line(process, lines, "is running")
        ask_for_the_pug(f"http://127.0.0.1:{port}", read_photo)
        for path in ("/", "/api/me", "/api/messages?chat_id=1001&since=0",
                     "/api/commands?chat_id=1001"):  # what the page loads
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as page:
                shown = page.read().decode()
            assert PLAYGROUND_TOKEN not in shown and quote(PLAYGROUND_TOKEN, safe="") not in shown

        labels = [BreedLabel("n02110958", "pug"), BreedLabel("n02085620", "Chihuahua")]
        zero_head = {"kernel": np.zeros((1280, 2), np.float32), "bias": np.zeros(2, np.float32)}
        promoted = save_model_file(tmp_path / "model.whatbreed", labels, zero_head)
        wait_for_line(process, lines, f"model reloaded: {promoted}")  # looked at every 5 s
        process.send_signal(signal.SIGHUP)
        wait_for_line(process, lines, f"model reloaded: {promoted}")
        log = stopped(process, lines)
    finally:
        process.kill()
    assert "<token>" in log  # httpx logged request URLs at DEBUG, with the token redacted
    assert PLAYGROUND_TOKEN not in log and quote(PLAYGROUND_TOKEN, safe="") not in log
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


@pytest.fixture
def stand_in(tmp_path: Path) -> Iterator[str]:
    """`python -m bot.fake_telegram` on 127.0.0.1, answering WEBHOOK_TOKEN; its URL."""
    port, log = free_port(), tmp_path / "stand-in.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.fake_telegram", "--port", str(port), "--token", WEBHOOK_TOKEN],
        cwd=REPOSITORY, stdout=log.open("w"), stderr=subprocess.STDOUT)
    url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 60
    try:
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/me", timeout=1).read()
                break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def webhook_env(tmp_path: Path, api: str, webhook_url: str, port: int) -> dict[str, str]:
    """`python -m bot`'s environment: the token, the Bot API at ``api``, a webhook."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("WEBHOOK_", "TELEGRAM_")) and k != "WHATBREED_MODEL"}
    return env | {"TELEGRAM_BOT_TOKEN": WEBHOOK_TOKEN, "TELEGRAM_API_URL": api,
                  "WEBHOOK_URL": webhook_url, "WEBHOOK_PORT": str(port),
                  "WHATBREED_DATA": str(tmp_path), "WHATBREED_LOG_LEVEL": "DEBUG"}


def test_webhook_process(tmp_path: Path, stand_in: str, read_photo) -> None:
    api, hook_port = stand_in, free_port()
    hook = f"http://127.0.0.1:{hook_port}/telegram/whatbreed"
    process = subprocess.Popen([sys.executable, "-m", "bot"], stdout=subprocess.PIPE,
                               env=webhook_env(tmp_path, api, hook, hook_port)
                               | {"WHATBREED_MATMUL": "float32"},
                               stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        wait_for_line(process, lines, "(float32 1×1 products) ready")
        wait_for_line(process, lines, f"webhook {hook}: serving /telegram/whatbreed on "
                                      f"127.0.0.1:{hook_port}")
        wait_for_line(process, lines, "is running")
        ask_for_the_pug(api, read_photo)
        forged = urllib.request.Request(hook, b'{"update_id": 1}', method="POST",
                                        headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as refused:  # no secret header
            urllib.request.urlopen(forged, timeout=10)
        assert refused.value.code == 403
        log = stopped(process, lines)
    finally:
        process.kill()
    assert "/bot<token>/setWebhook" in log and "getUpdates" not in log  # httpx's request lines
    assert "'secret_token': '<webhook secret>'" in log  # PTB's DEBUG line of the call
    secret = tmp_path / "webhook_secret"
    assert secret.stat().st_mode & 0o777 == 0o600
    for kept_out in (WEBHOOK_TOKEN, quote(WEBHOOK_TOKEN, safe=""), secret.read_text()):
        assert kept_out not in log
    # The one traceback: PTB's DEBUG note of the forged request it refused.
    assert log.count("Traceback") == 1
    assert "Exception in TelegramHandler\nTraceback" in log
    assert "HTTP 403: Request did not include the secret token" in log


@pytest.mark.parametrize("url, message", [
    ("ftp://bot.example.org/hook",
     "error: WEBHOOK_URL must be an https:// (or http://) URL, not 'ftp://bot.example.org/hook'"),
    ("https://bot.example.org:99999/hook", "error: WEBHOOK_URL 'https://bot.example.org:99999/"
                                           "hook' is malformed: Port out of range 0-65535"),
    (f"htps://bot.example.org/{WEBHOOK_TOKEN}", "error: WEBHOOK_URL must be an https:// (or "
                                                "http://) URL, not 'htps://bot.example.org/<token>'"),
])
def test_a_bad_webhook_url_is_one_clear_line(tmp_path: Path, url: str, message: str) -> None:
    env = webhook_env(tmp_path, "http://127.0.0.1:9", url, 8443)  # neither is reached
    result = subprocess.run([sys.executable, "-m", "bot"], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 2
    assert [line for line in result.stderr.splitlines() if "error" in line.lower()] == [message]
    assert "Traceback" not in result.stderr and WEBHOOK_TOKEN not in result.stderr


def test_a_busy_webhook_port_is_one_clear_line(tmp_path: Path, stand_in: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = webhook_env(tmp_path, stand_in, f"http://127.0.0.1:{port}/hook", port)
        result = subprocess.run([sys.executable, "-m", "bot"], capture_output=True, text=True,
                                env=env | {"WHATBREED_LOG_LEVEL": "INFO"}, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: cannot serve the webhook on 127.0.0.1:{port}: it is in use; "
        "set WEBHOOK_LISTEN or WEBHOOK_PORT")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("setting, message", [
    ({"PORT": "abc"}, "python -m bot: error: argument --port: invalid int value: 'abc'"),
    ({"WHATBREED_MATMUL": "float16"},
     "error: WHATBREED_MATMUL must be auto, float32 or bfloat16, not 'float16'"),
])
def test_a_bad_setting_is_one_clear_line(tmp_path: Path, setting: dict[str, str],
                                         message: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "TELEGRAM_BOT_TOKEN"}
    env |= setting | {"WHATBREED_DATA": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "bot"], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == message
