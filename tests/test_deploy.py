"""Deployed as a host would: two `python -m bot` processes behind one web server that forwards
Telegram's webhook POSTs to them in turn, on one PostgreSQL database and one data folder (the
model file, photos, secrets). Both answer, nothing is answered twice, no correction is lost,
a model promoted into the folder reaches both without a restart, and when one stops the other
answers."""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import text
from telegram.error import Conflict

from bot.app import build_application, serve
from bot.fake_telegram import ChatSpec, UserSpec
from bot.fake_telegram.webhook import SECRET_HEADER
from bot.inference import BatchingClassifier
from bot.storage.engine import make_engine
from model.artifact import BreedLabel
from tests.conftest import DEFAULT_MODEL_VERSION, free_port, running_bot, save_model_file
from tests.postgres import PostgresServer
from tests.test_main import post_photo, stand_in, stopped, wait_for_line, webhook_env

__all__ = ["stand_in"]  # a fixture, used by name
PUG = "imagenet-dogs-121/n02110958-pug.jpg"
USERS = [2001, 2002, 2003, 2004]


class RoundRobin(ThreadingHTTPServer):
    """The web server in front of the bot processes: each POST goes to the next of them (one
    that does not answer costs a 502, and Telegram's retry goes to the next)."""

    def __init__(self, ports: list[int]) -> None:
        super().__init__(("127.0.0.1", 0), Forward)
        self.ports = ports
        self.backends = [f"http://127.0.0.1:{port}" for port in ports]
        self._next = itertools.cycle(self.backends)
        self._lock = threading.Lock()
        self.taken: Counter[str] = Counter()  # updates each backend took

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"

    def next_backend(self) -> str:
        with self._lock:
            return next(self._next)


class Forward(BaseHTTPRequestHandler):
    server: RoundRobin

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        backend = self.server.next_backend()
        kept = {k: v for k, v in self.headers.items() if k in ("Content-Type", SECRET_HEADER)}
        request = urllib.request.Request(backend + self.path, body, kept, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status, answer = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, answer = error.code, error.read()
        except OSError:
            status, answer = 502, b""
        if status == 200:
            self.server.taken[backend] += 1
        self.send_response(status)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args) -> None:  # the stand-in logs what matters
        pass


@pytest.fixture
def proxy() -> Iterator[RoundRobin]:
    """A round-robin forwarder to two bot ports (chosen now, served once the bots start)."""
    server = RoundRobin([free_port() for _ in range(2)])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def chat(api: str, user: int) -> list[dict]:
    with urllib.request.urlopen(f"{api}/api/messages?chat_id={user}&since=0", timeout=10) as r:
        return json.load(r)["messages"]


def bot_message(api: str, user: int, matches, timeout: float = 60) -> dict:
    """The first message of the bot to ``user`` that ``matches``, waiting for it."""
    deadline = time.monotonic() + timeout
    while True:
        found = [m for m in chat(api, user) if m["from"]["is_bot"] and matches(m)]
        if found:
            return found[0]
        assert time.monotonic() < deadline, f"no such answer to {user}: {chat(api, user)}"
        time.sleep(0.1)


def answer_to(api: str, user: int, sent: dict) -> dict:
    return bot_message(api, user, lambda m: m.get("reply_to_message", {}).get("message_id")
                       == sent["message_id"])


def act(api: str, what: str, **fields) -> None:
    """A user acts through the stand-in's control API: ``send`` text, ``press`` a button."""
    request = urllib.request.Request(f"{api}/api/{what}", json.dumps(fields).encode(),
                                     method="POST", headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=10).read()


def press(api: str, user: int, message: dict, label: str) -> None:
    """``user`` presses the button whose label contains ``label`` under ``message``."""
    data = next(b["callback_data"] for row in message["reply_markup"]["inline_keyboard"]
                for b in row if label in b["text"])
    act(api, "press", user_id=user, message_id=message["message_id"], data=data)


def test_two_bot_processes_behind_one_webhook_proxy(tmp_path: Path, stand_in: str,
                                                    proxy: RoundRobin, postgres: PostgresServer,
                                                    read_photo) -> None:
    api, database = stand_in, postgres.new_database().replace("+psycopg", "")  # postgresql://
    bots, logs = [], [[], []]
    try:
        for port in proxy.ports:
            env = webhook_env(tmp_path, api, f"{proxy.url}/telegram/whatbreed", port) | {
                "DATABASE_URL": database, "WHATBREED_LOG_LEVEL": "INFO"}
            bots.append(subprocess.Popen(
                [sys.executable, "-m", "bot"], env=env,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
        for bot, lines in zip(bots, logs, strict=True):
            wait_for_line(bot, lines, "is running", timeout=300)

        # Four people send a photo at once; two confirm the answer, two correct it with the
        # runner-up, pressing twice (each press may reach either process).
        photo = read_photo(PUG)
        sent = {user: post_photo(api, photo, user) for user in USERS}
        answers = {user: answer_to(api, user, sent[user]) for user in USERS}
        for user in USERS[:2]:
            press(api, user, answers[user], "Right")
        for user in USERS[2:]:
            press(api, user, answers[user], "Correct it")
        for user in USERS[2:]:
            offered = bot_message(api, user, lambda m: "Something else" in str(
                m.get("reply_markup")))
            second = offered["reply_markup"]["inline_keyboard"][1][0]["text"]
            press(api, user, offered, second)
        for user in USERS:
            bot_message(api, user, lambda m: "Noted" in m.get("text", ""))
        # A new breed: the question and the "yes" are two updates in a row, so each reaches
        # another process.
        act(api, "send", user_id=USERS[0], text="/correct Jindo",
            reply_to=answers[USERS[0]]["message_id"])
        question = bot_message(api, USERS[0], lambda m: "new breed?" in m.get("text", ""))
        press(api, USERS[0], question, "Yes")
        bot_message(api, USERS[0], lambda m: "added “Jindo” as a new breed" in m.get("text", ""))
        assert all(proxy.taken[backend] > 0 for backend in proxy.backends), proxy.taken

        # A model promoted into the shared folder: both processes load it.
        labels = [BreedLabel("n02110958", "pug"), BreedLabel("n02085620", "Chihuahua")]
        zero_head = {"kernel": np.zeros((1280, 2), np.float32), "bias": np.zeros(2, np.float32)}
        version = save_model_file(tmp_path / "model.whatbreed", labels, zero_head)
        for bot, lines in zip(bots, logs, strict=True):
            wait_for_line(bot, lines, f"model reloaded: {version}", timeout=300)  # every 5 s
        again = {user: post_photo(api, photo, user) for user in USERS}
        for user in USERS:
            answer_to(api, user, again[user])

        # A worker stops: what the proxy sends it fails (502), and Telegram's retry reaches
        # the other one.
        output = [stopped(bots[0], logs[0])]
        last = {user: post_photo(api, photo, user) for user in USERS}
        for user in USERS:
            answer_to(api, user, last[user])
        output.append(stopped(bots[1], logs[1]))
    finally:
        for bot in bots:
            bot.kill()

    engine = make_engine(database)
    with engine.connect() as connection:
        versions = dict(connection.execute(text(
            "SELECT model_version, count(*) FROM predictions GROUP BY model_version")).all())
        kinds = Counter(connection.execute(text("SELECT kind FROM corrections")).scalars())
    engine.dispose()
    assert versions == {DEFAULT_MODEL_VERSION: 4, version: 8}
    assert kinds == {"confirmed": 2, "corrected": 2, "new_breed": 1}  # each counted once
    for user in USERS:  # every photo answered once, by one process or the other
        replies = Counter(m["reply_to_message"]["message_id"] for m in chat(api, user)
                          if m["from"]["is_bot"] and "photo" in m.get("reply_to_message", {}))
        assert replies == {m["message_id"]: 1 for m in (sent[user], again[user], last[user])}
    assert not any("Traceback" in log for log in output)


async def test_a_second_poller_with_the_same_token_is_refused(
        tmp_path: Path, classifier: BatchingClassifier, read_photo) -> None:
    """Long polling serves one process a token (Telegram ends the older of two requests with
    409, as the stand-in does): a bot started while another polls stops with that Conflict,
    which `python -m bot` prints as one line, and the first keeps answering."""
    alex = UserSpec(3001, "Alex")
    async with running_bot(tmp_path, classifier) as env:
        second = build_application(env.fake.token, env.services, env.fake.base_url,
                                   env.fake.base_file_url)
        with pytest.raises(Conflict, match="terminated by other getUpdates request"):
            await asyncio.wait_for(serve(second, asyncio.Event()), timeout=60)
        answer = await env.ask(ChatSpec(alex.id), alex, read_photo(PUG))
        assert answer["text"].startswith("🐕 Looks most like a pug.")
