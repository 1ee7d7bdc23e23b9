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


def test_organiser_page_shows_style_control_and_simulated_votes(tmp_path: Path, serve_app) -> None:  # type: ignore[no-untyped-def]
    """The organiser page with the simulated panel's votes: the SIMULATED banner, style-controlled ratings and
    what the voters reward, at desktop (1280 px) and phone (390 px) widths; screenshots to look at."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (dev extra) is not installed")
    from underdog.arena.simulated_panel import cast_simulated_votes
    from underdog.project import Project, init_project

    init_project("county services", tmp_path / "p")
    project = Project(tmp_path / "p")
    topics = ["dog licence", "burn permit", "parking permit", "tax appeal", "fishing licence", "yard sale permit"]
    facts = {t: f"The {t} costs ${10 + len(t)} at the clerk's office." for t in topics}
    db.add_items(project.store, "plain-sft", [(t, f"How do I get a {t}?", facts[t]) for t in topics])
    db.add_items(project.store, "warm-prompted", [(t, f"How do I get a {t}?", f"I understand this can be stressful. "
                                                   f"{facts[t]}") for t in topics])
    db.add_items(project.store, "listy", [(t, f"How do I get a {t}?", ("## Steps\n" if i % 2 else "")
                                           + f"- **Fee:** {facts[t]}\n" + "- Bring ID.\n" * (i % 3))
                                          for i, t in enumerate(topics)])
    cast_simulated_votes(project, voters=5, noise=0.1)
    with serve_app(create_app(project.store, TOKEN, rounds=30)) as server, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            for width in (1280, 390):
                page = browser.new_page(viewport={"width": width, "height": 900})
                page.goto(f"{server.url}/organiser?token={TOKEN}")
                assert "Simulated: 90 of these votes" in page.inner_text("#simulated")
                assert page.inner_text("#standings tbody tr td.name") == "warm-prompted"
                assert all(cell.inner_text() != "-" for cell in page.query_selector_all("#standings td.styled"))
                rewards = page.inner_text("#rewards")
                assert "length:" in rewards and "headers:" in rewards
                # only `listy` has lists and bold, always both: one shared coefficient, said so
                assert "lists + bold:" in rewards and "cannot be told apart" in rewards
                # nothing wider than the window but the standings table, which scrolls in its own box
                assert page.evaluate("document.documentElement.scrollWidth") <= width
                page.screenshot(path=str(tmp_path / f"organiser-{width}.png"), full_page=True)
                print(f"\nscreenshot: {tmp_path / f'organiser-{width}.png'}")
                page.close()
        finally:
            browser.close()
