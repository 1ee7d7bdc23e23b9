"""The arena over a real uvicorn server on loopback: blind pages, one vote per pair, CSRF, organiser token."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from underdog.arena import votes as db
from underdog.arena.app import create_app, judge_key
from underdog.arena.standings import standings, to_markdown
from underdog.store import Store

CANDIDATES = ("cand-alpha-7b", "cand-bravo-70b", "run-20261126-charlie")
TOKEN = "organiser-token-123"


def fill_arena(store: Store, questions: int = 10, candidates: tuple[str, ...] = CANDIDATES) -> None:
    for c, cand in enumerate(candidates):
        db.add_items(store, cand, [(f"q{i}", f"Question number {i}: how do I renew a permit?",
                                    f"Answer {c}-{i}: go to the office, bring form {c * 100 + i}.")
                                   for i in range(questions)])


@pytest.fixture
def arena_store(tmp_path: Path) -> Store:
    store = Store(tmp_path / "underdog.db")
    fill_arena(store)
    return store


@pytest.fixture
def server(arena_store: Store, serve_app):  # type: ignore[no-untyped-def]
    with serve_app(create_app(arena_store, TOKEN, rounds=20)) as srv:
        yield srv


def form(html: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]+)">', html))


def test_vote_page_is_blind_and_names_appear_after_the_vote(server, arena_store: Store) -> None:
    with httpx.Client(base_url=server.url, follow_redirects=True) as client:
        page = client.get("/")
        assert page.status_code == 200
        assert "A is better" in page.text and "Both are bad" in page.text
        for word in [*CANDIDATES, "alpha", "bravo", "charlie", "20261126"]:
            assert word not in page.text
        assert page.headers["x-frame-options"] == "DENY"
        assert "samesite=strict" in page.headers["set-cookie"].lower()
        assert "httponly" in page.headers["set-cookie"].lower()
        # A reload shows the same open ballot, so a voter cannot shop for another pair.
        assert form(client.get("/").text)["ballot"] == form(page.text)["ballot"]
        reply = client.post("/vote", data={**form(page.text), "choice": "A"})
        assert reply.status_code == 200 and str(reply.url).endswith("/result/" + form(page.text)["ballot"])
        shown = re.findall(r'id="name-[ab]">([^<]+)<', reply.text)
        assert len(shown) == 2 and set(shown) <= set(CANDIDATES)
    vote = db.all_votes(arena_store)[0]
    assert (vote["shown_a"], vote["shown_b"]) == tuple(shown) and vote["winner"] == shown[0]
    assert vote["role"] == "audience" and vote["cand_1"] < vote["cand_2"]


def test_second_vote_on_the_same_pair_is_refused(server, arena_store: Store) -> None:
    with httpx.Client(base_url=server.url, follow_redirects=True) as client:
        fields = form(client.get("/").text)
        assert client.post("/vote", data={**fields, "choice": "tie"}).status_code == 200
        again = client.post("/vote", data={**fields, "choice": "B"})
        assert again.status_code == 409 and "already voted" in again.text
        # Even a fresh ballot for the same pair (forged) is refused by the database.
        voter = db.Sessions(TOKEN).from_cookie(client.cookies["underdog_voter"])
        first = db.all_votes(arena_store)[0]
        forged = db.Ballot("forged", voter.id, first["question_id"], first["cand_2"], first["cand_1"])
        with pytest.raises(db.VoteRefused, match="already voted"):
            db.record_vote(arena_store, voter, forged, "A")
        refused = client.post("/vote", data={"ballot": "forged", "csrf": fields["csrf"], "choice": "A"})
        assert refused.status_code == 409
        # The next page offers a different pair.
        nxt = db.Dealer(arena_store).next_ballot(voter.id)
        assert nxt and (nxt.question_id, {nxt.shown_a, nxt.shown_b}) != (first["question_id"],
                                                                          {first["cand_1"], first["cand_2"]})
    assert len(db.all_votes(arena_store)) == 1


def test_forged_posts_are_refused(server, arena_store: Store) -> None:
    with httpx.Client(base_url=server.url, follow_redirects=True) as client:
        fields = form(client.get("/").text)
        assert client.post("/vote", data={**fields, "csrf": "wrong", "choice": "A"}).status_code == 403
        cross = client.post("/vote", data={**fields, "choice": "A"}, headers={"Origin": "http://evil.example"})
        assert cross.status_code == 403
        assert client.post("/vote", data={**fields, "choice": "nonsense"}).status_code == 409
    with httpx.Client(base_url=server.url, follow_redirects=True) as stranger:  # no session cookie
        assert stranger.post("/vote", data={**fields, "choice": "A"}).status_code == 403
        # Someone else's ballot is not yours to vote on, even with your own valid CSRF token.
        mine = form(stranger.get("/").text)
        assert stranger.post("/vote", data={**mine, "ballot": fields["ballot"], "choice": "A"}).status_code == 409
        assert stranger.get(f"/result/{fields['ballot']}").status_code == 404
    assert db.all_votes(arena_store) == []


def test_organiser_pages_need_the_token_and_judges_are_tagged(server, arena_store: Store) -> None:
    with httpx.Client(base_url=server.url, follow_redirects=True) as client:
        assert client.get("/organiser").status_code == 403
        assert client.get("/organiser", params={"token": "guess-guess"}).status_code == 403
        assert client.get("/organiser/votes.csv").status_code == 403
        assert client.get("/join", params={"key": "nope"}).status_code == 403
        client.get("/join", params={"key": judge_key(TOKEN)})
        for _ in range(3):
            client.post("/vote", data={**form(client.get("/").text), "choice": "A"})
        board = client.get("/organiser", headers={"Authorization": f"Bearer {TOKEN}"})
        assert board.status_code == 200 and "Live standings" in board.text
        assert "3 votes (3 from judges, 0 from the audience)" in board.text
        csv_text = client.get("/organiser/votes.csv", params={"token": TOKEN}).text
    lines = csv_text.strip().splitlines()
    assert lines[0].startswith("id,time,voter_id,role") and len(lines) == 4 and ",judge," in lines[1]


def test_every_pair_voted_ends_with_a_thank_you(tmp_path: Path, serve_app) -> None:  # type: ignore[no-untyped-def]
    store = Store(tmp_path / "u.db")
    fill_arena(store, questions=1, candidates=CANDIDATES[:2])
    with serve_app(create_app(store, TOKEN)) as srv, httpx.Client(base_url=srv.url, follow_redirects=True) as client:
        client.post("/vote", data={**form(client.get("/").text), "choice": "bad"})
        assert "voted on every pair" in client.get("/").text
    assert db.all_votes(store)[0]["winner"] is None


def test_standings_agreement_and_blend(arena_store: Store) -> None:
    a, b, c = sorted(CANDIDATES)
    sessions = db.Sessions(TOKEN)
    judge, fan = sessions.new("judge"), sessions.new("audience")

    def vote(voter: db.Voter, q: str, x: str, y: str, choice: str) -> None:
        db.record_vote(arena_store, voter, db.Ballot(f"{voter.id}{q}{x}{y}", voter.id, q, x, y), choice)

    vote(judge, "q0", a, b, "A")   # a beats b
    vote(judge, "q1", b, a, "B")   # a beats b (sides swapped)
    vote(judge, "q2", a, c, "tie")
    vote(fan, "q0", c, b, "A")     # c beats b
    for q, x, y, w in [("q0", a, b, a), ("q1", a, b, b), ("q2", a, c, None)]:
        arena_store.execute("INSERT INTO arena_llm_verdicts VALUES (?, ?, ?, ?, 'judge', 0)", (q, x, y, w))
    table = standings(arena_store, rounds=10)
    rows = {r.candidate: r for r in table.rows}
    assert rows[a].human == pytest.approx(2.5 / 3) and rows[b].human == 0.0 and rows[c].human == 0.5
    assert rows[c].audience == 1.0 and rows[a].audience is None
    assert rows[a].llm == pytest.approx(1.5 / 3)
    assert rows[a].blended == pytest.approx((0.4 * 2.5 / 3 + 0.4 * 0.5) / 0.8)
    assert rows[c].blended == pytest.approx(0.4 * 0.5 + 0.4 * 0.5 + 0.2 * 1.0)
    assert table.votes == {"judge": 3, "audience": 1} and table.voters == 2 and table.anonymous == 1
    # LLM vs humans on the same pairs: q0 agree (a), q1 disagree (a vs b), q2 agree (tie).
    assert table.agreement.n == 3 and table.agreement.percent == pytest.approx(2 / 3)
    assert table.agreement.n_no_ties == 2 and table.agreement.percent_no_ties == 0.5
    assert [r.candidate for r in table.rows] == [a, c, b]  # best blended first: .667, .6, .2
    assert "| 1 | cand-alpha-7b |" in to_markdown(table)
