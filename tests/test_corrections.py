"""model.data.corrections: which votes decide a photo's label, and which are noise or abuse."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import pytest

from model.answers import Box
from model.data.corrections import BOX_FIELDS, VOTE_FIELDS, Rules, Vote, decide, read_votes
from model.data.dataset import write_manifest

KNOWN = {"n02088364", "n02089973", "n02111889"}  # beagle, English foxhound, Samoyed
LEFT, RIGHT = Box(0.0, 0.1, 0.45, 0.9), Box(0.5, 0.2, 1.0, 1.0)  # dogs ① and ② of a photo


class Votes:
    """Builds votes on photo files in ``folder``, one second apart."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.votes = folder, []

    def add(self, photo: str, voter: str, label: str, name: str = "", *, host: bool = False,
            kind: str = "corrected", kept: bool = True, box: Box | None = None) -> Vote:
        path = self.folder / f"{photo}.jpg"
        if kept:
            path.write_bytes(b"jpeg")
        vote = Vote(len(self.votes) + 1, f"2026-11-30T10:{len(self.votes) // 60:02d}:"
                    f"{len(self.votes) % 60:02d}+00:00", photo, str(path) if kept else "", voter,
                    host, kind, label, name or label, "1", box)
        self.votes.append(vote)
        return vote


@pytest.fixture
def votes(tmp_path: Path) -> Votes:
    return Votes(tmp_path)


def outcome(decisions, vote: Vote) -> str:
    return next(o.why for o in decisions.outcomes if o.vote is vote)


def test_two_people_agreeing_decide_one_alone_does_not(votes: Votes) -> None:
    a = votes.add("p1", "ann", "n02089973")
    b = votes.add("p1", "bob", "n02089973")
    lone = votes.add("p2", "ann", "n02088364")
    decisions = decide(votes.votes, KNOWN)
    assert [(e.sha256, e.label, e.source) for e in decisions.examples] == [
        ("p1", "n02089973", "correction")]
    assert outcome(decisions, a) == outcome(decisions, b) == "counted: 2 people agree"
    assert outcome(decisions, lone).startswith("unconfirmed")


def test_the_host_decides_against_everyone(votes: Votes) -> None:
    guests = [votes.add("p1", name, "n02088364") for name in ("ann", "bob", "cy")]
    host = votes.add("p1", "host", "n02089973", host=True)
    decisions = decide(votes.votes, KNOWN)
    assert [e.label for e in decisions.examples] == ["n02089973"]
    assert outcome(decisions, host) == "counted: the host says so"
    assert all(outcome(decisions, g) == "overruled: the host says n02089973" for g in guests)


def test_a_user_who_mislabels_everything_is_outvoted_or_unconfirmed(votes: Votes) -> None:
    abuse = [votes.add(f"p{i}", "troll", "n02111889") for i in range(6)]
    for i in range(3):  # honest people correct half of those photos
        votes.add(f"p{i}", "ann", "n02088364")
        votes.add(f"p{i}", "bob", "n02088364")
    decisions = decide(votes.votes, KNOWN)
    assert {e.label for e in decisions.examples} == {"n02088364"}
    assert [outcome(decisions, v).split(":")[0] for v in abuse] == ["outvoted"] * 3 + [
        "unconfirmed"] * 3
    assert decisions.counts() == {"counted": 6, "outvoted": 3, "unconfirmed": 3}


def test_one_person_decides_at_most_the_cap(votes: Votes) -> None:
    for i in range(4):
        votes.add(f"p{i}", "busy", "n02088364")
        votes.add(f"p{i}", f"friend{i}", "n02088364")
    decisions = decide(votes.votes, KNOWN, Rules(max_per_voter=3))
    busy = [o for o in decisions.outcomes if o.vote.voter == "busy"]
    assert [o.why.split(":")[0] for o in busy] == ["counted"] * 3 + ["capped"]
    assert len(decisions.examples) == 3  # the 4th photo has one counted voter left


def test_a_later_vote_of_the_same_person_replaces_the_earlier(votes: Votes) -> None:
    first = votes.add("p1", "ann", "n02111889")
    votes.add("p1", "ann", "n02088364")
    votes.add("p1", "bob", "n02088364")
    decisions = decide(votes.votes, KNOWN)
    assert [e.label for e in decisions.examples] == ["n02088364"]
    assert outcome(decisions, first).startswith("superseded")


def test_a_confirmation_agrees_with_a_correction(votes: Votes) -> None:
    votes.add("p1", "ann", "n02088364", kind="confirmed")
    votes.add("p1", "bob", "n02088364")
    assert [e.label for e in decide(votes.votes, KNOWN).examples] == ["n02088364"]


def test_a_new_breed_becomes_a_class_only_with_enough_people_and_photos(votes: Votes) -> None:
    for i in range(3):
        votes.add(f"j{i}", "ann", "korean-jindo", "Korean Jindo", kind="new_breed")
        votes.add(f"j{i}", "bob", "korean-jindo", "Korean Jindo", kind="new_breed")
    short = decide(votes.votes, KNOWN, Rules(new_breed_photos=4))
    assert short.examples == [] and short.new_breeds == []
    [candidate] = short.candidates
    assert (candidate.label, candidate.voters, candidate.photos) == ("korean-jindo", 2, 3)
    assert candidate.suggestion() == ('python scripts/collect_flickr.py --breed korean-jindo '
                                      '--query "Korean Jindo" --name "Korean Jindo" --max 300')
    assert short.counts() == {"candidate": 6}

    ready = decide(votes.votes, KNOWN, Rules(new_breed_photos=3))
    assert [c.label for c in ready.new_breeds] == ["korean-jindo"] and not ready.candidates
    assert {e.label for e in ready.examples} == {"korean-jindo"}


def test_a_photo_the_bot_did_not_keep_is_not_training_data(votes: Votes) -> None:
    gone = [votes.add("p1", who, "n02088364", kept=False) for who in ("ann", "bob")]
    decisions = decide(votes.votes, KNOWN)
    assert decisions.examples == []
    assert all(outcome(decisions, v).startswith("no photo") for v in gone)


def test_each_dog_of_a_photo_is_decided_apart_from_the_others_and_the_photo(
        votes: Votes) -> None:
    # Dog ②: two people agree. Dog ①: its host. The whole photo: one person alone. Were they
    # one photo, the three labels would outvote each other and nothing would be decided.
    right = [votes.add("p1", who, "n02088364", box=RIGHT) for who in ("ann", "bob")]
    left = votes.add("p1", "host", "n02089973", host=True, box=LEFT)
    whole = votes.add("p1", "cy", "n02111889")
    decisions = decide(votes.votes, KNOWN)
    assert {(e.sha256, e.box, e.label) for e in decisions.examples} == {
        ("p1", RIGHT, "n02088364"), ("p1", LEFT, "n02089973")}
    assert [outcome(decisions, v) for v in right] == ["counted: 2 people agree"] * 2
    assert outcome(decisions, left) == "counted: the host says so"
    assert outcome(decisions, whole).startswith("unconfirmed")
    # The same people on the whole photo are a second item: no vote there replaces theirs on
    # the dogs, and a troll on dog ② is outvoted there only.
    troll = votes.add("p1", "troll", "n02111889", box=RIGHT)
    votes.add("p1", "ann", "n02111889")
    again = decide(votes.votes, KNOWN)
    assert outcome(again, troll).startswith("outvoted: most people say n02088364")
    assert [outcome(again, v) for v in right] == ["counted: 2 people agree"] * 2
    assert {(e.box, e.label) for e in again.examples} == {
        (RIGHT, "n02088364"), (LEFT, "n02089973"), (None, "n02111889")}
    assert len({e.key for e in again.examples}) == 3
    with pytest.raises(ValueError, match="a manifest lists whole photos"):  # not the dogs'
        write_manifest(again.examples, votes.folder / "manifest.csv")


def test_read_votes_resolves_paths_beside_the_export(tmp_path: Path) -> None:
    (tmp_path / "photos").mkdir()
    export = tmp_path / "votes.csv"
    with open(export, "w", newline="") as f:
        writer = csv.DictWriter(f, VOTE_FIELDS)
        writer.writeheader()
        writer.writerow({"correction_id": 7, "at": "2026-11-30T10:00:00+00:00", "sha256": "ab",
                         "path": "photos/ab.jpg", "voter": "v", "host": "1", "kind": "corrected",
                         "label": "n02088364", "name": "beagle", "event_id": ""})
        writer.writerow({"correction_id": 8, "at": "2026-11-30T10:00:01+00:00", "sha256": "cd",
                         "path": "", "voter": "w", "host": "0", "kind": "confirmed",
                         "label": "n02088364", "name": "beagle", "event_id": "3",
                         **dict(zip(BOX_FIELDS, ("0.5", "0.2", "1.0", "1.0"), strict=True))})
    first, second = read_votes(export)
    assert first.path == str(tmp_path / "photos" / "ab.jpg") and first.host
    assert second.path == "" and not second.host and second.correction_id == 8
    assert first.box is None and second.box == RIGHT
    old = tmp_path / "old.csv"  # an export from before the bot stored dogs: whole photos
    old.write_text("\n".join(",".join(row[:-len(BOX_FIELDS)]) for row in csv.reader(
        export.read_text().splitlines())) + "\n")
    assert read_votes(old) == [first, replace(second, box=None)]
    (tmp_path / "other.csv").write_text("path,label\nx.jpg,beagle\n")
    with pytest.raises(ValueError, match="not a vote export"):
        read_votes(tmp_path / "other.csv")


def test_a_vote_outvoted_on_a_photo_not_kept_says_so(votes: Votes) -> None:
    troll = votes.add("p1", "troll", "n02111889", kept=False)
    agreeing = [votes.add("p1", who, "n02088364", kept=False) for who in ("ann", "bob")]
    decisions = decide(votes.votes, KNOWN)
    assert outcome(decisions, troll).startswith("outvoted")
    assert all(outcome(decisions, v).startswith("no photo") for v in agreeing)
