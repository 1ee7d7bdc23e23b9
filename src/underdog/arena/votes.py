"""The arena's data: answers on show, voters, ballots (a pair shown to one voter) and votes.

    add_items(store, "run-3", [("q1", "What is...?", "An answer")])
    sessions = Sessions(secret)
    voter = sessions.new()                          # Voter(id, csrf, role): a signed cookie, no row yet
    dealer = Dealer(store)
    ballot = dealer.next_ballot(voter.id)           # a least-dealt unvoted (question, pair), random side order
    vote = dealer.cast(voter, ballot.id, "A")       # the voter's row (first vote) and the vote, in one commit
    codes = create_invites(store, 20)               # one code, one voter: /invite/<code>

Storage is bounded by votes, not visits (issue 13): a visitor who never votes leaves no row. Their identity is
a signed cookie (id, role, HMAC) and their open ballot lives in the dealer's memory until it is voted on or
expires (`ttl_s`; at most `max_open` at once, oldest dropped first). The least-dealt-first order counts cast
votes plus live ballots only. A vote stores the pair in canonical order (`cand_1 < cand_2`) and the database
refuses a second vote of one voter on the same (question, pair) with its UNIQUE constraint.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import random
import secrets
import sqlite3
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from underdog.arena import store as tables
from underdog.errors import UnderdogError
from underdog.store import Store

CHOICES = {"A": "A is better", "B": "B is better", "tie": "Tie", "bad": "Both are bad"}
ROLES = ("audience", "judge")


class VoteRefused(UnderdogError):
    """A vote the arena does not accept (already voted on this pair, unknown ballot, bad choice)."""


@dataclass(frozen=True)
class Voter:
    id: str
    csrf: str
    role: str


@dataclass(frozen=True)
class Ballot:
    """One (question, pair) put in front of one voter; `shown_a` / `shown_b` are the candidates as A and B."""

    id: str
    voter_id: str
    question_id: str
    shown_a: str
    shown_b: str


# -- items ------------------------------------------------------------------------------------------------
def add_items(store: Store, candidate: str, items: Iterable[tuple[str, str, str]], source: str = "",
              question_set: str | None = None) -> int:
    """Put a candidate's answers (question id, question, answer) on show; replaces earlier ones. Returns count.
    `question_set` names where the questions come from (`evalset:NAME`, `dataset:NAME`, `file:NAME`): every
    vote on them records it."""
    rows = [{"question_id": qid, "candidate": candidate, "question": question, "answer": answer, "source": source,
             "question_set": question_set} for qid, question, answer in items]
    tables.put_items(store, rows)
    return len(rows)


def candidates(store: Store) -> list[str]:
    return tables.item_candidates(store)


# -- voters: signed cookies, a row only once they vote or redeem an invite ----------------------------------------
class Sessions:
    """Voter identities carried in a cookie signed with the server's secret: `<id>.<role>.<mac>`."""

    def __init__(self, secret: str):
        self.key = hashlib.sha256(b"underdog-arena-sessions:" + secret.encode()).digest()

    def _mac(self, text: str) -> str:
        return hmac.new(self.key, text.encode(), hashlib.sha256).hexdigest()[:32]

    def voter(self, voter_id: str, role: str = "audience") -> Voter:
        if role not in ROLES:
            raise ValueError(f"unknown voter role {role!r}")
        return Voter(voter_id, self._mac("csrf:" + voter_id), role)

    def new(self, role: str = "audience") -> Voter:
        """A fresh voter with an unguessable id; nothing is stored."""
        return self.voter(secrets.token_urlsafe(24), role)

    def cookie(self, voter: Voter) -> str:
        return f"{voter.id}.{voter.role}.{self._mac(voter.id + '.' + voter.role)}"

    def from_cookie(self, value: str | None) -> Voter | None:
        """The voter of a cookie this server signed; None for a missing, old-style or forged one."""
        voter_id, role, mac = (value or "").rsplit(".", 2) if (value or "").count(".") >= 2 else ("", "", "")
        if role not in ROLES or not hmac.compare_digest(mac, self._mac(voter_id + "." + role)):
            return None
        return self.voter(voter_id, role)


def save_voter(db: sqlite3.Connection, voter: Voter) -> None:
    """The voter's row (created on their first vote or invite; the role follows a later judge link)."""
    tables.save_voter(db, voter.id, voter.csrf, voter.role)


# -- invite codes: one code, one voter ----------------------------------------------------------------------------
def create_invites(store: Store, count: int, role: str = "audience") -> list[str]:
    """`count` new single-voter invite codes; whoever opens /invite/<code> first becomes that code's voter."""
    if role not in ROLES:
        raise ValueError(f"unknown voter role {role!r}")
    codes = [secrets.token_urlsafe(9) for _ in range(count)]
    tables.put_invites(store, codes, role)
    return codes


def redeem_invite(store: Store, sessions: Sessions, code: str) -> Voter | None:
    """The code's voter: a new one on first use, the same one again after (cleared cookies or another
    browser): a second identity needs a second code. None for an unknown code."""
    with store.transaction() as db:
        if (found := tables.invite(db, code)) is None:
            return None
        if found["voter_id"]:
            return sessions.voter(found["voter_id"], found["role"])
        voter = sessions.new(found["role"])
        tables.bind_invite(db, code, voter.id)
        save_voter(db, voter)
    return voter


# -- ballots and votes ----------------------------------------------------------------------------------------
Pair = tables.Pair


class Dealer:
    """Deals ballots and records votes for one running arena. Open ballots live in memory only: a ballot is
    dropped when voted on, after `ttl_s`, or (oldest first) beyond `max_open`, so visitors who never vote leave
    nothing behind, and the least-dealt-first order counts cast votes plus live ballots."""

    def __init__(self, store: Store, ttl_s: float = 3600.0, max_open: int = 100_000,
                 rng: random.Random | None = None):
        self.store, self.ttl_s, self.max_open = store, ttl_s, max_open
        self.rng = rng or random.SystemRandom()
        self._lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._open: OrderedDict[str, tuple[Ballot, float]] = OrderedDict()  # ballot id -> (ballot, expiry)
        self._by_voter: dict[str, str] = {}  # voter id -> their open ballot id
        self._live: Counter[Pair] = Counter()
        self._votes: Counter[Pair] = Counter(tables.vote_counts(store))
        self._voted: dict[str, set[Pair]] = {}  # voter id -> pairs voted on, for voters who voted
        self._items: dict[tuple[str, str], tuple[str, str]] = {}
        self._question_sets: dict[str, str | None] = {}  # question id -> its question set
        self._pairs: list[Pair] = []
        self._items_version: tuple = ()
        self._items_checked = -1.0

    def item(self, question_id: str, candidate: str) -> tuple[str, str]:
        """(question, answer) of a candidate on a question."""
        self._refresh_items()
        if (question_id, candidate) not in self._items:
            raise VoteRefused(f"no answer of {candidate} to question {question_id}")
        return self._items[question_id, candidate]

    def pair_count(self) -> int:
        self._refresh_items()
        return len(self._pairs)

    def next_ballot(self, voter_id: str) -> Ballot | None:
        """The voter's open ballot, else a new one: among the pairs they have not voted on, one of those dealt
        least so far (votes + live ballots), sides in random order. None when they have voted on every pair."""
        self._refresh_items()
        voted = self.voted(voter_id)
        with self._lock:
            self._expire()
            if (open_id := self._by_voter.get(voter_id)) in self._open:
                return self._open[open_id][0]
            todo = [p for p in self._pairs if p not in voted]
            if not todo:
                return None
            least = min(self._votes[p] + self._live[p] for p in todo)
            question_id, *sides = self.rng.choice([p for p in todo if self._votes[p] + self._live[p] == least])
            self.rng.shuffle(sides)
            ballot = Ballot(secrets.token_urlsafe(16), voter_id, question_id, *sides)
            self._open[ballot.id] = (ballot, time.monotonic() + self.ttl_s)
            self._by_voter[voter_id] = ballot.id
            self._live[_pair(ballot)] += 1
            while len(self._open) > self.max_open:
                self._close(next(iter(self._open)))
        return ballot

    def voted(self, voter_id: str) -> set[Pair]:
        """The pairs this voter has voted on (read once per voter, then kept up to date in memory)."""
        if (known := self._voted.get(voter_id)) is not None:
            return known
        pairs = tables.voted_pairs(self.store, voter_id)
        if pairs:  # a visitor who never voted is not remembered
            with self._lock:
                self._voted[voter_id] = pairs
        return pairs

    def dealt(self) -> dict[Pair, int]:
        """How often each pair counts as dealt: its cast votes plus its live (open, unexpired) ballots."""
        self._refresh_items()
        with self._lock:
            self._expire()
            return {p: self._votes[p] + self._live[p] for p in self._pairs}

    def ballot(self, ballot_id: str) -> Ballot | None:
        with self._lock:
            self._expire()
            return self._open[ballot_id][0] if ballot_id in self._open else None

    def cast(self, voter: Voter, ballot_id: str, choice: str) -> int:
        """Record the voter's choice on their open ballot; returns the vote id. Raises VoteRefused for a bad
        choice, a ballot that is not theirs or no longer open, or a second vote on the same (question, pair)."""
        if choice not in CHOICES:
            raise VoteRefused(f"unknown choice {choice!r} (one of {', '.join(CHOICES)})")
        ballot = self.ballot(ballot_id)
        if ballot is None and (done := vote_for_ballot(self.store, ballot_id)) and done["voter_id"] == voter.id:
            raise VoteRefused("you have already voted on this pair")
        if ballot is None or ballot.voter_id != voter.id:
            raise VoteRefused("unknown or expired ballot: please vote again from the page")
        try:
            vote_id = record_vote(self.store, voter, ballot, choice, new_voter=voter.id not in self._voted,
                                  texts=self._texts(ballot))
        finally:
            with self._lock:
                self._close(ballot_id)
        with self._lock:
            self._votes[_pair(ballot)] += 1
            self._voted.setdefault(voter.id, set()).add(_pair(ballot))
        return vote_id

    def _texts(self, ballot: Ballot) -> dict[str, str | None]:
        """The question, both answers (canonical order) and question set a vote on `ballot` is cast on."""
        (question, answer_1), (_, answer_2) = (self.item(ballot.question_id, c) for c in sorted(
            (ballot.shown_a, ballot.shown_b)))
        return {"question": question, "answer_1": answer_1, "answer_2": answer_2,
                "question_set": self._question_sets.get(ballot.question_id)}

    def _close(self, ballot_id: str) -> None:
        if (entry := self._open.pop(ballot_id, None)) is not None:
            self._live[_pair(entry[0])] -= 1
            if self._by_voter.get(entry[0].voter_id) == ballot_id:
                del self._by_voter[entry[0].voter_id]

    def _expire(self) -> None:
        now = time.monotonic()
        while self._open and (first := next(iter(self._open.values())))[1] < now:
            self._close(first[0].id)

    def _refresh_items(self) -> None:
        """Items and pairs, re-read when `arena add` changed them (checked with one cheap query a second)."""
        if time.monotonic() - self._items_checked < 1.0:
            return
        with self._refresh_lock:  # others wait for the first load instead of dealing from no pairs at all
            if time.monotonic() - self._items_checked < 1.0:
                return
            version = tables.items_version(self.store)
            if version != self._items_version:
                rows = tables.items(self.store)
                items = {(r["question_id"], r["candidate"]): (r["question"], r["answer"]) for r in rows}
                question_sets = {r["question_id"]: r["question_set"] for r in rows}
                by_question: dict[str, list[str]] = {}
                for question_id, candidate in sorted(items):
                    by_question.setdefault(question_id, []).append(candidate)
                pairs = [(q, a, b) for q, cands in by_question.items() for i, a in enumerate(cands)
                         for b in cands[i + 1:]]
                with self._lock:
                    self._items, self._pairs, self._items_version = items, pairs, version
                    self._question_sets = question_sets
            self._items_checked = time.monotonic()  # after the load: "checked" means loaded


def _pair(ballot: Ballot) -> Pair:
    return (ballot.question_id, *sorted((ballot.shown_a, ballot.shown_b)))  # type: ignore[return-value]


def record_vote(store: Store, voter: Voter, ballot: Ballot, choice: str, new_voter: bool = True,
                texts: dict[str, str | None] | None = None) -> int:
    """Store the voter (unless known to be stored) and their vote on the ballot's pair in one commit; returns the
    vote id. `texts`: the question, answer_1, answer_2 (of cand_1, cand_2) and question_set voted on. Raises
    VoteRefused for a bad choice or a second vote of this voter on the same (question, pair)."""
    if choice not in CHOICES:
        raise VoteRefused(f"unknown choice {choice!r} (one of {', '.join(CHOICES)})")
    cand_1, cand_2 = sorted((ballot.shown_a, ballot.shown_b))
    winner = {"A": ballot.shown_a, "B": ballot.shown_b}.get(choice)
    with store.transaction() as db:
        if new_voter:
            save_voter(db, voter)
        try:
            return tables.put_vote(db, {"voter_id": voter.id, "role": voter.role, "question_id": ballot.question_id,
                                        "cand_1": cand_1, "cand_2": cand_2, "shown_a": ballot.shown_a,
                                        "shown_b": ballot.shown_b, "choice": choice, "winner": winner,
                                        "ballot_id": ballot.id, **(texts or {})})
        except sqlite3.IntegrityError:
            raise VoteRefused("you have already voted on this pair") from None


def vote_for_ballot(store: Store, ballot_id: str) -> sqlite3.Row | None:
    return tables.vote_of_ballot(store, ballot_id)


def all_votes(store: Store) -> list[sqlite3.Row]:
    return tables.all_votes(store)


EXPORT_COLUMNS = ("id", "time", "voter_id", "role", "question_id", "cand_1", "cand_2", "shown_a", "shown_b",
                  "choice", "winner", "question_set", "question", "answer_a", "answer_b", "source", "simulated")


def export_votes(store: Store, path: Path) -> int:
    """Write every vote to a CSV file (one row per vote); returns the number of votes."""
    votes = all_votes(store)
    with open(path, "w", newline="") as fh:
        write_votes_csv(votes, fh)
    return len(votes)


def write_votes_csv(votes: list[sqlite3.Row], fh) -> None:  # type: ignore[no-untyped-def]
    writer = csv.writer(fh)
    writer.writerow(EXPORT_COLUMNS)
    for v in votes:
        writer.writerow([_export_cell(v, c) for c in EXPORT_COLUMNS])


def _export_cell(vote: sqlite3.Row, column: str) -> object:
    """A vote's value in the export: `answer_a` / `answer_b` are the answers as shown (A, B)."""
    if column in ("answer_a", "answer_b"):
        shown = vote["shown_a" if column == "answer_a" else "shown_b"]
        return vote["answer_1"] if shown == vote["cand_1"] else vote["answer_2"]
    return vote[column]
