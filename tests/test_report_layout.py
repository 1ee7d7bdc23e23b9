"""The static report (reports/leaderboard.html): no chart of a single point, and a table that fits 1280 px."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from underdog.evaluate.leaderboard import Entry
from underdog.project import Project
from underdog.report import write_report

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def judged_run(name: str, dataset: str, lora_r: int, win_rate: float, epoch: int = 3) -> Entry:
    """A finished run with realistic names and every column filled (as a jury with facts leaves them)."""
    history = [{"step": s, "epoch": s / 10, "loss": 2.0 - 0.1 * s} for s in range(1, 11)]
    result = {"id": 1, "win_rate": win_rate, "ci_low": win_rate - 0.2, "ci_high": min(1.0, win_rate + 0.15),
              "n": 19, "ties": 5, "errors": 0, "lc_win_rate": win_rate - 0.03, "consistency": 0.842,
              "fact_recall": 0.875, "fact_recall_low": 0.64, "fact_recall_high": 0.965, "refusal_accuracy": 0.667,
              "config_id": "3f9a1c2b7d4e", "grounded": None}
    return Entry(name, "run", "done", dataset, {"epoch": epoch, "learning_rate": 0.0002, "lora_r": lora_r,
                                                "lora_alpha": 2 * lora_r,
                                                "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj",
                                                                   "gate_proj", "up_proj", "down_proj"]},
                 {"train_loss": 0.4213, "eval_loss": 0.9876}, True, "eval loss rose for 2 evaluations", history,
                 result)


def test_a_one_run_report_draws_no_chart_of_a_single_point(project_dir: Path) -> None:
    paths = write_report(Project(project_dir), [judged_run("20261205-101500-harrowgate-train-ab12",
                                                           "harrowgate-train", 16, 0.868)])
    html = paths["html"].read_text()
    assert html.count("data:image/png;base64,") == 1  # the loss curve: ten points
    assert set(paths) == {"markdown", "csv", "html", "loss curves"}


def test_the_hyperparameter_charts_show_only_what_differs(project_dir: Path) -> None:
    entries = [judged_run("run-a", "base", 8, 0.5), judged_run("run-b", "base", 16, 0.7)]
    paths = write_report(Project(project_dir), entries)
    assert "win rate against lora_r, epoch and dataset" in paths  # lora_r differs: one chart of two points
    assert paths["html"].read_text().count("data:image/png;base64,") == 3


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (scripts/setup-browser.sh)")
def test_the_report_table_fits_1280_px_without_sideways_scrolling(project_dir: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (dev extra) is not installed")
    entries = [judged_run(f"2026120{i}-101500-harrowgate-train+refusals-curated-ab1{i}",
                          "harrowgate-train+refusals+spanish-curated", 8 * (i + 1), 0.5 + i / 10, epoch=i + 1)
               for i in range(4)]
    entries.append(Entry("student [system prompt tuned t=0.7 p=0.9]", "baseline", result=entries[0].result))
    paths = write_report(Project(project_dir), entries)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(paths["html"].as_uri())
            widths = page.evaluate("""() => { const t = document.querySelector("table");
                return [t.parentElement.scrollWidth, t.parentElement.clientWidth,
                        document.documentElement.scrollWidth]; }""")
            page.screenshot(path=str(project_dir / "report-1280.png"), full_page=True)
        finally:
            browser.close()
    scroll_width, client_width, page_width = widths
    assert scroll_width <= client_width and page_width <= 1280, widths
