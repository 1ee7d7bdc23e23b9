"""Voting throughput of the arena: concurrent voters over loopback against the real uvicorn server.

    .venv/bin/python bench/arena_votes.py [--voters 50] [--votes 20] [--rounds 3]

Each vote is what a browser does: GET the ballot page, POST the form (CSRF token, ballot id), get the 303.
Baselines, measured in the same process with the same request pattern: a bare FastAPI app that renders a small
page with a fresh ballot id and, on the POST, does the same write (one UNIQUE-guarded vote row inserted and
committed in a transaction on its own SQLite file through `Store`, WAL like the arena's) then redirects: the
issue's goal (arena >= 0.85 of it); and the same app without the write ("no write"), the floor of any FastAPI
form app. The ratio arena / baseline is the cost of ballots, CSRF checks, voters and templates; 1.0 would be
free. All three alternate for --rounds rounds (each server started once), so they see the same load on a shared
machine; medians are compared.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from fastapi import FastAPI, Form
from fastapi.responses import HTMLResponse, RedirectResponse

from underdog.arena import votes as db
from underdog.arena.app import create_app
from underdog.store import Store
from underdog.testing import ServerThread

FIELDS = re.compile(r'<input type="hidden" name="(\w+)" value="([^"]+)">')


def bare_app(store: Store | None = None) -> FastAPI:
    """A form app with nothing of the arena's: a page with a fresh ballot id; the POST inserts the vote into
    `store` (when given) and redirects."""
    app = FastAPI()
    if store is not None:
        store.execute("CREATE TABLE IF NOT EXISTS bare_votes (id INTEGER PRIMARY KEY, ballot_id TEXT UNIQUE, "
                      "choice TEXT, time REAL)")

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return (f'<form><input type="hidden" name="csrf" value="x"><input type="hidden" name="ballot" '
                f'value="{uuid.uuid4().hex}"></form>')

    @app.post("/vote")
    def vote(ballot: str = Form(...), choice: str = Form(...), csrf: str = Form(...)) -> RedirectResponse:
        if store is not None:
            with store.transaction() as db:
                db.execute("INSERT INTO bare_votes (ballot_id, choice, time) VALUES (?, ?, ?)",
                           (ballot, choice, time.time()))
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
    bare_store = Store(Path(tempfile.mkdtemp()) / "bare.db")
    apps = {"no write": bare_app(), "baseline": bare_app(bare_store), "arena": create_app(store, "bench-token-123")}
    rates: dict[str, list[float]] = {name: [] for name in apps}
    with contextlib.ExitStack() as stack:
        urls = {name: stack.enter_context(ServerThread(app)).url for name, app in apps.items()}
        for _ in range(args.rounds):
            for name, url in urls.items():
                rates[name].append(votes_per_s(url, args.voters, args.votes))
    median = {name: statistics.median(got) for name, got in rates.items()}
    stored = store.query("SELECT COUNT(*) FROM arena_votes")[0][0]
    bare_stored = bare_store.query("SELECT COUNT(*) FROM bare_votes")[0][0]
    expected = args.rounds * args.voters * args.votes
    print(f"{args.voters} voters x {args.votes} votes x {args.rounds} rounds, votes/s median (min): " + ", ".join(
        f"{name} {median[name]:.0f} ({min(rates[name]):.0f})" for name in apps))
    print(f"arena / baseline (same write): {median['arena'] / median['baseline']:.2f}; arena / no write: "
          f"{median['arena'] / median['no write']:.2f}; stored {stored} and {bare_stored} of {expected}")
    ok = stored == bare_stored == expected
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
