"""The arena's data: answers on show, voters, ballots (a pair shown to one voter) and votes, in the project store.

    add_items(store, "run-3", [("q1", "What is...?", "An answer")])
    voter = new_voter(store)                        # Voter(id, csrf, role)
    ballot = next_ballot(store, voter.id)           # a random unvoted (question, pair), random side order
    vote = cast_vote(store, voter.id, ballot.id, "A")

A vote stores the pair in canonical order (`cand_1 < cand_2`) and the database refuses a second vote of one
voter on the same (question, pair) with its UNIQUE constraint, whatever page or request it came from.
"""

from __future__ import annotations

import csv
import random
import secrets
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

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
def add_items(store: Store, candidate: str, items: Iterable[tuple[str, str, str]], source: str = "") -> int:
    """Put a candidate's answers (question id, question, answer) on show; replaces earlier ones. Returns count."""
    rows = [(qid, candidate, question, answer, source, time.time()) for qid, question, answer in items]
    with store.transaction() as db:
        db.executemany("INSERT OR REPLACE INTO arena_items VALUES (?, ?, ?, ?, ?, ?)", rows)
    return len(rows)


def candidates(store: Store) -> list[str]:
    return [r[0] for r in store.query("SELECT DISTINCT candidate FROM arena_items ORDER BY candidate")]


def item(store: Store, question_id: str, candidate: str) -> sqlite3.Row:
    rows = store.query("SELECT * FROM arena_items WHERE question_id = ? AND candidate = ?", (question_id, candidate))
    if not rows:
        raise VoteRefused(f"no answer of {candidate} to question {question_id}")
    return rows[0]


# -- voters -----------------------------------------------------------------------------------------------
def new_voter(store: Store, role: str = "audience") -> Voter:
    """A fresh voter with an unguessable id (their session cookie) and a CSRF token for their forms."""
    if role not in ROLES:
        raise ValueError(f"unknown voter role {role!r}")
    voter = Voter(secrets.token_urlsafe(24), secrets.token_urlsafe(24), role)
    store.execute("INSERT INTO arena_voters VALUES (?, ?, ?, ?)", (voter.id, voter.csrf, voter.role, time.time()))
    return voter


def get_voter(store: Store, voter_id: str | None) -> Voter | None:
    if not voter_id:
        return None
    rows = store.query("SELECT id, csrf, role FROM arena_voters WHERE id = ?", (voter_id,))
    return Voter(*rows[0]) if rows else None


def set_role(store: Store, voter_id: str, role: str) -> None:
    store.execute("UPDATE arena_voters SET role = ? WHERE id = ?", (role, voter_id))


# -- ballots ----------------------------------------------------------------------------------------------
_OPEN = """SELECT b.* FROM arena_ballots b WHERE b.voter_id = ? AND NOT EXISTS (
             SELECT 1 FROM arena_votes v WHERE v.voter_id = b.voter_id AND v.question_id = b.question_id
               AND v.cand_1 = min(b.shown_a, b.shown_b) AND v.cand_2 = max(b.shown_a, b.shown_b))
           ORDER BY b.created DESC LIMIT 1"""
_UNVOTED_PAIRS = """
    WITH dealt AS (SELECT question_id, min(shown_a, shown_b) AS c1, max(shown_a, shown_b) AS c2, COUNT(*) AS n
                   FROM arena_ballots GROUP BY 1, 2, 3)
    SELECT i1.question_id, i1.candidate AS c1, i2.candidate AS c2, COALESCE(d.n, 0) AS n
    FROM arena_items i1 JOIN arena_items i2 ON i1.question_id = i2.question_id AND i1.candidate < i2.candidate
    LEFT JOIN dealt d ON d.question_id = i1.question_id AND d.c1 = i1.candidate AND d.c2 = i2.candidate
    WHERE NOT EXISTS (SELECT 1 FROM arena_votes v WHERE v.voter_id = ? AND v.question_id = i1.question_id
                        AND v.cand_1 = i1.candidate AND v.cand_2 = i2.candidate)
    ORDER BY n"""


def next_ballot(store: Store, voter_id: str, rng: random.Random | None = None) -> Ballot | None:
    """The voter's open ballot, else a new one: among the pairs they have not voted on, one of those dealt least
    often so far, sides in random order. None when they have voted on every pair."""
    rng = rng or random.SystemRandom()
    with store.transaction() as db:
        row = db.execute(_OPEN, (voter_id,)).fetchone()
        if row:
            return Ballot(row["id"], voter_id, row["question_id"], row["shown_a"], row["shown_b"])
        pairs = db.execute(_UNVOTED_PAIRS, (voter_id,)).fetchall()
        if not pairs:
            return None
        least = [p for p in pairs if p["n"] == pairs[0]["n"]]
        pick = rng.choice(least)
        sides = [pick["c1"], pick["c2"]]
        rng.shuffle(sides)
        ballot = Ballot(secrets.token_urlsafe(16), voter_id, pick["question_id"], *sides)
        db.execute("INSERT INTO arena_ballots VALUES (?, ?, ?, ?, ?, ?)",
                   (ballot.id, voter_id, ballot.question_id, ballot.shown_a, ballot.shown_b, time.time()))
    return ballot


# -- votes ------------------------------------------------------------------------------------------------
def cast_vote(store: Store, voter_id: str, ballot_id: str, choice: str) -> int:
    """Record the voter's choice on their ballot; returns the vote id. Raises VoteRefused for a bad choice, a
    ballot that is not theirs, or a second vote on the same (question, pair)."""
    if choice not in CHOICES:
        raise VoteRefused(f"unknown choice {choice!r} (one of {', '.join(CHOICES)})")
    with store.transaction() as db:
        rows = db.execute("""SELECT b.*, v.role FROM arena_ballots b JOIN arena_voters v ON v.id = b.voter_id
                             WHERE b.id = ? AND b.voter_id = ?""", (ballot_id, voter_id)).fetchall()
        if not rows:
            raise VoteRefused("unknown ballot")
        b = rows[0]
        cand_1, cand_2 = sorted((b["shown_a"], b["shown_b"]))
        winner = {"A": b["shown_a"], "B": b["shown_b"]}.get(choice)
        try:
            cursor = db.execute(
                """INSERT INTO arena_votes (voter_id, role, question_id, cand_1, cand_2, shown_a, shown_b, choice,
                                            winner, ballot_id, time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (voter_id, b["role"], b["question_id"], cand_1, cand_2, b["shown_a"], b["shown_b"], choice, winner,
                 ballot_id, time.time()))
        except sqlite3.IntegrityError:
            raise VoteRefused("you have already voted on this pair") from None
    return int(cursor.lastrowid or 0)


def vote_for_ballot(store: Store, ballot_id: str) -> sqlite3.Row | None:
    rows = store.query("SELECT * FROM arena_votes WHERE ballot_id = ?", (ballot_id,))
    return rows[0] if rows else None


def all_votes(store: Store) -> list[sqlite3.Row]:
    return store.query("SELECT * FROM arena_votes ORDER BY id")


EXPORT_COLUMNS = ("id", "time", "voter_id", "role", "question_id", "cand_1", "cand_2", "shown_a", "shown_b",
                  "choice", "winner")


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
        writer.writerow([v[c] for c in EXPORT_COLUMNS])
