"""The arena's tables: answers on show, voters, invites, votes and the LLM judge's verdicts."""

from __future__ import annotations

import sqlite3


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

