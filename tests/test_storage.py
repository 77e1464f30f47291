"""Storage against real SQLite files, a real PostgreSQL server, and the real Alembic migrations
(no mocks). Tests taking the ``store`` or ``database_url`` fixture run on both databases."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from argparse import Namespace
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import astuple
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from bot.storage import (
    CSV_FIELDS,
    MIGRATIONS_DIR,
    VOTE_FIELDS,
    Base,
    Store,
    UnreadableDatabase,
    alembic_config,
    export_corrections,
    export_votes,
)
from bot.storage.engine import read_only_engine
from bot.storage.schema import Correction, Prediction
from model.answers import Answer, Box, BreedGuess, Dog
from model.data.corrections import BOX_FIELDS, read_votes
from model.data.dataset import load_examples, read_manifest, sha256_of
from model.data.feature_cache import FeatureCache
from model.files import TEMPORARY_PREFIX

REPO = Path(__file__).resolve().parents[1]
SALT = "test-salt"
TABLES = {"predictions", "corrections", "events", "event_members", "alembic_version"}
# Distinctive ids, so a raw one would stand out in the database file.
ALICE, BOB, CAROL = 731_904_226_581, 648_113_902_477, 555_020_118_963
GROUP = -1_009_876_543_210
GOLDEN = ("n02099601", "Golden retriever")
LAB = ("n02099712", "Labrador retriever")
PUG = ("n02110958", "Pug")


def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'db' / 'whatbreed.db'}"


def open_store(tmp_path: Path, url: str | None = None) -> Store:
    """A store on ``url``, by default a SQLite file in ``tmp_path``."""
    return Store(url or db_url(tmp_path), tmp_path / "photos", SALT, tmp_path / "features")


@pytest.fixture
def store(tmp_path: Path, database_url: str) -> Iterator[Store]:
    """A store on SQLite, and again on PostgreSQL."""
    s = open_store(tmp_path, database_url)
    yield s
    s.close()


def answer(breed: tuple[str, str] = GOLDEN, *, is_dog: bool = True, p: float = 0.9) -> Answer:
    guesses = (BreedGuess(*breed, p), BreedGuess(*PUG, 1 - p))
    return Answer(is_dog, 0.97 if is_dog else 0.02, False, guesses, None if is_dog else "tabby")


def predict(
    store: Store,
    user_id: int,
    *,
    message_id: int = 1,
    sha: str = "a" * 64,
    chat_id: int = GROUP,
    chat_type: str = "supergroup",
    event_id: int | None = None,
    result: Answer | None = None,
) -> int:
    return store.record_prediction(
        chat_id=chat_id,
        chat_type=chat_type,
        user_id=user_id,
        photo_message_id=message_id,
        photo_sha256=sha,
        model_version="lite2-v1",
        answer=result or answer(),
        event_id=event_id,
    )


# Schema and migrations


def test_migrations_create_schema_and_are_idempotent(tmp_path: Path, database_url: str) -> None:
    first = open_store(tmp_path, database_url)
    pid = predict(first, ALICE)
    first.close()
    second = open_store(tmp_path, database_url)  # upgrading an up-to-date database changes nothing
    assert second.prediction(pid) is not None
    assert set(inspect(second.engine).get_table_names()) >= TABLES
    with second.engine.connect() as conn:
        assert conn.scalar(text("SELECT version_num FROM alembic_version")) == "0003"
    second.close()


def test_processes_starting_at_once_migrate_an_empty_database_once(tmp_path: Path,
                                                                    database_url: str) -> None:
    with ThreadPoolExecutor(4) as pool:
        stores = list(pool.map(lambda _: open_store(tmp_path, database_url), range(4)))
    pids = [predict(s, ALICE, message_id=i) for i, s in enumerate(stores)]
    assert {stores[0].prediction(pid).photo_message_id for pid in pids} == {0, 1, 2, 3}
    for s in stores:
        s.close()


def database_at(url: str, revision: str) -> str:
    """The database at ``url`` brought to migration ``revision``, holding one prediction (id 1)
    as written then; its URL."""
    command.upgrade(alembic_config(url), revision)
    with create_engine(url).begin() as conn:
        conn.execute(text(
            "INSERT INTO predictions (created_at, chat_hash, chat_type, user_hash,"
            " photo_message_id, photo_sha256, model_version, is_dog, dog_probability, mixed,"
            " top_k) VALUES ('2026-11-24 10:00:00+00', 'c', 'private', 'u', 7, :sha, 'v1',"
            " TRUE, 0.9, FALSE, :top_k)"),
            {"sha": "b" * 64, "top_k": json.dumps([{"label": PUG[0], "name": PUG[1],
                                                    "probability": 0.9}])})
    return url


def test_upgrading_a_0001_database_keeps_its_rows(tmp_path: Path, database_url: str) -> None:
    url = database_at(database_url, "0001")
    store = open_store(tmp_path, url)  # upgrades to head
    old = store.prediction(1)
    assert old is not None
    assert (old.photo_sha256, old.model_version, old.photo_file_id) == ("b" * 64, "v1", None)
    assert old.guesses == (BreedGuess(*PUG, 0.9),)
    assert store.prediction(predict(store, ALICE)) is not None
    store.close()
    command.downgrade(alembic_config(url), "0001")
    engine = create_engine(url)
    assert "photo_file_id" not in {c["name"] for c in inspect(engine).get_columns("predictions")}
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM predictions")) == 2


def test_migration_0003_keeps_rows_both_ways(tmp_path: Path, database_url: str) -> None:
    url = database_at(database_url, "0002")
    with create_engine(url).begin() as conn:
        conn.execute(text("INSERT INTO corrections (created_at, prediction_id, user_hash, label,"
                          " name, kind) VALUES ('2026-11-29 10:01:00', 1, 'u', 'x', 'X',"
                          " 'corrected')"))
    store = open_store(tmp_path, url)  # upgrades to head: the old rows answered the whole photo
    assert store.prediction(1).dogs == ()
    assert [c["dog"] for c in store.corrections(1)] == [None]
    store.record_correction(predict_two_dogs(store), ALICE, *LAB, "corrected", dog=2)
    store.close()
    command.downgrade(alembic_config(url), "0002")
    engine = create_engine(url)
    assert "dogs" not in {c["name"] for c in inspect(engine).get_columns("predictions")}
    assert "dog" not in {c["name"] for c in inspect(engine).get_columns("corrections")}
    with engine.connect() as conn:  # every row stays but dog ②'s correction, which would
        assert conn.scalar(text("SELECT count(*) FROM predictions")) == 2  # read as the photo's
        assert conn.scalar(text("SELECT count(*) FROM corrections")) == 1


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    store.close()


def test_migrated_schema_matches_orm_metadata(store: Store) -> None:
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_env_takes_the_url_from_x_argument_or_database_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What `alembic -x url=...` does, without a connection handed over by Store.
    by_x = tmp_path / "x.db"
    config = alembic_config("")
    config.cmd_opts = Namespace(x=[f"url=sqlite:///{by_x}"])
    command.upgrade(config, "head")
    by_env = tmp_path / "env.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{by_env}")
    command.upgrade(alembic_config(""), "head")
    for path in (by_x, by_env):
        assert set(inspect(create_engine(f"sqlite:///{path}")).get_table_names()) >= TABLES


def test_alembic_command_line_with_the_packaged_ini(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    ini = str(MIGRATIONS_DIR / "alembic.ini")
    for args in (["upgrade", "head"], ["check"]):  # check: autogenerate finds no changes
        subprocess.run(
            [sys.executable, "-m", "alembic", "-c", ini, "-x", f"url={url}", *args],
            cwd=REPO,
            check=True,
            capture_output=True,
        )


def test_in_memory_sqlite_and_empty_salt_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="file"):
        Store("sqlite://", tmp_path, SALT)
    with pytest.raises(ValueError, match="salt"):
        Store(db_url(tmp_path), tmp_path, "")


# Photos


def test_opening_the_store_sweeps_photos_a_killed_write_left(tmp_path: Path) -> None:
    """Nobody knows whose photo a leftover is, so /forget could not remove it: it goes."""
    open_store(tmp_path).close()
    leftover = tmp_path / "photos" / f"{TEMPORARY_PREFIX}abc"
    leftover.write_bytes(b"half a photo")
    os.utime(leftover, (time.time() - 7200,) * 2)
    open_store(tmp_path).close()
    assert not leftover.exists()


def test_save_photo_is_content_addressed_atomic_and_idempotent(store: Store) -> None:
    data = b"\xff\xd8 not really a jpeg"
    sha = store.save_photo(data)
    assert sha == hashlib.sha256(data).hexdigest()
    path = store.photo_dir / f"{sha}.jpg"
    assert path.read_bytes() == data
    assert path.stat().st_mode & 0o777 == 0o600  # people's photos: the bot's account alone
    assert store.save_photo(data) == sha
    assert sorted(p.name for p in store.photo_dir.iterdir()) == [path.name]  # no temp files
    assert store.photo_path(sha) == path
    assert store.photo_path("0" * 64) is None
    assert store.photo_path("../../etc/passwd") is None
    odd = store.save_photo(b"odd", suffix="/../svg+xml")  # never a path, never an error
    assert store.photo_path(odd) == store.photo_dir / f"{odd}.bin"


# Predictions and corrections


def test_record_and_look_up_by_photo_or_reply_message(store: Store) -> None:
    pid = predict(store, ALICE, message_id=41)
    info = store.prediction(pid)
    assert info is not None
    assert (info.photo_message_id, info.reply_message_id) == (41, None)
    assert info.guesses == (BreedGuess(*GOLDEN, 0.9), BreedGuess(*PUG, 0.1))
    assert info.model_version == "lite2-v1" and info.event_id is None
    assert store.prediction_for_message(GROUP, 42) is None
    store.set_reply_message(pid, 42)
    assert store.prediction_for_message(GROUP, 41) == store.prediction_for_message(GROUP, 42)
    assert store.prediction_for_message(GROUP, 42).reply_message_id == 42
    assert store.prediction_for_message(-1, 41) is None  # message ids are per chat
    assert store.prediction(pid + 1) is None
    with pytest.raises(ValueError):
        store.record_prediction(
            chat_id=1,
            chat_type="channel",
            user_id=ALICE,
            photo_message_id=1,
            photo_sha256="a" * 64,
            model_version="v",
            answer=answer(),
            event_id=None,
        )


def test_answers_are_stored_as_json_in_the_format_they_always_had(store: Store) -> None:
    predict(store, ALICE, result=answer(p=0.123456))
    with store.engine.connect() as conn:
        row = conn.execute(text("SELECT is_dog, dog_probability, mixed, CAST(top_k AS TEXT)"
                                " FROM predictions"))
        is_dog, dog_probability, mixed, top_k = row.one()
    assert (is_dog, dog_probability, mixed) == (1, 0.97, 0)
    assert json.loads(top_k) == [  # probabilities rounded to 4 places, no other keys
        {"label": GOLDEN[0], "name": GOLDEN[1], "probability": 0.1235},
        {"label": PUG[0], "name": PUG[1], "probability": 0.8765},
    ]


def test_corrections_of_each_kind(store: Store) -> None:
    pid = predict(store, ALICE)
    store.record_correction(pid, ALICE, *GOLDEN, "confirmed")
    store.record_correction(pid, BOB, *LAB, "corrected")
    store.record_correction(pid, BOB, "jindo", "Korean Jindo", "new_breed")
    store.record_correction(pid, CAROL, "jindo", "Korean Jindo", "new_breed")
    rows = store.corrections(pid)
    assert [(r["label"], r["kind"]) for r in rows] == [
        (GOLDEN[0], "confirmed"),
        (LAB[0], "corrected"),
        ("jindo", "new_breed"),
        ("jindo", "new_breed"),
    ]
    assert all(r["created_at"].tzinfo == UTC for r in rows)
    assert store.known_new_breeds() == [("jindo", "Korean Jindo")]
    with pytest.raises(ValueError, match="kind"):
        store.record_correction(pid, ALICE, *LAB, "maybe")
    with pytest.raises(LookupError):
        store.record_correction(pid + 100, ALICE, *LAB, "corrected")


def two_dogs() -> tuple[Dog, Dog]:
    """A golden retriever on the left and a Labrador on the right, each with its own answer."""
    return (Dog(Box(0.0, 0.1, 0.45, 0.9), answer(GOLDEN)),
            Dog(Box(0.5, 0.2, 1.0, 1.0), answer(LAB, p=0.7)))


def predict_two_dogs(store: Store, sha: str = "d" * 64) -> int:
    return store.record_prediction(
        chat_id=ALICE, chat_type="private", user_id=ALICE, photo_message_id=3,
        photo_sha256=sha, model_version="lite2-v1", answer=answer(GOLDEN, p=0.4),
        event_id=None, dogs=two_dogs())


def test_several_dogs_are_stored_with_their_boxes_and_corrected_one_by_one(
        store: Store) -> None:
    pid = predict_two_dogs(store)
    info = store.prediction(pid)
    assert [[(g.label, g.probability) for g in dog] for dog in info.dogs] == [
        [(GOLDEN[0], 0.9), (PUG[0], 0.1)], [(LAB[0], 0.7), (PUG[0], 0.3)]]
    assert info.guesses_of(2) == info.dogs[1] and info.guesses_of(None) == info.guesses
    store.record_correction(pid, ALICE, *PUG, "corrected", dog=2)
    assert [(c["label"], c["dog"]) for c in store.corrections(pid)] == [(PUG[0], 2)]
    with Session(store.engine) as session:  # dog ②'s box is the prediction's second
        row = session.get(Prediction, pid)
        assert row.dogs[1]["box"] == [0.5, 0.2, 1.0, 1.0]
    with pytest.raises(LookupError, match="no dog 3"):
        store.record_correction(pid, ALICE, *PUG, "corrected", dog=3)
    event = store.create_event(ALICE, "Park")  # one dog's breed is not the photo's verdict
    in_event = store.record_prediction(
        chat_id=ALICE, chat_type="private", user_id=ALICE, photo_message_id=4,
        photo_sha256="e" * 64, model_version="lite2-v1", answer=answer(GOLDEN, p=0.4),
        event_id=event.id, dogs=two_dogs())
    store.record_correction(in_event, ALICE, *PUG, "corrected", dog=2)
    assert store.event_stats(event.id).corrections == 0
    with pytest.raises(LookupError, match="no dog 1"):  # a whole-photo answer has no dogs
        store.record_correction(predict(store, ALICE), ALICE, *PUG, "corrected", dog=1)


def test_raw_user_and_chat_ids_are_never_stored(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    # Alice hosts an event from her private chat, whose chat id is her user id.
    event = store.create_event(ALICE, "Park")
    store.join_event(BOB, event.code)
    in_group = predict(store, BOB, message_id=1, event_id=event.id)
    in_private = predict(
        store, ALICE, message_id=1, chat_id=ALICE, chat_type="private", event_id=event.id
    )
    store.set_reply_message(in_private, 2)
    store.record_correction(in_group, ALICE, *LAB, "corrected")
    store.record_correction(in_private, ALICE, *PUG, "corrected")
    # Looked up by the raw chat id, matched by its hash; message ids are per chat.
    assert store.prediction_for_message(ALICE, 1).id == in_private
    assert store.prediction_for_message(ALICE, 2).id == in_private
    assert store.prediction_for_message(GROUP, 1).id == in_group
    assert store.prediction_for_message(BOB, 1) is None
    store.close()  # the last connection checkpoints the WAL into the main file
    files = [p for p in (tmp_path / "db").iterdir() if p.is_file()]
    blob = b"".join(p.read_bytes() for p in files)
    raw_ids = (ALICE, BOB, GROUP)
    for raw in raw_ids:
        assert str(raw).encode() not in blob and str(abs(raw)).encode() not in blob
        # SQLite would keep such an integer as 6 big-endian bytes.
        assert raw.to_bytes(6, "big", signed=True) not in blob
    for user in (ALICE, BOB):
        assert store.user_hash(user).encode() in blob
    assert store.chat_hash(GROUP).encode() in blob
    conn = sqlite3.connect(files[0].parent / "whatbreed.db")
    for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'"):
        for row in conn.execute(f"SELECT * FROM {table}"):
            for value in row:
                assert value not in raw_ids
                assert not any(str(abs(raw)) in str(value) for raw in raw_ids)
    conn.close()


def test_keep_photo_only_for_its_prediction_and_not_after_forget(store: Store,
                                                                  monkeypatch: pytest.MonkeyPatch
                                                                  ) -> None:
    cat, other = b"a photo of a cat", b"another photo"
    pid = predict(store, ALICE, sha=hashlib.sha256(cat).hexdigest())
    assert not store.keep_photo(pid, other)  # not this prediction's photo
    assert list(store.photo_dir.iterdir()) == []
    assert store.keep_photo(pid, cat, ".png")
    assert store.photo_path(hashlib.sha256(cat).hexdigest()).suffix == ".png"

    store.forget_user(ALICE)
    assert not store.keep_photo(pid, cat)  # gone before the fetch came back
    pid = predict(store, BOB, sha=hashlib.sha256(cat).hexdigest())
    real_save = store.save_photo

    def forgotten_while_saving(photo_bytes: bytes, suffix: str = ".jpg") -> str:
        store.forget_user(BOB)  # /forget commits before the file exists
        return real_save(photo_bytes, suffix)

    monkeypatch.setattr(store, "save_photo", forgotten_while_saving)
    assert not store.keep_photo(pid, cat)
    assert list(store.photo_dir.iterdir()) == []


def test_forget_user_removes_their_rows_and_only_unreferenced_photos(store: Store,
                                                                     tmp_path: Path) -> None:
    shared = store.save_photo(b"the same dog")
    own = store.save_photo(b"alice only", suffix=".png")
    pa_shared = predict(store, ALICE, message_id=1, sha=shared)
    predict(store, ALICE, message_id=2, sha=own)
    pb = predict(store, BOB, message_id=3, sha=shared)
    store.record_correction(pa_shared, BOB, *LAB, "corrected")  # on Alice's photo: goes
    store.record_correction(pb, ALICE, *PUG, "corrected")  # Alice's, elsewhere: goes
    store.record_correction(pb, BOB, *GOLDEN, "confirmed")  # stays
    bobs = store.create_event(BOB, "Bob's walk")
    store.join_event(ALICE, bobs.code)
    alices = store.create_event(ALICE, "Alice's party")
    # What retraining learnt from each photo, and from a dog in Alice's own photo.
    cache = {key: FeatureCache(tmp_path / "features", variant, matmul=matmul)
             for key, variant, matmul in ((shared, "lite2", "bfloat16"), (own, "lite2", "float32"),
                                          (f"{own}-dog-0.1000-0.1000-0.5000-0.9000", "lite0",
                                           "bfloat16"))}
    for key, features in cache.items():
        features.put(key, np.zeros((1, 1280)))

    report = store.forget_user(ALICE)

    assert (report.predictions, report.corrections, report.photos) == (2, 2, 1)
    assert report.events_left == 1
    assert store.photo_path(own) is None and store.photo_path(shared) is not None
    # Features go with the photo they came from; Bob's photo keeps its own.
    assert [key for key, features in cache.items() if features.get(key, 0) is not None] == [shared]
    assert store.prediction(pa_shared) is None
    assert store.prediction(pb).photo_sha256 == shared
    assert [c["kind"] for c in store.corrections(pb)] == ["confirmed"]
    assert store.current_event(ALICE) is None
    assert store.hosted_event(ALICE) == alices  # hosted events stay
    assert store.current_event(BOB) == bobs
    assert store.forget_user(ALICE) == type(report)(0, 0, 0, 1)


# Events


def test_events_create_join_current_and_hosted(store: Store) -> None:
    codes = {store.create_event(CAROL, f"Event {i}").code for i in range(20)}
    assert len(codes) == 20
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{8,12}", code) for code in codes)
    park = store.create_event(ALICE, "  Dog   park\nSunday ")
    beach = store.create_event(ALICE, "Beach")
    assert park.name == "Dog park Sunday"
    assert store.hosted_event(ALICE) == beach and store.current_event(ALICE) == beach
    assert store.join_event(BOB, "nope") is None and store.current_event(BOB) is None
    assert store.join_event(BOB, park.code) == park
    assert store.join_event(BOB, beach.code) == beach
    assert store.join_event(BOB, f" {park.code} ") == park  # rejoining makes it current
    assert store.current_event(BOB) == park
    assert store.hosted_event(BOB) is None
    assert len(store.create_event(ALICE, "x" * 100).name) == 64
    for blank in ("", "   \n"):
        with pytest.raises(ValueError, match="name"):
            store.create_event(ALICE, blank)


@pytest.fixture
def party(store: Store) -> tuple[int, dict[str, int]]:
    """An event with five photos from two people, and one photo outside it."""
    event = store.create_event(CAROL, "Party").id
    ids = {
        "golden": predict(store, ALICE, message_id=1, event_id=event),
        "golden2lab": predict(store, ALICE, message_id=2, event_id=event),
        "pug": predict(store, BOB, message_id=3, event_id=event, result=answer(PUG)),
        "golden_b": predict(store, BOB, message_id=4, event_id=event),
        "person": predict(store, BOB, message_id=5, event_id=event, result=answer(is_dog=False)),
    }
    predict(store, CAROL, message_id=6)  # not in the event
    store.record_correction(ids["golden2lab"], ALICE, *PUG, "corrected")
    store.record_correction(ids["golden2lab"], BOB, *LAB, "corrected")  # latest wins
    store.record_correction(ids["pug"], BOB, *PUG, "confirmed")
    return event, ids


def test_event_stats(store: Store, party: tuple[int, dict[str, int]]) -> None:
    stats = store.event_stats(party[0])
    assert (stats.photos, stats.dogs, stats.people, stats.corrections) == (5, 4, 2, 1)
    assert stats.breeds == [("Golden retriever", 2), ("Labrador retriever", 1), ("Pug", 1)]
    empty = store.event_stats(party[0] + 1)
    assert (empty.photos, empty.breeds) == (0, [])


def test_export_event_csv(store: Store, party: tuple[int, dict[str, int]]) -> None:
    reader = csv.DictReader(io.StringIO(store.export_event_csv(party[0])))
    assert tuple(reader.fieldnames or ()) == CSV_FIELDS
    rows = list(reader)
    assert len(rows) == 5
    assert {r["user"] for r in rows} == {store.user_hash(ALICE)[:10], store.user_hash(BOB)[:10]}
    lab = rows[1]
    assert (lab["top1_name"], lab["corrected_name"], lab["correction_kind"]) == (
        GOLDEN[1],
        LAB[1],
        "corrected",
    )
    assert rows[0]["corrected_label"] == "" and rows[2]["correction_kind"] == "confirmed"
    assert [r["is_dog"] for r in rows] == ["true"] * 4 + ["false"]
    assert float(rows[0]["top1_probability"]) == pytest.approx(0.9)
    assert rows[0]["created_at"].endswith("+00:00")


def test_export_keeps_typed_names_from_becoming_formulas(store: Store) -> None:
    event = store.create_event(CAROL, "Party").id
    prediction = predict(store, ALICE, message_id=1, event_id=event)
    store.record_correction(prediction, ALICE, "hyperlink", '=HYPERLINK("x")', "new_breed")
    [row] = csv.DictReader(io.StringIO(store.export_event_csv(event)))
    assert row["corrected_name"] == "'=HYPERLINK(\"x\")"


# Threads


def test_concurrent_writes_from_eight_threads_all_land(store: Store) -> None:
    event = store.create_event(CAROL, "Busy")

    def work(worker: int) -> list[int]:
        ids = []
        for i in range(15):
            user = 1000 + worker
            store.join_event(user, event.code)
            pid = predict(store, user, message_id=worker * 100 + i, event_id=event.id)
            store.set_reply_message(pid, worker * 100 + i + 50)
            store.record_correction(pid, user, *LAB, "corrected")
            ids.append(pid)
        return ids

    with ThreadPoolExecutor(8) as pool:
        ids = [pid for batch in pool.map(work, range(8)) for pid in batch]
    assert len(set(ids)) == 120
    stats = store.event_stats(event.id)
    assert (stats.photos, stats.people, stats.corrections) == (120, 8, 120)
    assert all(store.prediction(pid).reply_message_id is not None for pid in ids)


# Corrections as training data


def corrected_database(tmp_path: Path, read_photo, url: str | None = None) -> dict[str, str]:
    """A bot database (at ``url``, else a SQLite file in ``tmp_path``) with real dog photos,
    named by the label they end with: one corrected, then sent again and confirmed; one added
    as a new breed; one never corrected; one whose file is gone."""
    store = open_store(tmp_path, url)
    golden, pug, pekinese = (store.save_photo(read_photo(f"imagenet-dogs-121/{name}.jpg"))
                             for name in ("n02099712-Labrador_retriever", "n02110958-pug",
                                          "n02086079-Pekinese"))
    first = predict(store, ALICE, sha=golden, result=answer(LAB))
    store.record_correction(first, ALICE, *PUG, "corrected")
    again = predict(store, BOB, message_id=2, sha=golden)  # the same photo, sent again
    store.record_correction(again, BOB, "n02099601", "golden", "confirmed")  # latest: top-1
    store.record_correction(predict(store, BOB, sha=pug), BOB, "jindo", "Jindo", "new_breed")
    predict(store, CAROL, sha=pekinese)  # never corrected
    store.record_correction(predict(store, CAROL, sha="f" * 64), CAROL, *LAB, "corrected")
    store.close()
    return {"golden": golden, "jindo": pug, "gone": "f" * 64}


def test_export_corrections_writes_each_corrected_photo_with_its_latest_label(
    tmp_path: Path, read_photo, database_url: str
) -> None:
    shas = corrected_database(tmp_path, read_photo, database_url)
    manifest = tmp_path / "out" / "corrections.csv"
    exported = export_corrections(database_url, tmp_path / "photos", manifest)
    read = {e.sha256: e for e in load_examples(manifest)}
    assert read_manifest(manifest) == list(read.values())
    assert [e.sha256 for e in exported] == sorted(read) == sorted(shas.values())
    golden, jindo, gone = (read[shas[k]] for k in ("golden", "jindo", "gone"))
    assert (golden.label, golden.name) == GOLDEN  # "confirmed" takes the model's top-1
    assert (jindo.label, jindo.name) == ("jindo", "Jindo")
    assert (gone.label, gone.name) == LAB
    assert {(e.source, e.licence, e.split) for e in read.values()} == {("correction", "", "")}
    for example in (golden, jindo):
        assert example.path.resolve() == (tmp_path / "photos" / f"{example.sha256}.jpg").resolve()
        assert sha256_of(example.path) == example.sha256
    assert gone.path.resolve() == (tmp_path / "photos" / gone.sha256).resolve()
    assert not gone.path.exists()  # the data build counts it as unreadable


def test_a_correction_of_one_dog_of_several_is_a_vote_with_its_box_not_a_manifest_photo(
    store: Store, tmp_path: Path, database_url: str
) -> None:
    sha = store.save_photo(b"two dogs, kept")
    pid = predict_two_dogs(store, sha)
    store.record_correction(pid, ALICE, *PUG, "corrected", dog=1)
    # 👍 on dog ②: its own top-1, not the photo's (GOLDEN)
    store.record_correction(pid, BOB, *LAB, "confirmed", dog=2)
    whole = store.save_photo(b"one dog, kept")
    store.record_correction(predict(store, BOB, sha=whole), BOB, *LAB, "corrected")
    manifest, votes = tmp_path / "corrections.csv", tmp_path / "votes.csv"
    assert [e.sha256 for e in export_corrections(database_url, tmp_path / "photos",
                                                 manifest)] == [whole]
    assert export_votes(database_url, tmp_path / "photos", votes) == 3
    with open(votes, newline="") as file:
        rows = [(r["sha256"], r["label"], tuple(r[f] for f in BOX_FIELDS))
                for r in csv.DictReader(file)]
    left, right = (tuple(map(str, astuple(dog.box))) for dog in two_dogs())
    assert rows == [(sha, PUG[0], left), (sha, LAB[0], right), (whole, LAB[0], ("",) * 4)]
    assert [v.box for v in read_votes(votes)] == [dog.box for dog in two_dogs()] + [None]


def test_export_corrections_only_reads(tmp_path: Path, read_photo) -> None:
    corrected_database(tmp_path, read_photo)
    database = tmp_path / "db" / "whatbreed.db"
    before = database.read_bytes()
    engine = read_only_engine(db_url(tmp_path))
    with pytest.raises(OperationalError, match="readonly"), engine.begin() as conn:
        conn.execute(text("DELETE FROM corrections"))
    engine.dispose()
    export_corrections(db_url(tmp_path), tmp_path / "photos", tmp_path / "corrections.csv")
    assert database.read_bytes() == before


def test_export_corrections_needs_the_database_and_photos_and_never_migrates(
    tmp_path: Path,
) -> None:
    absent = tmp_path / "absent" / "whatbreed.db"
    manifest = tmp_path / "corrections.csv"
    with pytest.raises(FileNotFoundError, match=f"no database {absent}"):
        export_corrections(f"sqlite:///{absent}", tmp_path, manifest)
    assert not absent.parent.exists()  # nothing created
    url = db_url(tmp_path)
    command.upgrade(alembic_config(url), "0001")
    with pytest.raises(UnreadableDatabase, match="at migration 0001, not 0003: start the bot"):
        export_corrections(url, tmp_path, manifest)
    with create_engine(url).connect() as conn:  # still at 0001: reading never migrates
        assert conn.scalar(text("SELECT version_num FROM alembic_version")) == "0001"
    open_store(tmp_path).close()
    with pytest.raises(FileNotFoundError, match="no photo folder"):
        export_corrections(url, tmp_path / "no-photos", manifest)
    (tmp_path / "bot.db").write_bytes(b"not a database" * 100)
    with pytest.raises(UnreadableDatabase, match="cannot read the database"):
        export_corrections(f"sqlite:///{tmp_path / 'bot.db'}", tmp_path, manifest)
    assert not manifest.exists()


# Every vote


def test_export_votes_writes_every_correction_with_its_voter_and_whether_they_host(
    store: Store, tmp_path: Path, database_url: str
) -> None:
    party = store.create_event(CAROL, "Party")
    store.join_event(BOB, party.code)
    kept = store.save_photo(b"a golden retriever, kept")
    at_party = predict(store, BOB, sha=kept, event_id=party.id)  # top-1: GOLDEN
    confirmed = store.record_correction(at_party, CAROL, *GOLDEN, "confirmed")  # 👍: top-1
    corrected = store.record_correction(at_party, BOB, *LAB, "corrected")
    alone = predict(store, ALICE, message_id=2, sha="e" * 64)  # no event, photo not kept
    new_breed = store.record_correction(alone, ALICE, "jindo", "Jindo", "new_breed")
    with Session(store.engine) as session, session.begin():  # the oldest vote, recorded last
        session.execute(update(Correction).where(Correction.id == new_breed)
                        .values(created_at=datetime(2026, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC)))
    out = tmp_path / "data" / "votes.csv"
    out.parent.mkdir()
    out.write_text("an older export\n")

    assert export_votes(database_url, tmp_path / "photos", out) == 3
    with open(out, newline="") as file:
        reader = csv.DictReader(file)
        rows = list(reader)
    assert tuple(reader.fieldnames or ()) == VOTE_FIELDS
    assert [(r["kind"], r["label"], r["name"], r["voter"], r["host"], r["event_id"])
            for r in rows] == [
        ("new_breed", "jindo", "Jindo", store.user_hash(ALICE), "0", ""),
        ("confirmed", *GOLDEN, store.user_hash(CAROL), "1", str(party.id)),
        ("corrected", *LAB, store.user_hash(BOB), "0", str(party.id)),
    ]
    assert rows[0]["at"] == "2026-01-02T03:04:05+00:00"
    assert all(datetime.fromisoformat(r["at"]).tzinfo == UTC for r in rows)
    assert [r["sha256"] for r in rows] == ["e" * 64, kept, kept]
    assert rows[0]["path"] == ""
    assert rows[1]["path"] == rows[2]["path"] == str((tmp_path / "photos" / f"{kept}.jpg")
                                                      .resolve())
    assert [r["correction_id"] for r in rows] == [str(i) for i in (new_breed, confirmed,
                                                                   corrected)]
    assert list(out.parent.iterdir()) == [out]  # replaced, no temporary file left


def test_export_votes_only_reads_and_refuses_what_export_corrections_refuses(
    tmp_path: Path,
) -> None:
    out = tmp_path / "votes.csv"
    with pytest.raises(FileNotFoundError, match="no database"):
        export_votes(f"sqlite:///{tmp_path / 'absent.db'}", tmp_path, out)
    url = db_url(tmp_path)
    command.upgrade(alembic_config(url), "0001")
    with pytest.raises(UnreadableDatabase, match="at migration 0001"):
        export_votes(url, tmp_path, out)
    assert not out.exists()
    open_store(tmp_path).close()
    database = tmp_path / "db" / "whatbreed.db"
    before = database.read_bytes()
    assert export_votes(url, tmp_path / "photos", out) == 0
    assert out.read_text() == ",".join(VOTE_FIELDS) + "\n"
    assert database.read_bytes() == before
