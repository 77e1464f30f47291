"""Building one manifest: small sources made in tmp_path from dogs-dev photos (symlinks, and
re-encoded copies), a real bot database, the command line, and near-duplicate grouping."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bot.storage import Store, export_corrections
from model.answers import Answer, BreedGuess
from model.data.build import (
    DROP_REASONS,
    MOVED,
    BuildConfig,
    BuildError,
    BuildReport,
    Sources,
    build_dataset,
    near_duplicate_groups,
    split_targets,
)
from model.data.dataset import (
    NEAR_DUPLICATE_BITS,
    SPLITS,
    Example,
    load_examples,
    perceptual_hash,
    sha256_of,
    write_manifest,
)
from model.data.hash_cache import HASH_CACHE, read_hash_cache
from model.data.stanford import LICENCE, breed_of

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "build_dataset.py"
GOLDEN, BEAGLE = "n02099601-golden_retriever", "n02088364-beagle"
SAMOYED, DINGO, SHIH_TZU = "n02111889-Samoyed", "n02115641-dingo", "n02086240-Shih-Tzu"
FLICKR_LICENCE = "CC BY 2.0"


@dataclass
class Built:
    """The sources made for the test, the first build, and the photos to look for."""

    root: Path
    sources: Sources
    database_url: str  # the bot's, whose corrections the sources hold as a manifest
    bot_photos: Path
    report: BuildReport
    stanford: list[Example]  # the Stanford-style manifest's rows
    exact_copy: str  # sha256 of a Stanford photo also in the class folder
    near: tuple[str, str]  # Stanford train photo, its re-encoded copy in the class folder
    near_split: tuple[str, str]  # Stanford test photo, its copy listed as train elsewhere
    conflict: str  # a Samoyed photo also filed under beagle, no correction
    relabelled: str  # a Stanford beagle photo the bot's user corrected to golden retriever
    jindo_photo: str  # a bot photo corrected to the new breed "jindo"

    def by_sha(self) -> dict[str, Example]:
        return {e.sha256: e for e in self.report.examples}


def dogs(shared: Path, folder: str, start: int, count: int) -> list[Path]:
    return sorted((shared / "dogs-dev" / "Images" / folder).iterdir())[start:start + count]


def link(photo: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.symlink_to(photo)
    return target


def reencoded(photo: Path, target: Path, scale: float = 0.75) -> Path:
    """A smaller, re-encoded copy: other bytes, the same picture."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(photo) as image:
        size = (int(image.width * scale), int(image.height * scale))
        image.convert("RGB").resize(size, Image.BICUBIC).save(target, "JPEG", quality=80)
    return target


def make_stanford(root: Path, shared: Path) -> list[Example]:
    """12 photos of three breeds, the first 8 official train, the rest official test."""
    examples = []
    for folder in (GOLDEN, BEAGLE, SAMOYED):
        label, name = breed_of(folder)
        for i, photo in enumerate(dogs(shared, folder, 0, 12)):
            path = link(photo, root / "stanford" / folder / photo.name)
            examples.append(Example(path, sha256_of(path), label, name, "stanford", LICENCE,
                                    "train" if i < 8 else "test"))
    write_manifest(examples, root / "stanford" / "manifest.csv")
    return examples


def make_flickr(root: Path, shared: Path) -> None:
    """A collected breed, "jindo": 8 photos and a manifest row whose file is gone."""
    folder = root / "flickr" / "jindo"
    rows = [Example(link(p, folder / f"{i}.jpg"), sha256_of(p), "jindo", "Jindo", "flickr",
                    FLICKR_LICENCE, "") for i, p in enumerate(dogs(shared, DINGO, 0, 8))]
    rows.append(Example(folder / "gone.jpg", "0" * 64, "jindo", "Jindo", "flickr",
                        FLICKR_LICENCE, ""))
    write_manifest(rows, folder / "manifest.csv")


def make_dev_folder(root: Path, shared: Path, copy_of: Path) -> Path:
    """A Stanford-layout folder with train/val splits (as dogs-dev): 6 new Samoyeds, and a
    re-encoded copy of ``copy_of`` (an official test photo) listed as train."""
    images = root / "devlike" / "Images" / SAMOYED
    names = [link(p, images / p.name).name for p in dogs(shared, SAMOYED, 12, 6)]
    reencoded(copy_of, images / "copy.jpg")
    splits = root / "devlike" / "splits"
    splits.mkdir(parents=True)
    (splits / "train.txt").write_text("".join(f"{SAMOYED}/{n}\n"
                                              for n in [*names[:4], "copy.jpg"]))
    (splits / "val.txt").write_text("".join(f"{SAMOYED}/{n}\n" for n in names[4:]))
    return root / "devlike"


def make_class_folders(root: Path, shared: Path, stanford: dict[str, list[Path]]) -> Path:
    """Keras-style class folders: an exact and a near copy of Stanford golden retrievers, 3 new
    ones, a file that is no photo, a Samoyed filed as a beagle, and a breed with 2 photos."""
    folder = root / "folder"
    golden = folder / GOLDEN
    golden.mkdir(parents=True)
    shutil.copyfile(stanford[GOLDEN][0], golden / "exact.jpg")
    reencoded(stanford[GOLDEN][1], golden / "near.jpg")
    for photo in dogs(shared, GOLDEN, 12, 3):
        link(photo, golden / photo.name)
    (golden / "broken.jpg").write_bytes(b"this is not a photo")
    (folder / BEAGLE).mkdir()
    shutil.copyfile(stanford[SAMOYED][0], folder / BEAGLE / "actually_a_samoyed.jpg")
    for photo in dogs(shared, SHIH_TZU, 0, 2):
        link(photo, folder / "corgi" / photo.name)
    return folder


def make_bot_database(root: Path, shared: Path, beagle: Path) -> tuple[str, str, str]:
    """The real Store: a photo corrected to the new breed jindo, and a Stanford beagle photo
    corrected to golden retriever. Returns the database URL and the two sha256s."""
    url = f"sqlite:///{root / 'bot' / 'whatbreed.db'}"
    store = Store(url, root / "bot" / "photos", "test-salt")
    shas = []
    for photo, top1, correction in (
            (dogs(shared, DINGO, 8, 1)[0], ("n02115641", "dingo"), ("jindo", "Jindo")),
            (beagle, ("n02088364", "beagle"), ("n02099601", "golden retriever"))):
        sha = store.save_photo(photo.read_bytes())
        prediction = store.record_prediction(
            chat_id=7, chat_type="private", user_id=7, photo_message_id=len(shas) + 1,
            photo_sha256=sha, model_version="lite0-test", event_id=None,
            answer=Answer(True, 0.9, False, (BreedGuess(*top1, 0.8),)))
        store.record_correction(prediction, 7, *correction, "corrected")
        shas.append(sha)
    store.close()
    return url, shas[0], shas[1]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, shared_datasets: Path) -> Built:
    root = tmp_path_factory.mktemp("build")
    stanford = make_stanford(root, shared_datasets)
    paths = {f: [e.path for e in stanford if e.path.parent.name == f]
             for f in (GOLDEN, BEAGLE, SAMOYED)}
    make_flickr(root, shared_datasets)
    dev = make_dev_folder(root, shared_datasets, paths[SAMOYED][8])
    folder = make_class_folders(root, shared_datasets, paths)
    url, jindo_photo, relabelled = make_bot_database(root, shared_datasets, paths[BEAGLE][2])
    corrections = root / "bot" / "corrections.csv"
    export_corrections(url, root / "bot" / "photos", corrections)
    sources = Sources(root / "stanford", root / "flickr", (folder, dev), corrections)
    report = build_dataset(sources, BuildConfig(root / "out" / "manifest.csv"))
    return Built(root, sources, url, root / "bot" / "photos", report, stanford,
                 sha256_of(paths[GOLDEN][0]),
                 (sha256_of(paths[GOLDEN][1]), sha256_of(folder / GOLDEN / "near.jpg")),
                 (sha256_of(paths[SAMOYED][8]), sha256_of(dev / "Images" / SAMOYED / "copy.jpg")),
                 sha256_of(paths[SAMOYED][0]), relabelled, jindo_photo)


def test_merges_every_source_with_its_labels_and_licences(built: Built) -> None:
    examples = built.report.examples
    assert {(e.label, e.name) for e in examples} == {
        ("n02099601", "golden retriever"), ("n02088364", "beagle"), ("n02111889", "Samoyed"),
        ("jindo", "Jindo")}
    sizes = {label: sum(e.label == label for e in examples)
             for label in ("n02099601", "n02088364", "n02111889", "jindo")}
    assert sizes == {"n02099601": 17, "n02088364": 11, "n02111889": 18, "jindo": 9}
    licences = {(e.source, e.licence) for e in examples}
    assert licences == {("stanford", LICENCE), ("flickr", FLICKR_LICENCE), ("folder", ""),
                        ("correction", "")}
    bot_photo = built.by_sha()[built.jindo_photo]
    assert (bot_photo.label, bot_photo.source) == ("jindo", "correction")
    assert bot_photo.path.parent.resolve() == built.bot_photos.resolve()
    assert built.report.read == {"stanford": 36 + 7, "flickr": 9, "folder": 9, "correction": 2}


def test_exact_duplicates_are_kept_once_and_label_conflicts_resolved(built: Built) -> None:
    shas = [e.sha256 for e in built.report.examples]
    assert len(shas) == len(set(shas))
    copy = built.by_sha()[built.exact_copy]
    assert (copy.source, copy.split) == ("stanford", "train")  # the copy with a split wins
    relabelled = built.by_sha()[built.relabelled]  # Stanford said beagle, the bot's user golden
    assert (relabelled.label, relabelled.source, relabelled.split) == (
        "n02099601", "stanford", "train")
    assert built.conflict not in built.by_sha()  # samoyed and beagle, no correction: dropped


def test_near_duplicates_share_one_split(built: Built) -> None:
    examples = built.by_sha()
    for original, copy in (built.near, built.near_split):
        assert examples[original].split == examples[copy].split
    assert examples[built.near[0]].split == "train"  # the unsplit copy follows the official one
    assert built.report.moved == 1  # official test and train in one group: one photo moved
    assert built.report.groups >= 2


def test_official_splits_are_kept_and_val_is_carved_from_train(built: Built) -> None:
    examples = built.by_sha()
    moved = set(built.near_split)
    for official in built.stanford:
        if official.sha256 in examples and official.sha256 not in moved:
            allowed = ("train", "val") if official.split == "train" else (official.split,)
            assert examples[official.sha256].split in allowed, official.path
    beagles = [e for e in built.report.examples if e.label == "n02088364"]
    assert [e.split for e in beagles].count("val") == 1  # Stanford has no val: one carved
    assert built.report.carved["val"] >= 1
    dev_val = [e for e in built.report.examples if "devlike" in str(e.path) and e.split == "val"]
    assert len(dev_val) == 2


def test_every_breed_has_train_val_and_test(built: Built) -> None:
    for label in {e.label for e in built.report.examples}:
        splits = {e.split for e in built.report.examples if e.label == label}
        assert splits == set(SPLITS), label


def test_report_counts_every_drop_and_is_written(built: Built) -> None:
    report = built.report
    assert dict(report.dropped) == {"exact_duplicate": 2, "label_conflict": 2, "unreadable": 2,
                                    "too_few_photos": 2}
    assert sum(report.read.values()) == len(report.examples) + sum(report.dropped.values())
    assert report.too_few == [("corgi", 2)]
    text = report.render()
    for needle in (*DROP_REASONS, MOVED, "corgi (2)", "class imbalance", "ratio",
                   "near-duplicate groups", "Jindo", "correction"):
        assert needle in text, needle
    out = built.root / "out" / "manifest.csv"
    assert out.with_name("manifest.csv.report.txt").read_text() == text


def test_manifest_reads_back_and_training_accepts_it(built: Built) -> None:
    from model.training.train import split_examples

    out = built.root / "out" / "manifest.csv"
    read = load_examples(out)
    assert [(e.sha256, e.label, e.split, e.path.resolve()) for e in read] == [
        (e.sha256, e.label, e.split, e.path.resolve()) for e in built.report.examples]
    splits = split_examples(read)
    assert splits["train"] and splits["val"] and splits["test"]
    cached = read_hash_cache(out.with_name(HASH_CACHE))
    assert {e.sha256 for e in read} <= cached.keys()


def run_script(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, SCRIPT, *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def one_error(result: subprocess.CompletedProcess) -> str:
    """The one "error:" line of a run that failed as a user's mistake (exit status 2)."""
    assert result.returncode == 2
    [error] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    return error


def test_the_command_line_rebuilds_the_same_bytes_from_the_cache(built: Built) -> None:
    out = built.root / "out" / "manifest.csv"
    first = out.read_bytes()
    s = built.sources
    result = run_script("--stanford", s.stanford, "--flickr", s.flickr, "--folder", s.folders[0],
                        "--folder", s.folders[1], "--corrections", built.database_url,
                        "--photos", built.bot_photos, "--out", out, "--seed", "0")
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == first
    assert "hashing 1 of 58 photos" in result.stderr  # all but the file that is no photo
    assert "photos per breed and split" in result.stdout


def test_the_command_line_reports_an_absent_database_as_skipped(built: Built,
                                                                tmp_path: Path) -> None:
    absent = tmp_path / "absent"
    result = run_script("--stanford", absent, "--flickr", absent, "--folder",
                        built.sources.folders[1], "--corrections", f"sqlite:///{absent / 'x.db'}",
                        "--photos", built.bot_photos, "--min-photos", 1,
                        "--out", tmp_path / "m.csv")
    assert result.returncode == 0, result.stderr
    assert f"correction: no database {absent / 'x.db'}: skipped" in result.stdout
    assert result.stdout == (tmp_path / "m.csv.report.txt").read_text()
    assert not absent.exists()  # reading never creates the database


def test_the_command_line_fails_in_one_line_without_photos(tmp_path: Path) -> None:
    absent = tmp_path / "absent"
    error = one_error(run_script("--stanford", absent, "--flickr", absent, "--corrections",
                                 f"sqlite:///{absent / 'x.db'}", "--photos", absent,
                                 "--out", tmp_path / "m.csv"))
    assert "no photos" in error
    for source in ("stanford", "flickr", "correction"):
        assert f"{source}: no " in error
    assert not (tmp_path / "m.csv").exists()


def test_the_command_line_fails_in_one_line_on_a_database_it_cannot_read(
        tmp_path: Path) -> None:
    (tmp_path / "photos").mkdir()
    (tmp_path / "bot.db").write_bytes(b"not a database" * 100)
    absent = tmp_path / "absent"
    error = one_error(run_script("--stanford", absent, "--flickr", absent, "--corrections",
                                 f"sqlite:///{tmp_path / 'bot.db'}", "--photos",
                                 tmp_path / "photos", "--out", tmp_path / "m.csv"))
    assert error.startswith(f"error: --corrections sqlite:///{tmp_path / 'bot.db'}: cannot "
                            "read the database")


def test_an_absent_corrections_manifest_is_skipped(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match=f"correction: no {tmp_path / 'c.csv'}: skipped"):
        build_dataset(Sources(corrections=tmp_path / "c.csv"), BuildConfig(tmp_path / "m.csv"))


def test_reencoded_copies_are_near_duplicates(built: Built) -> None:
    """The premise of the near-duplicate tests: a resized, re-encoded photo stays close."""
    examples = built.by_sha()
    for pair in (built.near, built.near_split):
        a, b = (perceptual_hash(examples[sha].path.read_bytes()) for sha in pair)
        assert (a ^ b).bit_count() <= NEAR_DUPLICATE_BITS


def test_20000_hashes_are_grouped_correctly_in_seconds() -> None:
    rng = np.random.default_rng(0)
    n = 20_000
    hashes = list(rng.integers(0, 2**64, n, dtype=np.uint64))

    def flip(value: np.uint64, bits: list[int]) -> np.uint64:
        return value ^ np.uint64(sum(1 << b for b in bits))

    expected = []
    for k in range(300):  # a copy of photo k, 1 to 6 bits away
        bits = rng.choice(64, size=1 + k % NEAR_DUPLICATE_BITS, replace=False).tolist()
        hashes.append(flip(hashes[k], bits))
        expected.append({k, len(hashes) - 1})
    b = flip(hashes[500], [0, 1, 2, 3, 4])  # a chain: 500 - b - c, with 500 and c 10 bits apart
    hashes += [b, flip(b, [5, 6, 7, 8, 9])]
    expected.append({500, len(hashes) - 2, len(hashes) - 1})
    hashes += [hashes[600]] * 3  # exact copies
    expected.append({600, len(hashes) - 3, len(hashes) - 2, len(hashes) - 1})

    started = time.perf_counter()
    groups = near_duplicate_groups(np.array(hashes, np.uint64))
    elapsed = time.perf_counter() - started

    members: dict[int, set[int]] = {}
    for index, group in enumerate(groups.tolist()):
        members.setdefault(group, set()).add(index)
    found = sorted((m for m in members.values() if len(m) > 1), key=min)
    assert found == sorted(expected, key=min)
    assert elapsed < 5, f"{elapsed:.1f} s"


@pytest.mark.parametrize(("n", "expected"), [
    (1, (1, 0, 0)), (2, (1, 1, 0)), (3, (1, 1, 1)), (5, (3, 1, 1)), (17, (13, 2, 2)),
    (100, (80, 10, 10))])
def test_split_targets(n: int, expected: tuple[int, int, int]) -> None:
    assert tuple(split_targets(n, 0.1, 0.1)[s] for s in SPLITS) == expected


def test_no_val_fraction_means_no_val() -> None:
    assert split_targets(10, 0.0, 0.2) == {"train": 8, "val": 0, "test": 2}

