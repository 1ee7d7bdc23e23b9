"""A voter in a real headless Chromium (Debian's, driven by Playwright) votes through the page; standings move."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from test_arena import CANDIDATES, TOKEN, fill_arena
from underdog.arena import votes as db
from underdog.arena.app import create_app
from underdog.store import Store

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason="Debian's chromium is not installed (run scripts/setup-browser.sh)")


def test_voting_in_a_real_browser(tmp_path: Path, serve_app) -> None:  # type: ignore[no-untyped-def]
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (dev extra) is not installed")
    store = Store(tmp_path / "underdog.db")
    fill_arena(store, questions=4)
    with serve_app(create_app(store, TOKEN)) as server, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=ARGS,
            viewport={"width": 1200, "height": 800})
        try:
            page = browser.new_page()
            board = browser.new_page()
            board.goto(f"{server.url}/organiser?token={TOKEN}")
            assert "No votes yet" in board.inner_text("#standings")

            page.goto(server.url)
            html = page.content()
            assert not any(name in html for name in CANDIDATES)
            assert page.inner_text("#question").startswith("Question number")
            assert page.inner_text("#answer-a .text").startswith("Answer ")
            page.screenshot(path=str(tmp_path / "vote.png"), full_page=True)
            print(f"\nscreenshot: {tmp_path / 'vote.png'}")

            page.click("#vote-a")
            page.wait_for_url("**/result/**")
            name_a, name_b = page.inner_text("#name-a"), page.inner_text("#name-b")
            assert {name_a, name_b} <= set(CANDIDATES) and name_a != name_b
            page.screenshot(path=str(tmp_path / "result.png"))
            vote = db.all_votes(store)[0]
            assert vote["winner"] == name_a and vote["choice"] == "A"

            board.reload()
            rows = {r.inner_text(): r for r in board.query_selector_all("#standings td.name")}
            assert set(rows) == {name_a, name_b}
            first = board.query_selector("#standings tbody tr td.name").inner_text()
            assert first == name_a  # the winner of the only vote leads

            page.click("#next")
            page.click("#vote-b")
            page.wait_for_url("**/result/**")
            page.click("#next")
            page.click("#vote-tie")
            board.reload()
            games = sum(int(td.inner_text()) for td in board.query_selector_all("#standings td.games"))
            assert games == 6  # 3 votes, 2 candidates each
            assert "3 votes" in board.inner_text("main")
            board.screenshot(path=str(tmp_path / "organiser.png"), full_page=True)
        finally:
            browser.close()
    assert len(db.all_votes(store)) == 3
