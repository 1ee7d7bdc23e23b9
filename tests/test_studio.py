"""The studio over a small seeded project: every page, who may act, the lock, live streams, actions, escaping."""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from conftest import REPO
from underdog.data.curation import DECISIONS_FILE, curate
from underdog.data.dataset import Example, save_dataset
from underdog.evaluate.evalset import Question, save_evalset
from underdog.locking import ProjectLock, current_holder
from underdog.project import Project
from underdog.studio.app import create_app
from underdog.studio.jobs import Actions
from underdog.testing import ServerThread, free_port
from underdog.train import store as train_tables

sys.path.insert(0, str(REPO / "bench"))
from studio import pages, seed  # noqa: E402 - bench/studio.py's seeding, at a small size

TOKEN = "studio-test-token"


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """A small project with every kind of artifact (synthetic rows, as bench/studio.py writes them)."""
    return seed(tmp_path_factory.mktemp("studio") / "proj", runs=6, points=40, examples=600, versions=6,
                judgments=800, votes=120)


@pytest.fixture
def client(seeded: Project) -> TestClient:
    return TestClient(create_app(Project(seeded.root), TOKEN), base_url="http://127.0.0.1:8766")


def acting(client: TestClient) -> str:
    """Open a page with the token (as the printed link does); the session cookie is set. Returns the CSRF."""
    response = client.get(f"/actions?token={TOKEN}", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/actions"
    assert "httponly" in response.headers["set-cookie"].lower()
    return re.search(r'name="csrf" value="([^"]+)"', client.get("/actions").text).group(1)


def test_every_page_renders_from_the_stores(client: TestClient, seeded: Project) -> None:
    for name, url in pages(seeded).items():
        response = client.get(url)
        assert response.status_code == 200, (name, response.text[:500])
        assert "script-src 'self'" in response.headers["content-security-policy"]
    overview = client.get("/").text
    assert "6 done, 1 running" in overview and "Recommended run" in overview and "$3.45" in overview
    runs = client.get("/runs?sort=win_rate&dir=desc").text
    assert runs.count('name="id"') == 7  # 6 runs + the running one, each with a compare box
    rates = [float(x) for x in re.findall(r'<a href="/judges/\d+">([\d.]+)%', runs)]
    assert rates == sorted(rates, reverse=True) and len(rates) == 4  # 800 judgments: 4 runs judged
    assert "run-001" not in client.get("/runs?q=run-000").text


def test_examples_are_searched_and_paged(client: TestClient) -> None:
    found = client.get("/data/v01-augment?q=dog+licence").text
    questions = re.findall(r'<p class="question">([^<]+)</p>', found)
    assert questions and all("dog licence" in q for q in questions)
    assert "page 1 of 2" in client.get("/data/v00-generate").text  # 100 examples, 50 a page
    assert "page 2 of 2" in client.get("/data/v00-generate?page=2").text


def test_user_text_is_escaped(client: TestClient) -> None:
    html = client.get("/data/v01-augment").text
    assert "&lt;script&gt;window.pwned = 1&lt;/script&gt;" in html and "<script>window" not in html
    assert "&lt;b&gt;not bold&lt;/b&gt; &amp; &lt;i&gt;" in html


def test_curation_decisions_are_listed_per_example(client: TestClient, seeded: Project) -> None:
    curated = next(n.name for n in (seeded.datasets_dir.iterdir()) if n.name.endswith("curate"))
    page = client.get(f"/data/{curated}/curation?decision=eval_contamination").text
    assert "eval_contamination (3)" in page and 'href="/evalsets/held-out">held-out/q' in page
    assert "kept (100)" in page


def test_a_judging_question_by_question(client: TestClient, seeded: Project) -> None:
    page = client.get("/judges/1").text
    assert "run-000" in page and "facts" in page and "similarity" in page
    counts = dict(re.findall(r'>(judges disagree|refusal probes|all questions) \((\d+)\)<', page))
    assert counts["all questions"] == "50" and counts["refusal probes"] == "5"
    probes = client.get("/judges/1?only=refusal").text
    assert probes.count('class="card question-card') == 5 and "refusal probe" in probes
    assert '<span class="fact' in page and "<mark>" in page  # facts checked and highlighted


def test_curate_records_every_decision(project_dir: Path) -> None:
    project = Project(project_dir)
    save_evalset(project, "ev", [Question("q1", "How much is a dog licence in Harrowgate?")], source="test")
    pair = lambda q, a: Example([{"role": "user", "content": q}, {"role": "assistant", "content": a}])  # noqa: E731
    examples = [pair("How much is a dog licence in Harrowgate?", "It costs $20 at the county clerk's office."),
                pair("Where do I renew a food truck permit?", "At the health department, room 12, weekdays."),
                pair("Where do I renew a food truck permit?", "At the health department, room 12, weekdays.")]
    save_dataset(project.root, "raw", examples)
    curate(project, "raw", rate=False)
    rows = [json.loads(line) for line in (project.dataset_dir("raw-curated") / DECISIONS_FILE).read_text().split(
        "\n") if line]
    by = {r["decision"]: r for r in rows}
    assert len(rows) == 3 and set(by) == {"eval_contamination", "exact_duplicate", "kept"}
    assert by["eval_contamination"]["matched"] == "ev/q1"
    assert by["exact_duplicate"]["matched"] == by["kept"]["id"] == examples[1].id


def test_acting_needs_the_token_a_csrf_field_and_the_same_origin(client: TestClient, seeded: Project) -> None:
    form = {"dataset": "v00-generate", "hyperparameters": "epoch=1"}
    refused = client.post("/actions/train", data=form)
    assert refused.status_code == 403 and "token printed" in refused.text
    assert "Read-only" in client.get("/actions").text and "disabled" in client.get("/actions").text
    csrf = acting(client)
    assert client.post("/actions/train", data=form | {"csrf": "forged"}).status_code == 403
    foreign = client.post("/actions/train", data=form | {"csrf": csrf}, headers={"origin": "http://evil.example"})
    assert foreign.status_code == 403
    bad = client.post("/actions/train", data={"dataset": "v00-generate", "hyperparameters": "--sagemaker",
                                              "csrf": csrf})
    assert bad.status_code == 400 and "is not key=value" in bad.text
    bearer = client.post("/actions/judge", data={"run": "no-such-run"}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert bearer.status_code == 400 and "no run or role named" in bearer.text
    assert not Actions(seeded).list()  # nothing was started


def test_a_busy_project_names_its_writer_and_starts_nothing(client: TestClient, seeded: Project) -> None:
    csrf = acting(client)
    with ProjectLock(seeded.root, "underdog generate --name base"):
        holder = current_holder(seeded.root)
        assert holder and holder["command"] == "underdog generate --name base"
        assert "Writing to this project now: `underdog generate --name base`" in client.get("/").text
        busy = client.post("/actions/autopilot", data={"max_runs": "2", "csrf": csrf})
        assert busy.status_code == 409 and "underdog generate --name base" in busy.text
    assert current_holder(seeded.root) is None
    assert not Actions(seeded).list()


def test_a_lock_description_left_by_a_dead_process_is_no_holder(tmp_path: Path) -> None:
    (tmp_path / "underdog.lock").write_text(json.dumps({"pid": 2**22 + 12345, "command": "x", "started": 0}))
    assert current_holder(tmp_path) is None


@contextmanager
def serving(app: FastAPI) -> Iterator[ServerThread]:
    with ServerThread(app) as server:
        try:
            yield server
        finally:
            app.state.stopping = True  # open live streams end, so the server stops at once


def test_the_live_curve_carries_a_new_loss_row(seeded: Project) -> None:
    app = create_app(Project(seeded.root), TOKEN)
    events: list[str] = []

    def listen(url: str) -> None:
        with httpx.stream("GET", f"{url}/runs/live-run/live", timeout=30) as response:
            data = []
            for line in response.iter_lines():
                if line.startswith("data: "):
                    data.append(line[6:])
                elif not line and data:
                    events.append("\n".join(data))
                    data = []
                if len(events) == 2:
                    return

    with serving(app) as server:
        thread = threading.Thread(target=listen, args=(server.url,), daemon=True)
        thread.start()
        deadline = time.time() + 10
        while not events and time.time() < deadline:
            time.sleep(0.05)
        before = int(re.search(r'data-points="(\d+)"', events[0]).group(1))
        written = time.time()
        train_tables.put_metric(seeded.store, {"run_id": "live-run", "step": 7, "epoch": 0.7, "split": "train",
                                               "loss": 1.25, "learning_rate": 1e-4})
        thread.join(timeout=10)
        assert len(events) == 2 and time.time() - written < 2
        assert f'data-points="{before + 1}"' in events[1]


def test_an_action_runs_the_command_and_is_cancelled_like_ctrl_c(seeded: Project) -> None:
    actions = Actions(seeded)
    done = actions.start(["runs"])
    deadline = time.time() + 60
    while actions.get(done.id).ended is None and time.time() < deadline:
        time.sleep(0.2)
    assert actions.get(done.id).status == "done" and "run-000" in actions.log(done.id)
    server = actions.start(["studio", "--port", str(free_port())])  # runs until stopped
    time.sleep(3)
    assert actions.get(server.id).status == "running"
    actions.cancel(server.id)
    deadline = time.time() + 30
    while actions.get(server.id).ended is None and time.time() < deadline:
        time.sleep(0.2)
    assert actions.get(server.id).status == "cancelled"
    assert [a.id for a in actions.list()] == [server.id, done.id]


def test_a_page_asked_for_by_another_host_name_is_refused(seeded: Project) -> None:
    """Bound to loopback, the studio answers only loopback names: a site that rebinds its own name to
    127.0.0.1 cannot read the project from a visitor's browser."""
    app = create_app(Project(seeded.root), TOKEN, hosts=["127.0.0.1", "localhost"])
    assert TestClient(app, base_url="http://127.0.0.1:8766").get("/").status_code == 200
    assert TestClient(app, base_url="http://attacker.example:8766").get("/").status_code == 400


def test_the_command_needs_a_project_and_a_long_enough_token(tmp_path: Path, project_dir: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from conftest import invoke_cli

    outside = invoke_cli("-C", str(tmp_path / "nowhere"), "studio")
    assert outside.exit_code == 2 and "not an underdog project" in outside.output
    short = invoke_cli("studio", env={"UNDERDOG_STUDIO_TOKEN": "short"})
    assert short.exit_code == 2 and "at least 8 characters" in short.output and "Traceback" not in short.output
