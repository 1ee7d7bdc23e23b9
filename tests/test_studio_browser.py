"""The studio in a real headless Chromium (Debian's, driven by Playwright): every page without a console error,
user text shown as text, actions refused without the token, and a training run started from the page whose loss
curve grows on its open page and which `underdog runs` lists.

    UNDERDOG_STUDIO_SCREENSHOTS=docs/studio pytest tests/test_studio_browser.py -k every_page   # the docs' PNGs
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO
from test_studio import TOKEN, serving
from test_train import arithmetic, use_student
from underdog.data.dataset import save_dataset
from underdog.project import Project
from underdog.studio.app import create_app

sys.path.insert(0, str(REPO / "bench"))
from studio import seed  # noqa: E402 - bench/studio.py's seeding, at a small size

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = os.environ.get("UNDERDOG_STUDIO_SCREENSHOTS")  # a folder: save each page at 1280 and 390 px there
SHOTS = SHOTS and str(Path(SHOTS).resolve())  # tests that chdir into their project save there all the same
WIDTHS = {1280: 860, 390: 844}  # viewport width -> height
WHOLE = {"overview", "final", "run-dpo"}  # pages shot whole, not just the first screen

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason="Debian's chromium is not installed (run scripts/setup-browser.sh)")


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return seed(tmp_path_factory.mktemp("studio-browser") / "proj", runs=8, points=120, examples=900,
                versions=7, judgments=800, votes=300)


@contextmanager
def chromium(width: int = 1280) -> Iterator[Any]:
    """A fresh browser page that records console errors and uncaught exceptions in `page.errors`."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (dev extra) is not installed")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": WIDTHS.get(width, 900)})
            page.errors = []
            page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: page.errors.append(str(e)))
            yield page
        finally:
            browser.close()


def save_small(png: bytes, path: Path) -> None:
    """A screenshot in 64 colours (a page's flat colours survive; the file is a fraction of the size)."""
    from PIL import Image  # Pillow comes with matplotlib

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.open(io.BytesIO(png)).convert("RGB").quantize(64).save(path, optimize=True)


PAGES = {"overview": "/", "data": "/data", "dataset": "/data/v01-augment", "preferences": "/data/prefs-votes",
         "curation": "/data/v03-curate/curation", "evalset": "/evalsets/held-out", "runs": "/runs",
         "run": "/runs/run-000", "run-dpo": "/runs/run-dpo",
         "compare": "/runs/compare?id=run-000&id=run-001&id=run-002", "judges": "/judges",
         "judging": "/judges/2?only=disagree", "final": "/final", "autopilot": "/autopilot", "actions": "/actions"}


@pytest.mark.parametrize("width", sorted(WIDTHS))
def test_every_page_renders_without_a_console_error(seeded: Project, width: int) -> None:
    with serving(create_app(Project(seeded.root), TOKEN)) as server, chromium(width) as page:
        page.goto(f"{server.url}/?token={TOKEN}")  # as the printed link: this browser may act
        for name, url in PAGES.items():
            page.goto(server.url + url)
            page.wait_for_load_state("networkidle") if "live" not in url else None
            assert page.title().endswith("underdog studio"), name
            assert page.evaluate("document.documentElement.scrollWidth") <= width, f"{name} scrolls sideways"
            if SHOTS:
                save_small(page.screenshot(full_page=name in WHOLE), Path(SHOTS) / f"{name}-{width}.png")
        assert page.errors == []


def test_an_example_holding_a_script_renders_as_text(seeded: Project) -> None:
    with serving(create_app(Project(seeded.root), TOKEN)) as server, chromium() as page:
        page.goto(f"{server.url}/data/v01-augment?q=pwned")
        assert page.inner_text("#examples .question") == "<script>window.pwned = 1</script> what is this?"
        assert page.inner_text("#examples .text") == "<b>not bold</b> & <i>not italic</i>"
        page.goto(f"{server.url}/data/prefs-votes?q=pwned")  # a preference pair: prompt, chosen, rejected
        assert page.inner_text("#examples .question") == "<script>window.pwned = 2</script> which?"
        assert page.inner_text("#examples .chosen .text") == "<script>window.pwned = 3</script> chosen"
        assert page.inner_text("#examples .rejected .text") == "<i>rejected</i>"
        assert page.evaluate("typeof window.pwned") == "undefined"
        assert page.errors == []


def test_without_the_token_an_action_is_refused(seeded: Project) -> None:
    with serving(create_app(Project(seeded.root), TOKEN)) as server, chromium() as page:
        page.goto(f"{server.url}/actions")
        assert "Read-only" in page.inner_text("#read-only")
        assert page.is_disabled("#train-form button")
        status = page.evaluate("""async () => {
            const body = new URLSearchParams({dataset: "v00-generate", hyperparameters: "epoch=1", csrf: ""});
            return (await fetch("/actions/train", {method: "POST", body})).status; }""")
        assert status == 403
        assert "None yet." in page.inner_text("#actions")


@pytest.mark.slow
def test_a_run_started_from_the_page_grows_its_curve_live_and_is_listed(project_dir: Path,
                                                                       tiny_llama_dir: Path) -> None:
    project = use_student(project_dir, tiny_llama_dir)
    save_dataset(project.root, "sums", arithmetic(64))
    app = create_app(Project(project.root), TOKEN)
    with serving(app) as server, chromium() as page:
        page.goto(f"{server.url}/actions?token={TOKEN}")
        page.fill("#train-form input[name=hyperparameters]",
                  "epoch=1 max_steps=40 logging_steps=1 per_device_train_batch_size=2 evals_per_epoch=1 "
                  "save_steps=1000 lora_r=4 lora_alpha=8")
        page.click("#train-form button")
        page.wait_for_url(re.compile(r".*/actions/[\w-]+$"))
        run_id = page.inner_text("#run-link")
        action_url = page.url
        page.click("#run-link")
        counts = _watch_points(page, timeout_s=240)
        assert page.inner_text("#run-status").startswith("done"), page.inner_text("#curve")
        assert len(set(counts)) >= 3 and counts == sorted(counts), counts  # it grew, live, without a reload
        if SHOTS:  # the real run, finished: its curve, and the command's output on its action page
            save_small(page.screenshot(), Path(SHOTS) / "run-live-1280.png")
            page.goto(action_url)
            save_small(page.screenshot(), Path(SHOTS) / "action-1280.png")
        assert page.errors == []
    listed = subprocess.run([sys.executable, "-m", "underdog", "-C", str(project.root), "runs"],
                            capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "200"})
    assert run_id in listed.stdout and "done" in listed.stdout


def _watch_points(page: Any, timeout_s: float) -> list[int]:
    """The loss chart's point count, read every 0.3 s until the run page says the run ended."""
    counts: list[int] = []
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        points = page.get_attribute("#curve svg.chart", "data-points")
        counts.append(int(points or 0))
        if page.query_selector("#curve [data-final]"):
            return counts
        time.sleep(0.3)
    raise AssertionError(f"the run did not end within {timeout_s} s: {page.inner_text('#curve')}")
