"""The arena's tables: answers on show, voters, invites, votes and the LLM judge's verdicts."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from underdog.store import Store, insert_sql

Pair = tuple[str, str, str]  # question id, cand_1, cand_2 (cand_1 < cand_2)
ITEM_COLUMNS = ("question_id", "candidate", "question", "answer", "source", "question_set", "created")
VOTE_COLUMNS = ("voter_id", "role", "question_id", "cand_1", "cand_2", "shown_a", "shown_b", "choice", "winner",
                "ballot_id", "time", "question_set", "question", "answer_1", "answer_2", "source", "simulated")
VERDICT_COLUMNS = ("question_id", "cand_1", "cand_2", "winner", "judge", "created")


# -- items: the answers on show -----------------------------------------------------------------------------------
def put_items(store: Store, rows: Iterable[dict[str, Any]]) -> None:
    """Put answers on show (dicts keyed by `ITEM_COLUMNS`, `created` defaulting to now), replacing earlier ones."""
    now = time.time()
    with store.transaction() as db:
        db.executemany(insert_sql("arena_items", ITEM_COLUMNS, "INSERT OR REPLACE"),
                       [{"created": now, "question_set": None, **row} for row in rows])


def item_candidates(store: Store) -> list[str]:
    return [r["candidate"] for r in store.query("SELECT DISTINCT candidate FROM arena_items ORDER BY candidate")]


def item_sources(store: Store) -> list[sqlite3.Row]:
    """candidate, source (`evalset:candidate_id`) of each distinct candidate on show."""
    return store.query("SELECT DISTINCT candidate, source FROM arena_items ORDER BY candidate")


def items_version(store: Store) -> tuple[Any, ...]:
    """(count, newest) of the items: changes whenever `arena add` changed them."""
    return tuple(store.query("SELECT COUNT(*), MAX(created) FROM arena_items")[0])


def items(store: Store) -> list[sqlite3.Row]:
    return store.query("SELECT question_id, candidate, question, answer, question_set FROM arena_items")


def question_count(store: Store) -> int:
    return int(store.query("SELECT COUNT(DISTINCT question_id) FROM arena_items")[0][0])


def item_pairs(store: Store) -> list[sqlite3.Row]:
    """question_id, question, c1, a1, c2, a2 of every pair of candidates' answers to one question (c1 < c2)."""
    return store.query(
        """SELECT i1.question_id, i1.question, i1.candidate AS c1, i1.answer AS a1, i2.candidate AS c2,
                  i2.answer AS a2, i1.question_set
           FROM arena_items i1 JOIN arena_items i2 ON i1.question_id = i2.question_id
                AND i1.candidate < i2.candidate
           ORDER BY i1.question_id, c1, c2""")


# -- voters and invites -------------------------------------------------------------------------------------------
def save_voter(db: sqlite3.Connection, voter_id: str, csrf: str, role: str) -> None:
    """The voter's row (in the caller's transaction); a later role replaces the earlier one."""
    db.execute("INSERT INTO arena_voters (id, csrf, role, created) VALUES (:id, :csrf, :role, :created) "
               "ON CONFLICT (id) DO UPDATE SET role = excluded.role",
               {"id": voter_id, "csrf": csrf, "role": role, "created": time.time()})


def voter_exists(store: Store, voter_id: str) -> bool:
    return bool(store.query("SELECT 1 FROM arena_voters WHERE id = :id", {"id": voter_id}))


def put_invites(store: Store, codes: Iterable[str], role: str) -> None:
    with store.transaction() as db:
        db.executemany(insert_sql("arena_invites", ("code", "role", "created")),
                       [{"code": code, "role": role, "created": time.time()} for code in codes])


def invite(db: sqlite3.Connection, code: str) -> sqlite3.Row | None:
    """role and voter_id (None until first used) of an invite code; None for an unknown code."""
    return db.execute("SELECT role, voter_id FROM arena_invites WHERE code = :code", {"code": code}).fetchone()


def bind_invite(db: sqlite3.Connection, code: str, voter_id: str) -> None:
    db.execute("UPDATE arena_invites SET voter_id = :voter_id, used = :used WHERE code = :code",
               {"voter_id": voter_id, "used": time.time(), "code": code})


def is_invited(store: Store, voter_id: str) -> bool:
    return bool(store.query("SELECT 1 FROM arena_invites WHERE voter_id = :id", {"id": voter_id}))


def invited_voters(store: Store) -> set[str]:
    return {r["voter_id"] for r in store.query("SELECT voter_id FROM arena_invites WHERE voter_id IS NOT NULL")}


# -- votes ----------------------------------------------------------------------------------------------------------
def put_vote(db: sqlite3.Connection, vote: dict[str, Any]) -> int:
    """Insert a vote (a dict keyed by `VOTE_COLUMNS`, `time` defaulting to now) in the caller's transaction;
    returns its id. sqlite3.IntegrityError for a second vote of a voter on a (question, pair)."""
    defaults = {"time": time.time(), "question_set": None, "question": None, "answer_1": None, "answer_2": None,
                "source": "arena", "simulated": 0}
    cursor = db.execute(insert_sql("arena_votes", VOTE_COLUMNS), defaults | vote)
    return int(cursor.lastrowid or 0)


def vote_of_voter(db: sqlite3.Connection, voter_id: str, question_id: str, cand_1: str,
                  cand_2: str) -> sqlite3.Row | None:
    """The voter's vote on a (question, pair), in the caller's transaction; None if they have not voted on it."""
    return db.execute("SELECT choice, winner, ballot_id FROM arena_votes WHERE voter_id = ? AND question_id = ? "
                      "AND cand_1 = ? AND cand_2 = ?", (voter_id, question_id, cand_1, cand_2)).fetchone()


def ensure_voter(db: sqlite3.Connection, voter_id: str, role: str) -> None:
    """A voter row for votes that did not come through the voting page (imported, simulated); keeps an existing
    row as it is."""
    db.execute("INSERT OR IGNORE INTO arena_voters (id, csrf, role, created) VALUES (?, '', ?, ?)",
               (voter_id, role, time.time()))


def vote_counts(store: Store) -> dict[Pair, int]:
    rows = store.query("SELECT question_id, cand_1, cand_2, COUNT(*) AS n FROM arena_votes GROUP BY 1, 2, 3")
    return {(r["question_id"], r["cand_1"], r["cand_2"]): r["n"] for r in rows}


def voted_pairs(store: Store, voter_id: str) -> set[Pair]:
    rows = store.query("SELECT question_id, cand_1, cand_2 FROM arena_votes WHERE voter_id = :id", {"id": voter_id})
    return {(r["question_id"], r["cand_1"], r["cand_2"]) for r in rows}


def vote_of_ballot(store: Store, ballot_id: str) -> sqlite3.Row | None:
    rows = store.query("SELECT * FROM arena_votes WHERE ballot_id = :id", {"id": ballot_id})
    return rows[0] if rows else None


def all_votes(store: Store) -> list[sqlite3.Row]:
    return store.query("SELECT * FROM arena_votes ORDER BY id")


def votes_version(store: Store) -> tuple[int, int]:
    """(count, newest id) of the votes: changes with every vote."""
    row = store.query("SELECT COUNT(*), COALESCE(MAX(id), 0) FROM arena_votes")[0]
    return int(row[0]), int(row[1])


@dataclass(frozen=True)
class Vote:
    """One person's (or the simulated panel's) vote on two answers to a question; `answer_1` is `cand_1`'s."""

    id: int
    voter_id: str
    role: str  # judge | audience
    question_id: str
    question: str
    question_set: str | None  # evalset:NAME, dataset:NAME, file:NAME, import:FILE
    cand_1: str
    cand_2: str
    answer_1: str
    answer_2: str
    choice: str  # A | B | tie | bad (as shown)
    winner: str | None  # cand_1, cand_2, or None (tie, both bad)
    source: str | None  # arena | import:FILE | simulated:PANEL
    simulated: bool

    @property
    def outcome(self) -> str:
        """"first" (cand_1's answer preferred), "second", or "tie" (a tie or both bad)."""
        return "first" if self.winner == self.cand_1 else "second" if self.winner == self.cand_2 else "tie"


def load_votes(store: Store) -> list[Vote]:
    """Every vote that kept its question and answers, oldest first."""
    return [Vote(**{**dict(r), "simulated": bool(r["simulated"])}) for r in votes_with_texts(store)]


def votes_with_texts(store: Store) -> list[sqlite3.Row]:
    """Every vote with the question and both answers it was cast on (canonical order: answer_1 is cand_1's)."""
    return store.query(
        """SELECT id, voter_id, role, question_id, cand_1, cand_2, choice, winner, question_set, question,
                  answer_1, answer_2, source, simulated
           FROM arena_votes WHERE question IS NOT NULL AND answer_1 IS NOT NULL AND answer_2 IS NOT NULL
           ORDER BY id""")


def any_vote(store: Store) -> bool:
    return bool(store.query("SELECT 1 FROM arena_votes LIMIT 1"))


# -- the LLM jury's verdicts ----------------------------------------------------------------------------------------
def put_llm_verdicts(store: Store, rows: Iterable[dict[str, Any]]) -> None:
    """Verdicts (dicts keyed by `VERDICT_COLUMNS`, `created` defaulting to now), replacing earlier ones."""
    now = time.time()
    with store.transaction() as db:
        db.executemany(insert_sql("arena_llm_verdicts", VERDICT_COLUMNS, "INSERT OR REPLACE"),
                       [{"created": now, **row} for row in rows])


def llm_verdicts(store: Store) -> list[sqlite3.Row]:
    return store.query("SELECT cand_1, cand_2, winner FROM arena_llm_verdicts")


def human_and_llm(store: Store) -> list[sqlite3.Row]:
    """human, llm: the winner (or 'tie') of each human vote and of the LLM jury on the same pair."""
    return store.query(
        """SELECT COALESCE(v.winner, 'tie') AS human, COALESCE(l.winner, 'tie') AS llm FROM arena_votes v
           JOIN arena_llm_verdicts l USING (question_id, cand_1, cand_2)""")


def m401_arena(db: sqlite3.Connection) -> None:
    """Blind voting arena: the answers shown, voters (audience or judge), open ballots, votes, LLM verdicts."""
    db.execute(
        """CREATE TABLE arena_items (
            question_id TEXT NOT NULL, candidate TEXT NOT NULL, question TEXT NOT NULL, answer TEXT NOT NULL,
            source TEXT, created REAL NOT NULL, PRIMARY KEY (question_id, candidate))"""
    )
    db.execute(
        """CREATE TABLE arena_voters (
            id TEXT PRIMARY KEY, csrf TEXT NOT NULL, role TEXT NOT NULL CHECK (role IN ('audience', 'judge')),
            created REAL NOT NULL)"""
    )
    db.execute(
        """CREATE TABLE arena_ballots (
            id TEXT PRIMARY KEY, voter_id TEXT NOT NULL REFERENCES arena_voters(id), question_id TEXT NOT NULL,
            shown_a TEXT NOT NULL, shown_b TEXT NOT NULL, created REAL NOT NULL)"""
    )
    db.execute("CREATE INDEX arena_ballots_voter ON arena_ballots(voter_id)")
    db.execute(
        """CREATE TABLE arena_votes (
            id INTEGER PRIMARY KEY, voter_id TEXT NOT NULL REFERENCES arena_voters(id), role TEXT NOT NULL,
            question_id TEXT NOT NULL, cand_1 TEXT NOT NULL, cand_2 TEXT NOT NULL CHECK (cand_1 < cand_2),
            shown_a TEXT NOT NULL, shown_b TEXT NOT NULL,
            choice TEXT NOT NULL CHECK (choice IN ('A', 'B', 'tie', 'bad')),
            winner TEXT, ballot_id TEXT NOT NULL UNIQUE, time REAL NOT NULL,
            UNIQUE (voter_id, question_id, cand_1, cand_2))"""
    )
    db.execute("CREATE INDEX arena_votes_pair ON arena_votes(question_id, cand_1, cand_2)")
    db.execute(
        """CREATE TABLE arena_llm_verdicts (
            question_id TEXT NOT NULL, cand_1 TEXT NOT NULL, cand_2 TEXT NOT NULL, winner TEXT, judge TEXT,
            created REAL NOT NULL, PRIMARY KEY (question_id, cand_1, cand_2))"""
    )


def m402_arena_invites(db: sqlite3.Connection) -> None:
    """Organiser invite codes: one code, one voter (bound on first use)."""
    db.execute(
        """CREATE TABLE arena_invites (
            code TEXT PRIMARY KEY, role TEXT NOT NULL, voter_id TEXT, created REAL NOT NULL, used REAL)"""
    )



def m403_arena_vote_texts(db: sqlite3.Connection) -> None:
    """Each vote keeps the question and the two answers it was cast on (an `arena add` that replaces answers,
    or votes imported from elsewhere, would otherwise lose them), the question set they came from (an eval set,
    a dataset's questions, a file), where the vote came from (`arena`, `import:<file>`, `simulated:<panel>`)
    and whether it is simulated. Existing votes get their texts from the answers on show."""
    db.execute("ALTER TABLE arena_items ADD COLUMN question_set TEXT")
    db.execute("UPDATE arena_items SET question_set = 'evalset:' || substr(source, 1, instr(source, ':') - 1) "
               "WHERE instr(source, ':') > 1")
    for column in ("question_set TEXT", "question TEXT", "answer_1 TEXT", "answer_2 TEXT", "source TEXT",
                   "simulated INTEGER NOT NULL DEFAULT 0"):
        db.execute(f"ALTER TABLE arena_votes ADD COLUMN {column}")
    db.execute(
        """UPDATE arena_votes SET source = 'arena',
               question = (SELECT question FROM arena_items i WHERE i.question_id = arena_votes.question_id
                           AND i.candidate = arena_votes.cand_1),
               question_set = (SELECT question_set FROM arena_items i WHERE i.question_id = arena_votes.question_id
                               AND i.candidate = arena_votes.cand_1),
               answer_1 = (SELECT answer FROM arena_items i WHERE i.question_id = arena_votes.question_id
                           AND i.candidate = arena_votes.cand_1),
               answer_2 = (SELECT answer FROM arena_items i WHERE i.question_id = arena_votes.question_id
                           AND i.candidate = arena_votes.cand_2)""")
