"""Arena storage under cookie-less traffic, the deal, and invite codes (issue 13, item 6), over real HTTP."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from test_arena import TOKEN, fill_arena, form
from underdog.arena import votes as db
from underdog.arena.app import create_app
from underdog.arena.standings import standings
from underdog.cli import app
from underdog.project import Project
from underdog.store import Store


def count(store: Store, table: str) -> int:
    return store.query(f"SELECT COUNT(*) FROM {table}")[0][0]


def test_visitors_who_never_vote_leave_no_rows(tmp_path: Path, serve_app) -> None:  # type: ignore[no-untyped-def]
    store = Store(tmp_path / "u.db")
    fill_arena(store, questions=3)
    with serve_app(create_app(store, TOKEN)) as srv:
        for _ in range(200):  # no cookie kept between requests: every GET is a new visitor
            assert httpx.get(srv.url + "/").status_code == 200
        assert count(store, "arena_voters") == 0 and count(store, "arena_ballots") == 0
        with httpx.Client(base_url=srv.url, follow_redirects=True) as client:
            assert client.post("/vote", data={**form(client.get("/").text), "choice": "A"}).status_code == 200
    assert count(store, "arena_voters") == 1 and count(store, "arena_votes") == 1


def test_the_deal_counts_cast_votes_and_live_ballots_only(tmp_path: Path) -> None:
    store = Store(tmp_path / "u.db")
    fill_arena(store, questions=2)  # 2 questions x 3 pairs
    dealer, sessions = db.Dealer(store, ttl_s=0.5), db.Sessions(TOKEN)
    voter = sessions.new()
    voted = dealer.next_ballot(voter.id)
    dealer.cast(voter, voted.id, "A")
    for _ in range(24):  # abandoned: each pair gets live ballots
        dealer.next_ballot(sessions.new().id)
    assert sum(dealer.dealt().values()) == 1 + 24 and max(dealer.dealt().values()) - min(dealer.dealt().values()) <= 1
    time.sleep(0.6)  # the abandoned ballots expire
    assert sum(dealer.dealt().values()) == 1
    fresh = [dealer.next_ballot(sessions.new().id) for _ in range(5)]
    assert all(db._pair(b) != db._pair(voted) for b in fresh)  # the voted pair is dealt last
    capped = db.Dealer(store, max_open=3)
    for _ in range(10):
        capped.next_ballot(sessions.new().id)
    assert sum(capped.dealt().values()) == 1 + 3  # at most max_open live ballots: memory stays bounded


def test_an_invite_code_is_one_voter_on_any_browser(tmp_path: Path, serve_app) -> None:  # type: ignore[no-untyped-def]
    store = Store(tmp_path / "u.db")
    fill_arena(store, questions=1)
    code, other = db.create_invites(store, 2)
    sessions = db.Sessions(TOKEN)
    with serve_app(create_app(store, TOKEN, invite_only=True)) as srv:
        with httpx.Client(base_url=srv.url, follow_redirects=True) as stranger:
            assert stranger.get("/").status_code == 403  # invite-only: no code, no ballot
            assert stranger.get("/invite/not-a-code").status_code == 403
        with httpx.Client(base_url=srv.url, follow_redirects=True) as first:
            fields = form(first.get(f"/invite/{code}").text)
            assert first.post("/vote", data={**fields, "choice": "A"}).status_code == 200
            me = sessions.from_cookie(first.cookies["underdog_voter"])
        with httpx.Client(base_url=srv.url, follow_redirects=True) as cleared:  # cookies cleared: same voter
            page = cleared.get(f"/invite/{code}")
            assert sessions.from_cookie(cleared.cookies["underdog_voter"]).id == me.id and "1 of 3" in page.text
            vote = db.all_votes(store)[0]  # the same pair again, whatever ballot: refused
            with pytest.raises(db.VoteRefused, match="already voted"):
                db.record_vote(store, me, db.Ballot("forged", me.id, vote["question_id"], vote["cand_2"],
                                                    vote["cand_1"]), "B")
        with httpx.Client(base_url=srv.url, follow_redirects=True) as second:
            second.post("/vote", data={**form(second.get(f"/invite/{other}").text), "choice": "B"})
    assert count(store, "arena_voters") == 2 and standings(store, rounds=10).anonymous == 0


def test_invite_command_and_anonymous_voters_in_the_standings(project_dir: Path) -> None:
    result = CliRunner().invoke(app, ["arena", "invite", "-n", "3", "--judges"])
    assert result.exit_code == 0, result.output
    links = [line for line in result.output.splitlines() if "/invite/" in line]
    store = Project(project_dir).store
    assert len(links) == 3 and count(store, "arena_invites") == 3
    assert {r[0] for r in store.query("SELECT role FROM arena_invites")} == {"judge"}
    fill_arena(store, questions=1)
    dealer, sessions = db.Dealer(store), db.Sessions(TOKEN)
    invited = db.redeem_invite(store, sessions, links[0].rsplit("/", 1)[1])
    for voter in (invited, sessions.new(), sessions.new()):
        dealer.cast(voter, dealer.next_ballot(voter.id).id, "A")
    table = standings(store, rounds=10)
    assert table.voters == 3 and table.anonymous == 2 and table.votes == {"audience": 2, "judge": 1}
    out = CliRunner().invoke(app, ["arena", "standings"]).output
    assert "3 voters, 2 of them anonymous" in out


def test_voters_arriving_during_the_first_load_get_ballots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A voter whose page comes while another request is still reading the items waits for them, instead of
    being told there is nothing to vote on (seen under load: a ballot page without a ballot)."""
    import threading

    from underdog.arena import store as tables
    from underdog.store import Store

    store = Store(tmp_path / "underdog.db")
    fill_arena(store, questions=2)
    slow_items = tables.items

    def items(store_):  # type: ignore[no-untyped-def]
        time.sleep(0.5)
        return slow_items(store_)

    monkeypatch.setattr(tables, "items", items)
    dealer = db.Dealer(store)
    got: dict[str, object] = {}
    first = threading.Thread(target=lambda: got.update(a=dealer.next_ballot("voter-a")))
    first.start()
    time.sleep(0.1)  # the first request is reading the items now
    got["b"] = dealer.next_ballot("voter-b")
    first.join()
    assert got["a"] is not None and got["b"] is not None
