"""Load over loopback: 50 concurrent voters cast 1,000 votes against the real uvicorn server; each stored once."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import httpx

from test_arena import TOKEN, fill_arena
from underdog.arena.app import create_app
from underdog.store import Store

VOTERS, VOTES_EACH = 50, 20


async def voter(url: str, votes: int, choices: list[str]) -> int:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        for i in range(votes):
            page = (await client.get("/")).text
            fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]+)">', page))
            reply = await client.post("/vote", data={**fields, "choice": choices[i % len(choices)]})
            assert reply.status_code == 303, reply.text
        return votes


async def crowd(url: str) -> list[int]:
    options = [["A"], ["B"], ["tie"], ["bad"], ["A", "A", "B"]]
    return await asyncio.gather(*(voter(url, VOTES_EACH, options[i % 5]) for i in range(VOTERS)))


def test_fifty_voters_cast_a_thousand_votes(tmp_path: Path, serve_app) -> None:  # type: ignore[no-untyped-def]
    store = Store(tmp_path / "underdog.db")
    fill_arena(store, questions=10)  # 3 candidates x 10 questions = 30 pairs per voter
    start = time.perf_counter()
    with serve_app(create_app(store, TOKEN)) as server:
        cast = asyncio.run(asyncio.wait_for(crowd(server.url), timeout=150))
    elapsed = time.perf_counter() - start
    assert sum(cast) == 1000
    assert store.query("SELECT COUNT(*) FROM arena_votes")[0][0] == 1000
    assert store.query("SELECT COUNT(DISTINCT voter_id) FROM arena_votes")[0][0] == VOTERS
    assert store.query("SELECT COUNT(DISTINCT ballot_id) FROM arena_votes")[0][0] == 1000
    dup = store.query("""SELECT COUNT(*) FROM (SELECT 1 FROM arena_votes
                         GROUP BY voter_id, question_id, cand_1, cand_2 HAVING COUNT(*) > 1)""")
    assert dup[0][0] == 0
    # Pairs are dealt least-voted first, so the 1,000 votes spread evenly over the 30 pairs (33 or 34 each).
    counts = [r[0] for r in store.query("SELECT COUNT(*) FROM arena_votes GROUP BY question_id, cand_1, cand_2")]
    assert len(counts) == 30 and max(counts) - min(counts) <= 3
    print(f"\n1000 votes by {VOTERS} concurrent voters in {elapsed:.1f} s ({1000 / elapsed:.0f} votes/s)")
