"""One training manifest from every labelled photo we have, split without leaking.

``build_dataset`` merges, in this order of preference:

- Stanford Dogs (``<stanford>/manifest.csv`` from ``model.data.stanford``, or a raw Stanford-layout
  folder), with its official train/test split;
- the breeds collected from Flickr (every ``<flickr>/<breed>/manifest.csv``);
- any ``--folder`` read by ``model.data.dataset.load_examples`` (plain class folders, photos
  named ``<wnid>-<Name>.jpg``, a Stanford-layout folder with ``splits/*.txt``, or another
  manifest);
- the bot's corrections: a manifest of each corrected photo with the label of its latest
  correction (source "correction"), which the bot exports (``scripts/build_dataset.py``).

Then, in steps that each count what they drop (``DROP_REASONS``):

1. files that are missing are "unreadable";
2. exact duplicates (one sha256) are kept once, preferring a copy that already has a split,
   then the source order above; copies that disagree on the label take the latest
   correction's, or are all dropped as "label_conflict";
3. photos that do not decode are "unreadable" (their perceptual hashes are cached by sha256 in
   ``phash_cache.csv`` beside the output, so a rebuild decodes only new photos);
4. breeds with fewer than ``min_photos`` photos are dropped as "too_few_photos";
5. photos whose perceptual hashes are within ``NEAR_DUPLICATE_BITS`` are grouped (transitively)
   and every group goes to one split: a group with official splits takes its members' majority
   split (photos moved are counted), the others are dealt per breed towards the val/test
   fractions, and a breed still short of val or test photos (Stanford has no val) gets them
   carved from its official train photos.

The manifest is written atomically, with ``<out>.report.txt`` beside it (``BuildReport``).
"""

from __future__ import annotations

import logging
import os
import random
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from model.data.dataset import (
    NEAR_DUPLICATE_BITS,
    SPLITS,
    Example,
    load_examples,
    read_manifest,
    write_manifest,
)
from model.data.hash_cache import HASH_CACHE, HashCache

log = logging.getLogger(__name__)

SOURCE_ORDER = ("stanford", "flickr", "folder", "correction")  # preferred first among copies
DROP_REASONS = ("exact_duplicate", "label_conflict", "unreadable", "too_few_photos")
MOVED = "moved_for_near_duplicates"
SMALL_BREED = 50  # the report lists breeds with fewer photos than this
_PAIR_BLOCK = 1 << 22  # hash comparisons per numpy step of the all-pairs search (32 MB)


class BuildError(Exception):
    """A problem the user can fix (no photos anywhere, a --folder that is not there)."""


@dataclass(frozen=True)
class Sources:
    """Where to look; ``None`` (or an absent path) leaves that source out."""

    stanford: Path | None = None
    flickr: Path | None = None
    folders: tuple[Path, ...] = ()  # named explicitly, so each must exist
    corrections: Path | None = None  # the manifest of the bot's corrected photos
    skipped: tuple[tuple[str, str], ...] = ()  # (source, why) the caller found absent


@dataclass(frozen=True)
class BuildConfig:
    """Where to write, the split fractions and seed, and the size limits on breeds."""

    out: Path  # the manifest; the report and the hash cache go beside it
    val: float = 0.1
    test: float = 0.1
    seed: int = 0
    min_photos: int = 5
    small_breed: int = SMALL_BREED


@dataclass
class BuildReport:
    """What went in, what was dropped and why, and what came out."""

    out: Path
    small_breed: int = SMALL_BREED
    notes: list[str] = field(default_factory=list)  # sources skipped, and why
    read: Counter[str] = field(default_factory=Counter)  # photos read per source
    dropped: Counter[str] = field(default_factory=Counter)  # files dropped per reason
    too_few: list[tuple[str, int]] = field(default_factory=list)  # (breed, photos) dropped
    groups: int = 0  # near-duplicate groups of two or more photos
    grouped: int = 0  # photos in those groups
    moved: int = 0  # photos whose official split changed to keep their group together
    carved: Counter[str] = field(default_factory=Counter)  # official train photos -> val/test
    examples: list[Example] = field(default_factory=list)  # the manifest written

    def render(self) -> str:
        """The report as text: breeds per split, sources, drops, imbalance, near-duplicates."""
        return "\n".join([f"manifest: {self.out} ({len(self.examples):,} photos)", "",
                          *self._breed_table(), "", *self._sources(), "", *self._drops(), "",
                          *self._imbalance(), "", *self._near_duplicates()]) + "\n"

    def _breed_table(self) -> list[str]:
        counts = Counter((e.label, e.split) for e in self.examples)
        names = {e.label: e.name for e in self.examples}
        width = max([len("breed"), *(len(n) for n in names.values())])
        lines = ["photos per breed and split:",
                 f"  {'breed':<{width}} {'label':<12} " + " ".join(f"{s:>6}" for s in SPLITS)
                 + f" {'total':>6}"]
        for label in sorted(names, key=lambda lb: (names[lb].lower(), lb)):
            row = [counts[label, s] for s in SPLITS]
            lines.append(f"  {names[label]:<{width}} {label:<12} "
                         + " ".join(f"{n:>6,}" for n in row) + f" {sum(row):>6,}")
        totals = [sum(counts[lb, s] for lb in names) for s in SPLITS]
        lines.append(f"  {'all ' + str(len(names)) + ' breeds':<{width}} {'':<12} "
                     + " ".join(f"{n:>6,}" for n in totals) + f" {sum(totals):>6,}")
        return lines

    def _sources(self) -> list[str]:
        kept = Counter(e.source for e in self.examples)
        lines = ["sources (photos read -> kept):"]
        for source in sorted(self.read.keys() | kept.keys(), key=_source_rank):
            lines.append(f"  {source:<12} {self.read[source]:>7,} -> {kept[source]:>7,}")
        return lines + [f"  {note}" for note in self.notes]

    def _drops(self) -> list[str]:
        lines = ["dropped files:"]
        lines += [f"  {reason:<16} {self.dropped[reason]:>7,}" for reason in DROP_REASONS]
        if self.too_few:
            lines.append("  breeds with too few photos: "
                         + ", ".join(f"{b} ({n})" for b, n in self.too_few))
        return lines

    def _imbalance(self) -> list[str]:
        sizes = Counter(e.label for e in self.examples)
        names = {e.label: e.name for e in self.examples}
        if not sizes:
            return ["class imbalance: no breeds"]
        order = sorted(sizes, key=lambda label: (sizes[label], label))
        small, big = order[0], order[-1]
        lines = [f"class imbalance: largest {names[big]} ({sizes[big]:,}), smallest "
                 f"{names[small]} ({sizes[small]:,}), ratio {sizes[big] / sizes[small]:.1f}"]
        under = [f"{names[b]} ({sizes[b]})" for b in order if sizes[b] < self.small_breed]
        lines.append(f"  breeds under {self.small_breed} photos: {', '.join(under) or 'none'}")
        return lines

    def _near_duplicates(self) -> list[str]:
        carved = ", ".join(f"{n:,} to {s}" for s, n in sorted(self.carved.items()))
        return [f"near-duplicate groups: {self.groups:,} ({self.grouped:,} photos within "
                f"{NEAR_DUPLICATE_BITS} bits), each kept in one split",
                f"  {MOVED}: {self.moved:,}",
                f"  carved from official train photos: {carved or 'none'}"]


def _source_rank(source: str) -> tuple[int, str]:
    return (SOURCE_ORDER.index(source) if source in SOURCE_ORDER else len(SOURCE_ORDER), source)


def _preference(example: Example) -> tuple[bool, tuple[int, str], str]:
    """Sort key: a copy with a split first, then by source, then by path."""
    return example.split not in SPLITS, _source_rank(example.source), str(example.path)


# --- reading the sources --------------------------------------------------------------------


def read_sources(sources: Sources, report: BuildReport) -> list[Example]:
    """Every photo of every source present; absent ones become a note in the report."""
    examples = (_read_stanford(sources.stanford, report) + _read_flickr(sources.flickr, report)
                + [e for folder in sources.folders for e in _read_folder(folder)]
                + _read_corrections(sources.corrections, report))
    for source, why in sources.skipped:
        _skip(report, source, why)
    report.read.update(e.source for e in examples)
    for source, count in sorted(report.read.items()):
        log.info("%s: %d photos", source, count)
    return examples


def _skip(report: BuildReport, source: str, why: str) -> list[Example]:
    log.info("%s: %s: skipped", source, why)
    report.notes.append(f"{source}: {why}: skipped")
    return []


def _read_stanford(root: Path | None, report: BuildReport) -> list[Example]:
    if root is None:
        return []
    if (root / "manifest.csv").is_file():
        return read_manifest(root / "manifest.csv")
    if (root / "Images").is_dir():
        return load_examples(root)
    return _skip(report, "stanford", f"no {root / 'manifest.csv'}")


def _read_flickr(root: Path | None, report: BuildReport) -> list[Example]:
    if root is None:
        return []
    manifests = sorted(root.glob("*/manifest.csv"))
    if not manifests:
        return _skip(report, "flickr", f"no {root}/<breed>/manifest.csv")
    return [e for manifest in manifests for e in read_manifest(manifest)]


def _read_folder(folder: Path) -> list[Example]:
    if not folder.exists():
        raise BuildError(f"--folder {folder}: no such file or folder")
    examples = load_examples(folder)
    log.info("%s: %d photos", folder, len(examples))
    return examples


def _read_corrections(manifest: Path | None, report: BuildReport) -> list[Example]:
    """The bot's corrected photos; a missing photo file is kept here and dropped later."""
    if manifest is None:
        return []
    if not manifest.is_file():
        return _skip(report, "correction", f"no {manifest}")
    return read_manifest(manifest)


# --- cleaning -------------------------------------------------------------------------------


def drop_missing(examples: list[Example], report: BuildReport) -> list[Example]:
    """Drop examples whose file is gone (counted as "unreadable")."""
    kept = []
    for example in examples:
        if example.path.is_file():
            kept.append(example)
        else:
            log.warning("%s: no such file: dropped", example.path)
    report.dropped["unreadable"] += len(examples) - len(kept)
    return kept


def merge_duplicates(examples: list[Example], report: BuildReport) -> list[Example]:
    """One example per sha256 (sorted by sha256); see the module docstring for the rules."""
    copies: dict[str, list[Example]] = defaultdict(list)
    for example in examples:
        copies[example.sha256].append(example)
    merged = []
    for sha256 in sorted(copies):
        group = sorted(copies[sha256], key=_preference)
        kept = _resolve_label(group)
        if kept is None:
            log.warning("%s: copies labelled %s: dropped", group[0].path,
                        sorted({e.label for e in group}))
            report.dropped["label_conflict"] += len(group)
            continue
        report.dropped["exact_duplicate"] += len(group) - 1
        merged.append(kept)
    return merged


def _resolve_label(copies: list[Example]) -> Example | None:
    """The preferred copy, labelled by the latest correction when the copies disagree."""
    best = copies[0]
    if len({e.label for e in copies}) == 1:
        return best
    correction = next((e for e in copies if e.source == "correction"), None)
    if correction is None:
        return None
    return replace(best, label=correction.label, name=correction.name)


def one_name_per_label(examples: list[Example]) -> list[Example]:
    """Give every photo of a label the name its preferred photo has (names differ by source)."""
    names: dict[str, str] = {}
    for example in sorted(examples, key=_preference):
        names.setdefault(example.label, example.name)
    return [replace(e, name=names[e.label]) if e.name != names[e.label] else e for e in examples]


def drop_small_breeds(examples: list[Example], hashes: np.ndarray, min_photos: int,
                      report: BuildReport) -> tuple[list[Example], np.ndarray]:
    """Drop breeds with fewer than ``min_photos`` photos (and their hashes)."""
    sizes = Counter(e.label for e in examples)
    small = {label for label, n in sizes.items() if n < min_photos}
    names = {e.label: e.name for e in examples}
    report.too_few = sorted((names[label], sizes[label]) for label in small)
    report.dropped["too_few_photos"] += sum(sizes[label] for label in small)
    keep = np.array([e.label not in small for e in examples], bool)
    return [e for e in examples if e.label not in small], hashes[keep]


# --- unreadable photos ----------------------------------------------------------------------


def drop_unreadable(examples: list[Example], hashes: list[int | None],
                    report: BuildReport) -> tuple[list[Example], np.ndarray]:
    """Drop photos without a hash; the others' hashes as a uint64 array."""
    keep = [i for i, h in enumerate(hashes) if h is not None]
    report.dropped["unreadable"] += len(examples) - len(keep)
    return [examples[i] for i in keep], np.array([hashes[i] for i in keep], np.uint64)


# --- near-duplicate groups ------------------------------------------------------------------


def near_duplicate_pairs(hashes: np.ndarray, bits: int = NEAR_DUPLICATE_BITS) -> np.ndarray:
    """Index pairs ``(i, j)`` of hashes within ``bits``: enough pairs to connect every group.

    Equal hashes are collapsed first (each photo is paired with the first of its hash), so a
    thousand blank photos cost one row of the all-pairs search, not a million pairs.
    """
    unique, first, inverse = np.unique(np.asarray(hashes, np.uint64), return_index=True,
                                       return_inverse=True)
    same = np.stack([first[inverse], np.arange(len(inverse))], axis=1)
    same = same[same[:, 0] != same[:, 1]]
    return np.concatenate([same, first[_close_unique(unique, bits)]]).astype(np.int64)


def _close_unique(unique: np.ndarray, bits: int) -> np.ndarray:
    """Pairs ``(i, j)``, ``i < j``, of distinct hashes within ``bits`` of each other."""
    n = len(unique)
    block = max(1, _PAIR_BLOCK // max(n, 1))
    found = [np.empty((0, 2), np.int64)]
    for start in range(0, n, block):
        rows = unique[start:start + block, None]
        close = np.bitwise_count(rows ^ unique[None, start:]) <= bits
        i, j = np.nonzero(close)
        i, j = i + start, j + start
        upper = j > i
        found.append(np.stack([i[upper], j[upper]], axis=1))
    return np.concatenate(found)


def group_ids(n: int, pairs: np.ndarray) -> np.ndarray:
    """Union-find over ``pairs``: for each of ``n`` items, the smallest index of its group."""
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in pairs.tolist():
        a, b = root(i), root(j)
        if a != b:
            parent[max(a, b)] = min(a, b)
    return np.array([root(i) for i in range(n)], np.int64)


def near_duplicate_groups(hashes: np.ndarray, bits: int = NEAR_DUPLICATE_BITS) -> np.ndarray:
    """For each hash, the smallest index of its group of (transitive) near-duplicates."""
    return group_ids(len(hashes), near_duplicate_pairs(hashes, bits))


# --- splitting ------------------------------------------------------------------------------


def split_targets(n: int, val: float, test: float) -> dict[str, int]:
    """Photos each split should get of a breed of ``n``: the fraction rounded half up, at least
    one where the fraction is above zero, as long as train keeps one (test gives way first)."""
    want = {s: max(1, int(f * n + 0.5)) if f > 0 else 0 for s, f in (("val", val),
                                                                   ("test", test))}
    for split in ("test", "val"):
        excess = want["val"] + want["test"] - max(n - 1, 0)
        want[split] -= min(max(excess, 0), want[split])
    return {"train": n - want["val"] - want["test"], **want}


def assign_splits(examples: list[Example], groups: np.ndarray, config: BuildConfig,
                  report: BuildReport) -> list[Example]:
    """Give every group of near-duplicates one split: official splits first, then per breed
    towards the fractions (see the module docstring)."""
    members: dict[int, list[int]] = defaultdict(list)
    for index, group in enumerate(groups.tolist()):
        members[group].append(index)
    for group in members.values():
        group.sort(key=lambda i: _preference(examples[i]))
    split_of = _official_splits(examples, members, report)
    by_breed: dict[str, list[int]] = defaultdict(list)
    for group, indices in members.items():
        by_breed[_majority([examples[i].label for i in indices])].append(group)
    for label in sorted(by_breed):
        rng = random.Random(f"{config.seed}:{label}")
        _split_breed(sorted(by_breed[label]), members, split_of, config, rng, report)
    return [replace(examples[i], split=split_of[group])
            for group, indices in members.items() for i in indices]


def _majority(values: Iterable[str]) -> str:
    """The most common value; on a tie, the one seen first."""
    return Counter(values).most_common(1)[0][0]


def _official_splits(examples: list[Example], members: dict[int, list[int]],
                     report: BuildReport) -> dict[int, str]:
    """Groups with official splits take their majority one; photos moved are counted."""
    split_of = {}
    for group, indices in members.items():
        official = [examples[i].split for i in indices if examples[i].split in SPLITS]
        if official:
            split_of[group] = _majority(official)
            report.moved += sum(s != split_of[group] for s in official)
    return split_of


def _split_breed(groups: list[int], members: dict[int, list[int]], split_of: dict[int, str],
                 config: BuildConfig, rng: random.Random, report: BuildReport) -> None:
    """Deal a breed's free groups to the split furthest below its target, then carve val and
    test photos still missing out of official train groups."""
    size = {g: len(members[g]) for g in groups}
    targets = split_targets(sum(size.values()), config.val, config.test)
    counts = Counter({s: 0 for s in SPLITS})
    for group in groups:
        if group in split_of:
            counts[split_of[group]] += size[group]
    free = [g for g in groups if g not in split_of]
    rng.shuffle(free)
    for group in free:
        split = max(("val", "test", "train"), key=lambda s: targets[s] - counts[s])
        split_of[group] = split
        counts[split] += size[group]
    official_train = [g for g in groups if g not in free and split_of[g] == "train"]
    rng.shuffle(official_train)
    for split in ("val", "test"):
        while counts[split] < targets[split] and official_train:
            group = official_train.pop()
            split_of[group] = split
            counts[split] += size[group]
            counts["train"] -= size[group]
            report.carved[split] += size[group]


# --- the whole build ------------------------------------------------------------------------


def build_dataset(sources: Sources, config: BuildConfig) -> BuildReport:
    """Read, clean, group, split and write the manifest and its report; see the module doc."""
    report = BuildReport(config.out, config.small_breed)
    examples = read_sources(sources, report)
    if not examples:
        raise BuildError("no photos: no source has any (" + "; ".join(report.notes) + ")")
    examples = merge_duplicates(drop_missing(examples, report), report)
    seeds = [sources.flickr / HASH_CACHE] if sources.flickr is not None else []
    with HashCache(config.out.parent / HASH_CACHE, seeds) as cache:
        hashes = cache.hash_examples(examples)
    examples, hash_array = drop_unreadable(examples, hashes, report)
    examples, hash_array = drop_small_breeds(one_name_per_label(examples), hash_array,
                                             config.min_photos, report)
    if not examples:
        raise BuildError(f"no photos left: dropped {dict(report.dropped)}")
    groups = near_duplicate_groups(hash_array)
    sizes = Counter(groups.tolist())
    report.groups = sum(n > 1 for n in sizes.values())
    report.grouped = sum(n for n in sizes.values() if n > 1)
    examples = assign_splits(examples, groups, config, report)
    report.examples = sorted(examples, key=lambda e: (e.label, SPLITS.index(e.split),
                                                      str(e.path)))
    _write(report)
    return report


def _write(report: BuildReport) -> None:
    """The manifest and ``<out>.report.txt``, each written aside and then renamed."""
    partial = report.out.with_name(report.out.name + ".part")
    write_manifest(report.examples, partial)
    os.replace(partial, report.out)
    text_path = report.out.with_name(report.out.name + ".report.txt")
    text_path.with_name(text_path.name + ".part").write_text(report.render())
    os.replace(text_path.with_name(text_path.name + ".part"), text_path)
    log.info("wrote %d photos to %s", len(report.examples), report.out)
