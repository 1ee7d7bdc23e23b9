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
    assert "7 done, 1 running (1 preference-trained)" in overview and "Recommended run" in overview
    assert "$3.45" in overview
    runs = client.get("/runs?sort=win_rate&dir=desc").text
    assert runs.count('name="id"') == 8  # 6 runs, the DPO run and the running one, each with a compare box
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
    assert "eval_contamination (2)" in page and 'href="/evalsets/held-out">held-out/q' in page
    assert "kept (100)" in page
    matches = re.search(r'<span id="matches">(.*?)</span>', page).group(1)  # curation.json's "matches"
    assert matches == "Repeats found: 4 by MinHash (Jaccard of content words), 2 by the semantic pass (cosine " \
        "similarity of embeddings)."
    semantic = client.get(f"/data/{curated}/curation?decision=semantic_duplicate").text
    assert "semantic_duplicate (2)" in semantic and "cosine 0.93" in semantic


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


def test_the_final_round_shows_the_judges_against_the_people_and_labels_simulated_votes(
        client: TestClient, seeded: Project) -> None:
    from markupsafe import escape

    from underdog.arena.standings import reward_text, standings
    from underdog.evaluate.jury_status import jury_status

    page = client.get("/final").text
    arena, calibration = page.split('id="calibration"')
    assert "SIMULATED</span> 300 of the 420 votes" in arena  # the standings say they are partly a simulation
    sources = re.search(r'<ul id="vote-sources".*?</ul>', arena, re.S).group(0)
    assert re.search(r'SIMULATED</span> <span class="name">simulated:[^<]+</span>: 300 votes', sources)
    assert '<span class="name">arena</span>: 120 votes' in sources and sources.count("SIMULATED") == 1
    table = standings(seeded.store, seeded.config.arena.weights, seeded.config.arena.bootstrap_rounds)
    assert all(r.styled for r in table.rows) and "style-controlled" in arena
    assert [escape(reward_text(n, e)) for n, e in table.rewards.items()] == re.findall(
        r"<li>([^<]+)</li>", re.search(r'<ul id="rewards">.*?</ul>', arena, re.S).group(0))
    assert escape(jury_status(seeded).summary()) in calibration
    assert "SIMULATED</span> 300 of the 420 votes these numbers" in calibration
    rows = re.findall(r'<td class="name">([^<]+)</td><td class="n"[^>]*>(\d+)</td>\s*<td class="n nowrap"[^>]*>([^<]*)',
                      calibration)
    assert [(r[0], r[2].strip()) for r in rows] == [("facts", "66%"), ("similarity", "41%"),
                                                     ("people (held out)", "61%"), ("jury: facts + similarity", "55%")]
    assert "-0.17" in calibration and '<span class="warn">disagrees</span>' in calibration  # kappa below 0
    assert "warning: similarity disagrees with the people beyond chance (Cohen&#39;s kappa -0.17" in calibration
    best = re.search(r'<p id="best-jury">(.*?)</p>', calibration, re.S).group(1)
    assert "facts</span> (1) + <span" in best and "people</span> (0.6)" in best and "64.0%" in best
    people = re.search(r'<p id="people-judge">(.*?)</p>', calibration, re.S).group(1)
    assert "held-out accuracy <b>61.0%</b>" in people and "[55%–67%]" in people


def test_the_final_round_before_calibration_says_what_the_people_judge_needs(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from underdog.arena import store as arena_tables
    from underdog.arena.simulated_panel import cast_simulated_votes
    from underdog.data.preferences import PreferencePair, save_preferences
    from underdog.evaluate import store as eval_tables
    from underdog.evaluate.jury_status import votes_version
    from underdog.project import init_project
    from underdog.studio import queries

    init_project("votes only", tmp_path / "p")
    project = Project(tmp_path / "p")
    arena_tables.put_items(project.store, [
        {"question_id": f"q{i}", "candidate": c, "question": f"What is fee {i}?", "source": "test",
         "answer": f"It is ${i}." if c == "a" else f"Thanks for asking! The fee is ${i}, paid at the office."}
        for i in range(12) for c in ("a", "b")])
    cast_simulated_votes(project, voters=2, noise=0.0)
    votes = arena_tables.load_votes(project.store)
    decisive = sum(v.outcome != "tie" for v in votes)
    assert decisive >= 10 and all(v.simulated for v in votes)
    page = TestClient(create_app(project, TOKEN), base_url="http://127.0.0.1:8766").get("/final").text
    assert "Not calibrated yet" in page
    needed = project.config.evaluate.people_min_votes
    assert f"Abstains: {decisive} decisive votes, it needs {needed} (<b>{needed - decisive} more</b>)" in page
    # the next command after votes: calibrate, then preference pairs, then a preference run on them
    best = SimpleNamespace(name="run-a")
    assert queries.after_votes(project, [], best)[0] == "underdog calibrate"
    eval_tables.put_calibration(project.store, {"votes_version": votes_version(votes), "votes": len(votes),
                                                "jury": "null", "held_out": None, "held_out_low": None,
                                                "held_out_high": None, "judges": "[]"})
    assert queries.after_votes(project, [], best)[0] == "underdog preferences --votes --name prefs"
    save_preferences(project.root, "prefs", [PreferencePair([{"role": "user", "content": "q"}], "a", "b")])
    assert queries.after_votes(project, ["prefs"], best)[0] == "underdog train --method dpo -d prefs --from run-a"
    # a calibration that chose exactly the configured jury: the page says it is the calibrated one
    judges = project.config.evaluate.judges
    jury = {"judges": judges, "weights": dict.fromkeys(judges, 1.0), "held_out": 0.7, "low": 0.6, "high": 0.8,
            "votes": len(votes)}
    eval_tables.put_calibration(project.store, {"votes_version": votes_version(votes), "votes": len(votes),
                                                "jury": json.dumps(jury), "held_out": 0.7, "held_out_low": 0.6,
                                                "held_out_high": 0.8, "judges": "[]"})
    status = re.search(r'<p id="jury-status">(.*?)</p>',
                       TestClient(create_app(project, TOKEN), base_url="http://127.0.0.1:8766").get("/final").text,
                       re.S).group(1)
    assert f"jury calibrated against {len(votes)} votes: held-out agreement with the people 70% (95% CI 60%-80%)" \
        in status and "<b>is the calibrated one</b>" in status


def test_a_preference_dataset_and_a_dpo_run(client: TestClient) -> None:
    listing = client.get("/data").text
    assert re.search(r'href="/data/prefs-votes" class="name">prefs-votes</a></td><td><span class="kind-preference">'
                     r"preference pairs</span>", listing)
    pairs = client.get("/data/prefs-votes?q=pwned").text
    assert "Preference dataset" in pairs and "1 pair (prompt, chosen answer, rejected answer)" in pairs
    assert '<div class="answer chosen"><h3>chosen</h3><p class="text">&lt;script&gt;window.pwned = 3&lt;/script&gt;' \
        ' chosen</p>' in pairs and "&lt;i&gt;rejected&lt;/i&gt;" in pairs and "<script>window" not in pairs
    run = client.get("/runs/run-dpo").text
    assert "<span class=\"method\">dpo</span> from run <a href=\"/runs/run-000\"" in run
    charts = re.findall(r'<h3>(reward margin|reward accuracy)</h3><div class="scroll"><svg class="chart"[^>]*'
                        r'data-points="(\d+)"', run)
    assert charts == [("reward margin", "44"), ("reward accuracy", "44")]  # 40 train + 4 eval points each
    assert "reward margin" not in client.get("/runs/run-000").text  # a supervised run has no reward curves
    runs = client.get("/runs").text
    assert re.search(r'run-dpo</a><br><span class="small method">dpo from <a href="/runs/run-000"', runs)


def test_the_overview_counts_calls_a_killed_process_left_pending(client: TestClient) -> None:
    page = client.get("/").text
    assert "<b>possibly paid</b>: 1 call to" in page and "gone (killed or crashed): up to $0.0125" in page
    assert "Spent <b>$3.45</b> + up to <b>$0.01</b> possibly paid" in page
    assert "420 votes (300 SIMULATED)" in page
