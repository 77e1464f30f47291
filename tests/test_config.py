"""Which model the bot serves: $WHATBREED_MODEL as given, else the promoted model file once
it exists, else the zero-training default. Webhook mode: $WEBHOOK_URL and its companions."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.config import (
    DEFAULT_MAX_BATCH,
    PROMOTED_MODEL,
    SECRET_TOKEN,
    ConfigError,
    ModelSource,
    Webhook,
    matmul_setting,
    max_batch_setting,
)
from model import DEFAULT_VARIANT

REPOSITORY = Path(__file__).resolve().parents[1]


def test_unset_serves_the_promoted_model_once_it_exists(tmp_path: Path) -> None:
    assert ModelSource.from_setting(None) == ModelSource.from_setting("") == ModelSource(
        str(PROMOTED_MODEL), DEFAULT_VARIANT)
    promoted = tmp_path / "model.whatbreed"
    source = ModelSource(str(promoted), DEFAULT_VARIANT)
    assert source.watched == promoted and source.to_load() == DEFAULT_VARIANT
    promoted.write_bytes(b"a model")
    assert source.to_load() == str(promoted)
    promoted.unlink()
    assert source.to_load() == DEFAULT_VARIANT


def test_a_variant_is_not_watched_and_a_named_file_must_exist(tmp_path: Path) -> None:
    variant = ModelSource.from_setting("lite0")
    assert variant.watched is None and variant.to_load() == "lite0"
    named = ModelSource.from_setting(str(tmp_path / "absent.whatbreed"))
    assert named.watched == tmp_path / "absent.whatbreed"
    assert named.to_load() == str(tmp_path / "absent.whatbreed")  # loading it says it is absent


def test_no_webhook_url_means_long_polling(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WEBHOOK_URL", raising=False)
    assert Webhook.from_env(tmp_path) is None
    assert not (tmp_path / "webhook_secret").exists()


def test_webhook_defaults_keep_a_secret_under_the_data_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("WEBHOOK_PORT", "WEBHOOK_LISTEN", "WEBHOOK_SECRET"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("WEBHOOK_URL", "https://bot.example.org/telegram/whatbreed")
    webhook = Webhook.from_env(tmp_path)
    assert (webhook.url, webhook.listen, webhook.port, webhook.path) == (
        "https://bot.example.org/telegram/whatbreed", "127.0.0.1", 8443, "/telegram/whatbreed")
    kept = tmp_path / "webhook_secret"
    assert webhook.secret == kept.read_text() and SECRET_TOKEN.fullmatch(webhook.secret)
    assert kept.stat().st_mode & 0o777 == 0o600
    assert Webhook.from_env(tmp_path).secret == webhook.secret  # a restart keeps it
    assert webhook.secret not in repr(webhook)

    monkeypatch.setenv("WEBHOOK_URL", "https://bot.example.org")
    monkeypatch.setenv("WEBHOOK_PORT", "9000")
    monkeypatch.setenv("WEBHOOK_LISTEN", "0.0.0.0")
    monkeypatch.setenv("WEBHOOK_SECRET", "given_Secret-1")
    assert Webhook.from_env(tmp_path) == Webhook("https://bot.example.org", "0.0.0.0", 9000,
                                                 "given_Secret-1")
    assert Webhook.from_env(tmp_path).path == "/"


# Waits for the starting signal (a file), then prints the webhook secret it was given.
SECRET_OF_A_PROCESS = """
import sys, time
from pathlib import Path
from bot.config import Webhook
while not Path(sys.argv[1]).exists():
    time.sleep(0.001)
print(Webhook.from_env(Path(sys.argv[2])).secret)
"""


def test_processes_starting_at_once_keep_one_secret(tmp_path: Path) -> None:
    """Bot processes sharing $WHATBREED_DATA must agree on the webhook secret (and the user
    salt, kept the same way), however their starts interleave. (Writing the file in place, 3
    rounds in 20 of 8 processes disagreed.)"""
    env = {k: v for k, v in os.environ.items() if k != "WEBHOOK_SECRET"}
    env |= {"WEBHOOK_URL": "https://bot.example.org/hook", "PYTHONPATH": str(REPOSITORY)}
    for round_ in range(3):
        data, go = tmp_path / f"data{round_}", tmp_path / f"go{round_}"
        processes = [subprocess.Popen([sys.executable, "-c", SECRET_OF_A_PROCESS, go, data],
                                      env=env, stdout=subprocess.PIPE, text=True)
                     for _ in range(8)]
        time.sleep(0.5)  # let them all import and wait
        go.touch()
        secrets = {process.communicate(timeout=60)[0].strip() for process in processes}
        assert len(secrets) == 1 and SECRET_TOKEN.fullmatch(secrets.pop())
        assert [p.name for p in data.iterdir()] == ["webhook_secret"]  # nothing left aside


@pytest.mark.parametrize("variable, value, message", [
    ("WEBHOOK_URL", "ftp://bot.example.org/hook", "WEBHOOK_URL must be an https:// (or http://) "
                                                  "URL, not 'ftp://bot.example.org/hook'"),
    ("WEBHOOK_URL", "bot.example.org/hook", "WEBHOOK_URL must be an https://"),
    ("WEBHOOK_URL", "https:///hook", "WEBHOOK_URL must be an https://"),
    ("WEBHOOK_URL", "https://bot.example.org:99999/hook",
     "WEBHOOK_URL 'https://bot.example.org:99999/hook' is malformed: Port out of range"),
    ("WEBHOOK_URL", "https://bot.example.org:https/hook", "is malformed: Port could not be cast"),
    ("WEBHOOK_URL", "https://bot.example.org:0/hook", "is malformed: port 0"),
    ("WEBHOOK_PORT", "70000", "WEBHOOK_PORT must be a port number (1-65535), not '70000'"),
    ("WEBHOOK_PORT", "eighty", "WEBHOOK_PORT must be a port number (1-65535), not 'eighty'"),
    ("WEBHOOK_PORT", "²", "WEBHOOK_PORT must be a port number (1-65535), not '²'"),
    ("WEBHOOK_SECRET", "not so secret!", "WEBHOOK_SECRET must be 1-256 characters of A-Z"),
    ("WEBHOOK_SECRET", "x" * 257, "WEBHOOK_SECRET must be 1-256 characters of A-Z"),
])
def test_a_bad_webhook_setting_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        variable: str, value: str, message: str) -> None:
    monkeypatch.setenv("WEBHOOK_URL", "https://bot.example.org/hook")
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as error:
        Webhook.from_env(tmp_path)
    assert message in str(error.value)
    if variable == "WEBHOOK_SECRET":
        assert value not in str(error.value)


def test_max_batch_defaults_to_batches_of_8_and_a_bad_one_is_named(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WHATBREED_MAX_BATCH", raising=False)
    assert max_batch_setting() == DEFAULT_MAX_BATCH == 8
    monkeypatch.setenv("WHATBREED_MAX_BATCH", "1")
    assert max_batch_setting() == 1
    for bad in ("0", "eight", "-2", "²"):
        monkeypatch.setenv("WHATBREED_MAX_BATCH", bad)
        with pytest.raises(ConfigError, match=f"WHATBREED_MAX_BATCH must be .* not '{bad}'"):
            max_batch_setting()


def test_matmul_defaults_to_the_cpus_fastest_and_a_bad_one_is_named(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WHATBREED_MATMUL", raising=False)
    assert matmul_setting() == "auto"
    for good in ("float32", "bfloat16", "auto"):
        monkeypatch.setenv("WHATBREED_MATMUL", good)
        assert matmul_setting() == good
    for bad in ("float16", "BF16", "int8"):
        monkeypatch.setenv("WHATBREED_MATMUL", bad)
        with pytest.raises(ConfigError, match=f"WHATBREED_MATMUL must be auto, float32 or "
                                              f"bfloat16, not '{bad}'"):
            matmul_setting()
