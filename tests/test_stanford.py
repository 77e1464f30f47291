"""Stanford Dogs preparation: geometry, the real tfds builder on small fake archives (offline),
Stanford-layout folders (fake and dogs-dev), and the command line."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import scipy.io
from PIL import Image

from model.data.dataset import read_manifest
from model.data.stanford import (
    LICENCE,
    MissingDependencyError,
    Prepared,
    StanfordError,
    box_from_tfds,
    breed_of,
    crop_region,
    prepare_from_dir,
    prepare_from_tfds,
    read_splits,
    read_voc,
    to_pixels,
)

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "prepare_stanford_dogs.py"
NAMES = {"n02085620": "Chihuahua", "n02086240": "Shih-Tzu", "n02099601": "golden retriever"}
MAX_MEAN_ERROR = 4.0  # mean |difference| of a crop and the region it should show


@dataclass(frozen=True)
class FakePhoto:
    folder: str
    stem: str
    split: str
    size: tuple[int, int]  # width, height
    boxes: tuple[tuple[int, int, int, int], ...]  # VOC xmin, ymin, xmax, ymax
    regions: tuple[tuple[int, int, int, int], ...]  # expected crops at a 10% margin


# Expected regions worked out by hand: box grown by 10% of its width (height) on each side,
# rounded outwards, clipped to the image.
FAKE_PHOTOS = (
    FakePhoto("n02085620-Chihuahua", "n02085620_1", "train", (200, 150),
              ((50, 30, 150, 130),), ((40, 20, 160, 140),)),
    FakePhoto("n02085620-Chihuahua", "n02085620_2", "test", (120, 160),
              ((0, 0, 120, 160),), ((0, 0, 120, 160),)),
    FakePhoto("n02086240-Shih-Tzu", "n02086240_1", "train", (200, 150),  # two dogs
              ((10, 10, 60, 140), (100, 20, 190, 100)), ((5, 0, 65, 150), (91, 12, 199, 108))),
    FakePhoto("n02086240-Shih-Tzu", "n02086240_2", "train", (160, 120),
              ((33, 17, 97, 81),), ((26, 10, 104, 88),)),
    FakePhoto("n02099601-golden_retriever", "n02099601_1", "train", (180, 180),
              ((20, 40, 120, 160),), ((10, 28, 130, 172),)),
    FakePhoto("n02099601-golden_retriever", "n02099601_2", "test", (100, 100),
              ((45, 45, 55, 55),), ((44, 44, 56, 56),)),
)


def expected_crops() -> dict[str, tuple[FakePhoto, tuple[int, int, int, int]]]:
    """"<folder>/<stem>_<i>.jpg" -> (photo, region)."""
    return {f"{p.folder}/{p.stem}_{i}.jpg": (p, region)
            for p in FAKE_PHOTOS for i, region in enumerate(p.regions)}


def blocky_jpeg(size: tuple[int, int], seed: int) -> bytes:
    """8×8 blocks of random greys (no chroma for JPEG to subsample): a crop one pixel off
    differs from the right one by ~10 on average, two JPEG generations by < 0.5."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, ((size[1] + 7) // 8, (size[0] + 7) // 8, 1), dtype=np.uint8)
    blocks = blocks.repeat(3, axis=2)
    pixels = blocks.repeat(8, 0).repeat(8, 1)[: size[1], : size[0]]
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


def voc_xml(folder: str, stem: str, size: tuple[int, int],
            boxes: tuple[tuple[int, int, int, int], ...]) -> str:
    """An annotation as Stanford ships them (PASCAL VOC, one <object> per dog)."""
    objects = "".join(
        f"<object><name>{folder.partition('-')[2]}</name><pose>Unspecified</pose>"
        f"<truncated>0</truncated><difficult>0</difficult><bndbox><xmin>{x0}</xmin>"
        f"<ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>"
        for x0, y0, x1, y1 in boxes)
    return (f"<annotation><folder>{folder.partition('-')[0]}</folder><filename>{stem}"
            f"</filename><source><database>ImageNet database</database></source><size>"
            f"<width>{size[0]}</width><height>{size[1]}</height><depth>3</depth></size>"
            f"<segment>0</segment>{objects}</annotation>")


def write_mat(path: Path, photos: list[FakePhoto], folders: list[str]) -> None:
    """A ``*_list.mat`` in the structure of Stanford's: N×1 cell arrays and 1-based labels."""
    cells = np.empty((len(photos), 1), dtype=object)
    annotations = np.empty((len(photos), 1), dtype=object)
    for i, p in enumerate(photos):
        cells[i, 0] = f"{p.folder}/{p.stem}.jpg"
        annotations[i, 0] = f"{p.folder}/{p.stem}"
    labels = np.array([[folders.index(p.folder) + 1] for p in photos], dtype=np.float64)
    scipy.io.savemat(path, {"file_list": cells, "annotation_list": annotations,
                            "labels": labels})


@dataclass(frozen=True)
class FakeStanford:
    root: Path  # Images/, Annotation/, lists/ as extracted
    archives: Path  # images.tar, annotation.tar, lists.tar as downloaded


@pytest.fixture(scope="module")
def fake_stanford(tmp_path_factory: pytest.TempPathFactory) -> FakeStanford:
    root = tmp_path_factory.mktemp("stanford")
    folders = sorted({p.folder for p in FAKE_PHOTOS})
    for seed, p in enumerate(FAKE_PHOTOS):
        (root / "Images" / p.folder).mkdir(parents=True, exist_ok=True)
        (root / "Images" / p.folder / f"{p.stem}.jpg").write_bytes(blocky_jpeg(p.size, seed))
        (root / "Annotation" / p.folder).mkdir(parents=True, exist_ok=True)
        (root / "Annotation" / p.folder / p.stem).write_text(
            voc_xml(p.folder, p.stem, p.size, p.boxes))
    # The builder takes its 120 label names from the folders in train_list.mat
    # (ClassLabel(num_classes=120)), so the list also names one photo of 117 made-up breeds;
    # images.tar does not hold them, and the builder skips listed files it never meets.
    absent = [FakePhoto(f"n{90000000 + i}-breed_{i}", f"n{90000000 + i}_1", "train", (8, 8),
                        (), ()) for i in range(120 - len(folders))]
    folders += [p.folder for p in absent]
    (root / "lists").mkdir()
    for split in ("train", "test"):
        write_mat(root / "lists" / f"{split}_list.mat",
                  [p for p in FAKE_PHOTOS + tuple(absent) if p.split == split], folders)
    write_mat(root / "lists" / "file_list.mat", list(FAKE_PHOTOS) + absent, folders)

    archives = tmp_path_factory.mktemp("archives")
    for name, folder, arcname in (("images.tar", "Images", "Images"),
                                  ("annotation.tar", "Annotation", "Annotation"),
                                  ("lists.tar", "lists", "")):
        with tarfile.open(archives / name, "w") as tar:
            if arcname:
                tar.add(root / folder, arcname=arcname)
            else:  # lists.tar holds the .mat files at its top level
                for mat in sorted((root / folder).iterdir()):
                    tar.add(mat, arcname=mat.name)
    return FakeStanford(root, archives)


@pytest.fixture(scope="module")
def tfds_prepared(fake_stanford: FakeStanford,
                  tmp_path_factory: pytest.TempPathFactory) -> Prepared:
    """The real ``stanford_dogs`` builder, whose downloads return the fake archives.

    As tfds' own DatasetBuilderTestCase does, only ``DownloadManager.download`` and
    ``download_and_extract`` are patched; extraction (tfds' extractor), ``iter_archive``, the
    .mat and XML parsing and the example generation all run for real.
    """
    tfds = pytest.importorskip("tensorflow_datasets")

    def local(urls):
        if isinstance(urls, str):
            return fake_stanford.archives / urls.rsplit("/", 1)[-1]
        if isinstance(urls, dict):
            return {key: local(url) for key, url in urls.items()}
        return [local(url) for url in urls]

    def download(self, urls):
        return local(urls)

    def download_and_extract(self, urls):
        return self.extract(local(urls))

    tmp = tmp_path_factory.mktemp("tfds")
    config = tfds.download.DownloadConfig(compute_stats=tfds.download.ComputeStatsMode.SKIP)
    with mock.patch.multiple("tensorflow_datasets.core.download.DownloadManager",
                             download=download, download_and_extract=download_and_extract):
        return prepare_from_tfds(tmp / "out", data_dir=tmp / "data", download_config=config)


def crops_by_name(prepared: Prepared) -> dict[str, object]:
    root = prepared.manifest.parent
    return {e.path.relative_to(root).as_posix(): e for e in prepared.examples}


def mean_error(crop: Path, original: Path, region: tuple[int, int, int, int]) -> float:
    with Image.open(crop) as a, Image.open(original) as b:
        got = np.asarray(a.convert("RGB"), np.float64)
        want = np.asarray(b.convert("RGB").crop(region), np.float64)
    return float(np.abs(got - want).mean())


def assert_fake_crops(prepared: Prepared, root: Path) -> None:
    """One crop per box, each the hand-computed region of the right photo, labelled."""
    crops = crops_by_name(prepared)
    assert set(crops) == set(expected_crops())
    for name, (photo, region) in expected_crops().items():
        example = crops[name]
        with Image.open(example.path) as image:
            assert image.size == (region[2] - region[0], region[3] - region[1]), name
        original = root / "Images" / photo.folder / f"{photo.stem}.jpg"
        assert mean_error(example.path, original, region) < MAX_MEAN_ERROR, name
        assert (example.label, example.split) == (photo.folder[:9], photo.split)
        assert example.name == NAMES[example.label]
        assert (example.source, example.licence) == ("stanford", LICENCE)
        assert example.sha256 == hashlib.sha256(example.path.read_bytes()).hexdigest()
    assert prepared.whole == 0
    assert prepared.images == {"train": 4, "test": 2}


# --- geometry and parsing --------------------------------------------------------------------


def test_crop_region_grows_by_the_margin_and_clips_to_the_image():
    assert crop_region((50, 30, 150, 130), (200, 150)) == (40, 20, 160, 140)
    assert crop_region((10, 10, 60, 140), (200, 150)) == (5, 0, 65, 150)  # clipped top, bottom
    assert crop_region((33, 17, 97, 81), (160, 120)) == (26, 10, 104, 88)  # rounded outwards
    assert crop_region((50, 30, 150, 130), (200, 150), margin=0) == (50, 30, 150, 130)
    assert crop_region((50, 30, 150, 130), (200, 150), margin=1) == (0, 0, 200, 150)
    # float32 noise from normalised boxes does not add a pixel
    assert crop_region((49.99999, 30.00001, 150.00001, 129.99999), (200, 150),
                       margin=0) == (50, 30, 150, 130)
    assert crop_region((60, 30, 50, 130), (200, 150)) is None  # empty
    assert crop_region((250, 30, 300, 130), (200, 150)) is None  # outside


def test_tfds_boxes_are_ymin_xmin_ymax_xmax_normalised():
    box = box_from_tfds(np.array([30 / 150, 50 / 200, 130 / 150, 150 / 200], np.float32))
    pixels = to_pixels(box, (1.0, 1.0), (200, 150))
    np.testing.assert_allclose(pixels, (50, 30, 150, 130), atol=1e-4)
    assert crop_region(pixels, (200, 150)) == (40, 20, 160, 140)
    # an annotation made on a half-size copy of the photo is scaled up
    assert to_pixels((10, 20, 30, 40), (100, 75), (200, 150)) == (20, 40, 60, 80)


def test_read_voc_reads_every_box_and_the_size(tmp_path: Path):
    path = tmp_path / "n02086240_1"
    path.write_text(voc_xml("n02086240-Shih-Tzu", "n02086240_1", (200, 150),
                            ((10, 10, 60, 140), (100, 20, 190, 100))))
    assert read_voc(path) == (((10, 10, 60, 140), (100, 20, 190, 100)), (200, 150))


def test_breed_names_prefer_imagenet():
    assert breed_of("n02085620-chihuahua") == ("n02085620", "Chihuahua")
    assert breed_of("n02086240-Shih-Tzu") == ("n02086240", "Shih-Tzu")
    assert breed_of("n02099601-golden_retriever") == ("n02099601", "golden retriever")
    assert breed_of("n00000001-some_new_dog") == ("n00000001", "some new dog")


# --- the tfds builder, offline ---------------------------------------------------------------


def test_tfds_crops_every_box_with_official_splits(tfds_prepared: Prepared,
                                                   fake_stanford: FakeStanford):
    assert_fake_crops(tfds_prepared, fake_stanford.root)
    assert read_manifest(tfds_prepared.manifest) == tfds_prepared.examples
    assert "6 images -> 7 photos (7 crops, 0 kept whole) of 3 breeds" in tfds_prepared.summary()


def test_folder_with_official_lists_gives_the_same_crops(fake_stanford: FakeStanford,
                                                         tfds_prepared: Prepared,
                                                         tmp_path: Path):
    prepared = prepare_from_dir(fake_stanford.root, tmp_path / "out")
    assert_fake_crops(prepared, fake_stanford.root)
    from_tfds = crops_by_name(tfds_prepared)
    for name, example in crops_by_name(prepared).items():
        with Image.open(example.path) as image:
            region = (0, 0, *image.size)
        assert mean_error(example.path, from_tfds[name].path, region) < MAX_MEAN_ERROR


def test_missing_tensorflow_says_what_to_install(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path, capsys):
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # import fails
    with pytest.raises(MissingDependencyError, match=r"pip install -e '\.\[stanford\]'"):
        prepare_from_tfds(tmp_path / "out")
    assert load_script().main(["--out", str(tmp_path / "out")]) == 2
    assert "pip install -e '.[stanford]'" in capsys.readouterr().err


# --- folders ---------------------------------------------------------------------------------


def test_rerun_replaces_the_output_cleanly(fake_stanford: FakeStanford, tmp_path: Path):
    out = tmp_path / "out"
    prepare_from_dir(fake_stanford.root, out, margin=0)
    (out / "n02085620-Chihuahua" / "stale.jpg").write_bytes(b"old")
    prepared = prepare_from_dir(fake_stanford.root, out)
    assert_fake_crops(prepared, fake_stanford.root)
    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert files == set(expected_crops()) | {"manifest.csv"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging left behind


def test_refuses_to_replace_a_folder_that_is_not_an_output(fake_stanford: FakeStanford,
                                                           tmp_path: Path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(StanfordError, match="no manifest.csv"):
        prepare_from_dir(fake_stanford.root, tmp_path)
    with pytest.raises(StanfordError, match="overwrite the input"):
        prepare_from_dir(fake_stanford.root, fake_stanford.root)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_dogs_dev_folder_whole_photos_and_one_annotated(shared_datasets: Path, tmp_path: Path):
    """A few dogs-dev photos (symlinked, never copied into the repository): kept whole and
    byte-identical, splits from splits/*.txt; one gets a hand-written box and is cropped."""
    dev = shared_datasets / "dogs-dev"
    split_of = read_splits(dev)
    chosen = []
    for folder in ("n02086240-Shih-Tzu", "n02099601-golden_retriever"):
        for split in ("train", "val"):
            chosen.append(next(n for n, s in sorted(split_of.items())
                               if s == split and n.startswith(folder + "/")))
    root = tmp_path / "dev"
    for name in chosen:
        (root / "Images" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "Images" / name).symlink_to(dev / "Images" / name)
    (root / "splits").mkdir()
    for split in ("train", "val"):
        (root / "splits" / f"{split}.txt").write_text(
            "".join(f"{n}\n" for n in chosen if split_of[n] == split))
    annotated = chosen[0]  # 224×224, as every dogs-dev photo
    (root / "Annotation" / annotated).parent.mkdir(parents=True)
    (root / "Annotation" / annotated).with_suffix("").write_text(
        voc_xml(annotated.split("/")[0], Path(annotated).stem, (224, 224), ((40, 30, 180, 200),)))

    prepared = prepare_from_dir(root, tmp_path / "out")

    crops = crops_by_name(prepared)
    crop_name = annotated.removesuffix(".jpg") + "_0.jpg"
    assert set(crops) == {crop_name} | set(chosen[1:])
    with Image.open(crops[crop_name].path) as image:
        assert image.size == (194 - 26, 217 - 13)  # (26, 13, 194, 217): 14 and 17 px margins
    assert mean_error(crops[crop_name].path, dev / "Images" / annotated,
                      (26, 13, 194, 217)) < MAX_MEAN_ERROR
    for name in chosen[1:]:
        assert crops[name].sha256 == hashlib.sha256((dev / "Images" / name).read_bytes()
                                                    ).hexdigest()
        assert not crops[name].path.is_symlink()
    for name, example in crops.items():
        source = annotated if name == crop_name else name
        assert example.split == split_of[source]
        assert example.name == NAMES[example.label]
    assert prepared.images == {"train": 2, "val": 2} and prepared.whole == 3


# --- the command line ------------------------------------------------------------------------


def load_script():
    spec = importlib.util.spec_from_file_location("prepare_stanford_dogs", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          cwd=REPO, timeout=60)


def test_cli_missing_from_dir_exits_2(tmp_path: Path):
    result = run_script("--from-dir", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert f"error: {tmp_path / 'nowhere'}: no such folder" in result.stderr
    assert not (tmp_path / "out").exists()


def test_cli_prepares_a_folder_and_prints_a_summary(fake_stanford: FakeStanford,
                                                    tmp_path: Path):
    result = run_script("--from-dir", str(fake_stanford.root), "--out", str(tmp_path / "out"),
                        "--margin", "0.1")
    assert result.returncode == 0, result.stderr
    assert "6 images -> 7 photos (7 crops, 0 kept whole) of 3 breeds" in result.stdout
    assert "train" in result.stdout and "test" in result.stdout
    assert len(read_manifest(tmp_path / "out" / "manifest.csv")) == 7
