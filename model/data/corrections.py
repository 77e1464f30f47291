"""Which corrections count: rules against noise and abuse, applied to the bot's vote export.

Every correction is a vote: one person says a photo shows a breed ("👍 Right" is a vote for the
answer's top breed), or that one dog of several in it does (``Vote.box``: the dog's box). What
is voted on, an item, is the whole photo or one dog's box in it, each decided on its own: votes
on dog ② never outvote those on dog ① or on the photo. Each person's latest vote on an item is
theirs; an item's label is decided

- by the host of the event it was sent in, whose latest vote wins (hosts know their dogs), or
- when at least ``Rules.min_agree`` people voted on it and one label has a strict majority.

Nobody but a host decides more than ``Rules.max_per_voter`` items: later votes beyond that are
"capped", so one busy account cannot outweigh an event. A breed name the model does not know
becomes a class once ``Rules.new_breed_voters`` people used it and it has
``Rules.new_breed_photos`` decided items; until then it is a candidate, with a suggested
``collect_flickr.py`` command to find more photos. A decided dog becomes an example with its
box, which training crops as the bot does.

The bot writes the votes (``python -m bot.export_votes``): one CSV row a correction. Exports
from before the bot stored dogs have no box columns: every vote there is on a whole photo.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from model.answers import Box
from model.data.csv_log import read_rows
from model.data.dataset import Example, item_key

BOX_FIELDS = ("box_left", "box_top", "box_right", "box_bottom")  # empty for a whole photo
VOTE_FIELDS = ("correction_id", "at", "sha256", "path", "voter", "host", "kind", "label", "name",
               "event_id", *BOX_FIELDS)


@dataclass(frozen=True)
class Vote:
    correction_id: int
    at: str  # ISO 8601 UTC
    sha256: str  # the photo
    path: str  # the kept photo's file, "" when none is kept
    voter: str  # a keyed hash of the person
    host: bool  # the voter hosts the event the photo was sent in
    kind: str  # "confirmed", "corrected" or "new_breed"
    label: str
    name: str
    event_id: str
    box: Box | None = None  # the dog voted on, fractions of the photo; None: the whole photo

    @property
    def item(self) -> str:
        """What the vote is about: the photo, or one dog in it (``Example.key``)."""
        return item_key(self.sha256, self.box)


def read_votes(path: Path) -> list[Vote]:
    """The bot's vote export; paths relative to the CSV's folder become absolute."""
    return [Vote(int(r["correction_id"]), r["at"], r["sha256"],
                 str(path.parent / r["path"]) if r["path"] else "", r["voter"], r["host"] == "1",
                 r["kind"], r["label"], r["name"], r["event_id"], _box(r))
            for r in read_rows(path, VOTE_FIELDS[:-len(BOX_FIELDS)], "vote export")]


def _box(row: dict[str, str]) -> Box | None:
    """The dog's box of an export row; None for a whole photo, or an export from before."""
    if not row.get(BOX_FIELDS[0]):
        return None
    return Box(*(float(row[name]) for name in BOX_FIELDS))


@dataclass(frozen=True)
class Rules:
    min_agree: int = 2  # people who must vote on an item without its host
    max_per_voter: int = 100  # items (photos, dogs) one person (not a host) may help decide
    new_breed_voters: int = 2  # people who must use a new breed's name
    new_breed_photos: int = 10  # decided items a new breed needs to become a class


@dataclass(frozen=True)
class Outcome:
    vote: Vote
    counted: bool  # the vote helped decide an item that is training data now
    why: str


@dataclass(frozen=True)
class Candidate:
    label: str
    name: str
    voters: int
    photos: int  # decided items: whole photos and dogs of several

    def suggestion(self) -> str:
        return (f'python scripts/collect_flickr.py --breed {self.label} --query "{self.name}" '
                f'--name "{self.name}" --max 300')


@dataclass
class Decisions:
    examples: list[Example] = field(default_factory=list)  # decided items with a kept file
    outcomes: list[Outcome] = field(default_factory=list)  # one per vote, in export order
    new_breeds: list[Candidate] = field(default_factory=list)  # became classes
    candidates: list[Candidate] = field(default_factory=list)  # not yet

    def counts(self) -> Counter:
        """How many votes ended which way: "counted", and each reason they did not."""
        return Counter("counted" if o.counted else o.why.split(":")[0] for o in self.outcomes)


def decide(votes: list[Vote], known: set[str], rules: Rules = Rules()) -> Decisions:
    """Decide each item's label from ``votes``; ``known`` are the labels the model has."""
    latest = {(v.item, v.voter): v for v in sorted(votes, key=lambda v: (v.at, v.correction_id))}
    capped = _over_the_cap(list(latest.values()), rules.max_per_voter)
    by_item: dict[str, list[Vote]] = defaultdict(list)
    for vote in latest.values():
        if vote not in capped:
            by_item[vote.item].append(vote)
    labels = {item: _label(item_votes, rules) for item, item_votes in by_item.items()}
    new_breeds, candidates = _new_breeds(latest.values(), labels, known, rules)
    classes = {c.label for c in new_breeds} | known
    why = {}
    for vote in votes:
        if latest[(vote.item, vote.voter)] is not vote:
            why[vote] = "superseded: the same person voted again later"
        elif vote in capped:
            why[vote] = f"capped: this person already helped decide {rules.max_per_voter} items"
        else:
            why[vote] = _verdict(vote, labels[vote.item], classes, rules)
    decisions = Decisions(new_breeds=new_breeds, candidates=candidates)
    for _, decided in sorted(labels.items()):
        vote = decided[0] if decided else None
        if vote and vote.label in classes and vote.path and Path(vote.path).is_file():
            decisions.examples.append(Example(Path(vote.path), vote.sha256, vote.label,
                                              vote.name, "correction", "", "", vote.box))
        elif vote and vote.label in classes:
            for v in decided:  # the votes that would have counted
                why[v] = "no photo: the bot did not keep this photo"
    decisions.outcomes = [Outcome(v, why[v].startswith("counted"), why[v]) for v in votes]
    return decisions


def _over_the_cap(votes: list[Vote], cap: int) -> set[Vote]:
    """Each non-host's votes beyond their first ``cap`` items (by time)."""
    seen: Counter = Counter()
    over = set()
    for vote in sorted(votes, key=lambda v: (v.at, v.correction_id)):
        if not vote.host:
            seen[vote.voter] += 1
            if seen[vote.voter] > cap:
                over.add(vote)
    return over


def _label(votes: list[Vote], rules: Rules) -> list[Vote]:
    """The votes that decide the item (empty: undecided): the host's, or a strict majority
    of at least ``min_agree`` people."""
    if hosts := [v for v in votes if v.host]:
        return [max(hosts, key=lambda v: (v.at, v.correction_id))]
    tally = Counter(v.label for v in votes)
    label, count = tally.most_common(1)[0]
    if len(votes) >= rules.min_agree and count * 2 > len(votes):
        return [v for v in votes if v.label == label]
    return []


def _verdict(vote: Vote, decided: list[Vote], classes: set[str], rules: Rules) -> str:
    if not decided:
        return (f"unconfirmed: fewer than {rules.min_agree} people agree, and the host "
                "did not say")
    winner = decided[0]
    if winner.label != vote.label:
        return (f"overruled: the host says {winner.name}" if winner.host
                else f"outvoted: most people say {winner.name}")
    if winner.label not in classes:
        return f"candidate: {winner.name} is not a class yet"
    return "counted: the host says so" if winner.host else f"counted: {len(decided)} people agree"


def _new_breeds(votes, labels: dict[str, list[Vote]], known: set[str], rules: Rules
                ) -> tuple[list[Candidate], list[Candidate]]:
    """New breed names, split into those that become classes and the candidates."""
    voters, names = defaultdict(set), {}
    for vote in votes:
        if vote.label not in known:
            voters[vote.label].add(vote.voter)
            names[vote.label] = vote.name
    photos = Counter(d[0].label for d in labels.values()
                     if d and d[0].path and Path(d[0].path).is_file())
    found = [Candidate(label, names[label], len(voters[label]), photos[label])
             for label in sorted(voters)]
    ready = [c for c in found if c.voters >= rules.new_breed_voters
             and c.photos >= rules.new_breed_photos]
    return ready, [c for c in found if c not in ready]
