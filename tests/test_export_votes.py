"""`python -m bot.export_votes` as a process: the bot's settings as defaults, one line out,
and bad input as one `error:` line with exit status 2."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

from bot.storage import Store
from model.answers import Answer, BreedGuess

REPO = Path(__file__).resolve().parents[1]
PUG = BreedGuess("n02110958", "pug", 0.9)


def export_votes(*args: str, data: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    return subprocess.run([sys.executable, "-m", "bot.export_votes", *args], cwd=REPO,
                          env=env | {"WHATBREED_DATA": str(data)}, capture_output=True,
                          text=True, timeout=120)


def test_defaults_follow_the_bot_settings(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'whatbreed.db'}", tmp_path / "photos", "salt")
    prediction = store.record_prediction(
        chat_id=7, chat_type="private", user_id=7, photo_message_id=1, photo_sha256="a" * 64,
        model_version="v", answer=Answer(True, 0.9, False, (PUG,)), event_id=None)
    store.record_correction(prediction, 7, PUG.label, PUG.name, "confirmed")
    store.close()

    result = export_votes(data=tmp_path)
    out = tmp_path / "data" / "votes.csv"
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"1 corrections written to {out}\n"
    with open(out, newline="") as file:
        [row] = csv.DictReader(file)
    assert (row["kind"], row["label"], row["name"]) == ("confirmed", PUG.label, PUG.name)

    elsewhere = tmp_path / "elsewhere.csv"
    named = export_votes("--database", f"sqlite:///{tmp_path / 'whatbreed.db'}", "--photos",
                         str(tmp_path / "photos"), "--out", str(elsewhere), data=tmp_path / "x")
    assert named.stdout == f"1 corrections written to {elsewhere}\n"
    assert not (tmp_path / "x").exists()  # reading the settings creates nothing


def test_an_absent_or_unreadable_database_is_one_line_and_exit_2(tmp_path: Path) -> None:
    absent = export_votes(data=tmp_path)
    assert absent.returncode == 2
    assert absent.stderr == f"error: no database {tmp_path / 'whatbreed.db'}\n"
    (tmp_path / "whatbreed.db").write_bytes(b"not a database" * 100)
    unreadable = export_votes(data=tmp_path)
    assert unreadable.returncode == 2 and unreadable.stdout == ""
    [line] = unreadable.stderr.splitlines()
    assert line.startswith("error: ") and "cannot read the database" in line
    assert not (tmp_path / "data").exists()
