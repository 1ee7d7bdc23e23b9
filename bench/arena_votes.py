"""Voting throughput of the arena: concurrent voters over loopback against the real uvicorn server.

    .venv/bin/python bench/arena_votes.py [--voters 50] [--votes 20] [--rounds 3]

Each vote is what a browser does: GET the ballot page, POST the form (CSRF token, ballot id), get the 303.
Baseline, measured in the same process: the same request pattern against a bare FastAPI app that renders a
small page and redirects without touching SQLite. The ratio arena / baseline is the cost of ballots, CSRF
checks, the UNIQUE-guarded insert and the templates; 1.0 would be free. The two alternate for --rounds rounds
(each server started once), so both see the same load on a shared machine; medians are compared.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from fastapi import FastAPI, Form
from fastapi.responses import HTMLResponse, RedirectResponse

from underdog.arena import votes as db
from underdog.arena.app import create_app
from underdog.store import Store
from underdog.testing import ServerThread

FIELDS = re.compile(r'<input type="hidden" name="(\w+)" value="([^"]+)">')


def bare_app() -> FastAPI:
    app = FastAPI()

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return '<form><input type="hidden" name="csrf" value="x"><input type="hidden" name="ballot" value="y"></form>'

    @app.post("/vote")
    def vote(ballot: str = Form(...), choice: str = Form(...), csrf: str = Form(...)) -> RedirectResponse:
        return RedirectResponse("/", status_code=303)

    return app


async def voter(url: str, votes: int) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        for _ in range(votes):
            fields = dict(FIELDS.findall((await client.get("/")).text))
            reply = await client.post("/vote", data={**fields, "choice": "A"})
            assert reply.status_code == 303, reply.status_code


async def crowd(url: str, voters: int, votes: int) -> None:
    await asyncio.gather(*(voter(url, votes) for _ in range(voters)))


def votes_per_s(url: str, voters: int, votes: int) -> float:
    start = time.perf_counter()
    asyncio.run(crowd(url, voters, votes))
    return voters * votes / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--voters", type=int, default=50)
    parser.add_argument("--votes", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    store = Store(Path(tempfile.mkdtemp()) / "underdog.db")
    questions = max(10, args.votes)
    for c, cand in enumerate(("alpha", "bravo", "charlie")):
        db.add_items(store, cand, [(f"q{i}", f"Question {i}?", f"Answer {c}-{i}.") for i in range(questions)])
    rates: dict[str, list[float]] = {"baseline": [], "arena": []}
    with ServerThread(bare_app()) as bare, ServerThread(create_app(store, "bench-token-123")) as arena:
        for _ in range(args.rounds):
            rates["baseline"].append(votes_per_s(bare.url, args.voters, args.votes))
            rates["arena"].append(votes_per_s(arena.url, args.voters, args.votes))
    base, ours = (statistics.median(rates[k]) for k in ("baseline", "arena"))
    stored = store.query("SELECT COUNT(*) FROM arena_votes")[0][0]
    expected = args.rounds * args.voters * args.votes
    print(f"{args.voters} voters x {args.votes} votes x {args.rounds} rounds: baseline {base:.0f} votes/s "
          f"(min {min(rates['baseline']):.0f}), arena {ours:.0f} votes/s (min {min(rates['arena']):.0f}), "
          f"ratio of medians {ours / base:.2f}; stored {stored} of {expected}")
    sys.exit(0 if stored == expected else 1)


if __name__ == "__main__":
    main()
